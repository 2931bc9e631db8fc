import Allocation
import Foundation

/// A GPTQModel `QuantizeConfig` for a plan: base `bits`, `group_size`, `sym`, `desc_act: false`, and `dynamic`
/// with one exact rule per planned layer.
///
/// ```json
/// { "bits": 4, "group_size": 64, "sym": true, "desc_act": false,
///   "dynamic": { "+:^model\\.layers\\.0\\.mlp\\.down_proj$": { "bits": 8, "group_size": -1, "sym": true },
///                "-:^model\\.layers\\.3\\.self_attn\\.q_proj$": {} } }
/// ```
/// How GPTQModel reads `dynamic` (`gptqmodel/quantization/config.py` `_get_dynamic_patterns`, `dynamic_get`): a
/// `+:`/`-:` prefix is stripped, the rest compiled with PCRE and used with `match` (start-anchored only, hence the
/// trailing `$`), the first matching entry wins, `-:` skips the module. vLLM's `get_dynamic_override` reads the same
/// keys with `re.match`. Per-channel is `group_size: -1`. f16 layers get `-:` rules; an f16 token embedding needs
/// none (GPTQModel quantizes only linear layers, so an int-planned embedding is refused). An int-planned `lm_head`
/// sets `"lm_head": true` and gets its rule.
///
/// Fused siblings: vLLM matches `dynamic` on the fused prefix (`…self_attn.qkv_proj`, `…mlp.gate_up_proj`), so
/// q/k/v or gate/up of one block with different settings get one setting there. GPTQModel itself quantizes and
/// loads every module on its own, where the file is exactly right; so the file is written and each such block gets
/// one warning line, rather than refusing a plan that its primary consumer runs as planned.
public struct GPTQModelConfig: Sendable, Equatable {
  /// One layer's override.
  public struct Override: Sendable, Equatable, Hashable {
    /// 2, 3, 4 or 8.
    public var bits: Int
    /// Group size, or -1 for per-channel.
    public var groupSize: Int
    /// No zero point.
    public var symmetric: Bool
  }

  /// Bits GPTQModel's GPTQ kernels take (`QuantizeConfig` `bits` in [2, 3, 4, 8]).
  public static let acceptedBits = [2, 3, 4, 8]

  /// The base setting: the int format of the most planned layers.
  public var base: Override
  /// `(pattern, override)` in name order; a nil override is a `-:` (skip) rule.
  public var rules: [(pattern: String, override: Override?)]
  /// Whether the plan quantizes `lm_head`.
  public var quantizesLMHead: Bool
  /// One line per fused block whose siblings differ (see the type's doc).
  public var warnings: [String]

  public static func == (a: Self, b: Self) -> Bool {
    a.base == b.base && a.quantizesLMHead == b.quantizesLMHead && a.warnings == b.warnings
      && a.rules.map(\.pattern) == b.rules.map(\.pattern) && a.rules.map(\.override) == b.rules.map(\.override)
  }

  /// The config for `plan`.
  /// - Throws: `.unsupportedFormat` for a layer whose format is not `int<2|3|4|8>[-g<G>][-asym]` or f16/f32/bf16,
  ///   for an int-planned token embedding, and for a plan with no int layer.
  public init(plan: PlanDocument) throws(ExportError) {
    let layers = try PlannedLayer.all(in: plan)
    var settings: [String: Override?] = [:]
    var counts: [Override: Int] = [:]
    var rules: [(pattern: String, override: Override?)] = []
    for layer in layers {
      switch layer.format {
      case .float:
        settings[layer.name] = .some(nil)
        if layer.name != "model.embed_tokens" { rules.append(("-:" + Self.exactPattern(layer.name), nil)) }
      case .integer(let bits, let group, let symmetric) where Self.acceptedBits.contains(bits):
        guard layer.name != "model.embed_tokens" else {
          throw ExportError(
            .unsupportedFormat, "\(layer.name): \(layer.formatName): GPTQModel quantizes linear layers only; plan the embedding as f16")
        }
        let o = Override(bits: bits, groupSize: group ?? -1, symmetric: symmetric)
        settings[layer.name] = o
        counts[o, default: 0] += 1
        rules.append(("+:" + Self.exactPattern(layer.name), o))
      default:
        throw ExportError(
          .unsupportedFormat,
          "\(layer.name): \(layer.formatName) is not a GPTQModel format; it stores int2, int3, int4, int8 "
            + "(per-channel or -g<G>, -asym allowed) or f16 (make the plan with --target gptqmodel)")
      }
    }
    guard let base = counts.max(by: { ($0.value, $1.key.bits) < ($1.value, $0.key.bits) })?.key else {
      throw ExportError(.unsupportedFormat, "the plan quantizes no layer in a GPTQModel int format; nothing to export")
    }
    self.base = base
    self.rules = rules
    quantizesLMHead = settings["lm_head"].map { $0 != nil } ?? false
    warnings = FusedSiblings.mismatches(layers, setting: { settings[$0.name] ?? nil }).map { fused, members in
      "warning: \(FusedSiblings.describe(fused, members)) differ; vLLM loads them fused as "
        + "\(fused.split(separator: ".").last ?? "") with one setting (\(FusedSiblings.tieAdvice))"
    }
  }

  /// `^` + the name with regex metacharacters escaped + `$`: an exact match under PCRE or Python `re.match`.
  static func exactPattern(_ name: String) -> String {
    var out = "^"
    for c in name {
      if "\\^$.|?*+()[]{}".contains(c) { out.append("\\") }
      out.append(c)
    }
    return out + "$"
  }

  /// The config as a JSON object.
  public var object: [String: Any] {
    var dynamic: [String: Any] = [:]
    for rule in rules {
      dynamic[rule.pattern] = rule.override.map { ["bits": $0.bits, "group_size": $0.groupSize, "sym": $0.symmetric] } ?? [:]
    }
    var object: [String: Any] = [
      "bits": base.bits, "group_size": base.groupSize, "sym": base.symmetric, "desc_act": false, "dynamic": dynamic,
    ]
    if quantizesLMHead { object["lm_head"] = true }
    return object
  }

  /// The JSON text, pretty-printed with sorted keys, ending in a newline.
  public func jsonData() -> Data {
    var data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    data.append(0x0A)
    return data
  }
}
