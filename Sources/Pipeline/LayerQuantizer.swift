import Foundation
import Quantization

/// What the input-aware quantizers share between `measure` and the packed model: which layers read the same input.
public enum LayerQuantizer {
  /// The layers (indices into `names`) that read the same input as `name` and so share AWQ's per-channel scales:
  /// a block's `q_proj`, `k_proj` and `v_proj` (the attention norm's output) or its `gate_proj` and `up_proj` (the
  /// MLP norm's output), in the order they appear in `names`; `nil` for a layer that reads its input alone
  /// (`o_proj`, `down_proj`, the LM head).
  public static func awqGroup(of name: String, in names: [String]) -> [Int]? {
    guard let (prefix, members) = groupMembers(of: name) else { return nil }
    let wanted = Set(members.map { prefix + $0 })
    let group = names.indices.filter { wanted.contains(names[$0]) }
    return group.count > 1 ? group : nil
  }

  /// The module path before the projection's name and the group's projection names, for a grouped layer.
  static func groupMembers(of name: String) -> (String, [String])? {
    let groups = [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["mlp.gate_proj", "mlp.up_proj"]]
    for group in groups {
      for member in group where name.hasSuffix("." + member) {
        return (String(name.dropLast(member.count)), group)
      }
    }
    return nil
  }

  /// AWQ searches by key, keeping only the current group's (the per-layer stage walks a group's members one after
  /// another, each asking for every candidate on both cores).
  final class AWQCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: AWQ.Result] = [:]
    private var group: Int?

    func value(_ key: String) -> AWQ.Result? {
      lock.lock()
      defer { lock.unlock() }
      return entries[key]
    }

    /// Stores `result` under `key`, first dropping every entry of another group than `keepingGroup`.
    func store(_ key: String, _ result: AWQ.Result, keepingGroup: Int) {
      lock.lock()
      defer { lock.unlock() }
      if group != keepingGroup {
        entries = [:]
        group = keepingGroup
      }
      entries[key] = result
    }
  }
}
