/// Layers that vLLM (and SGLang) load as one fused matrix: `q_proj`, `k_proj`, `v_proj` of one attention block as
/// `qkv_proj`, `gate_proj` and `up_proj` of one MLP as `gate_up_proj`. A fused matrix has one quantization
/// setting, so siblings planned with different formats either break the load (compressed-tensors: "Found a
/// different quantization schemes for … vLLM requires all to use the same scheme") or get one sibling's setting
/// (GPTQ `dynamic` is matched on the fused prefix: vllm `quantization/utils/gptq_utils.py` `get_dynamic_override`).
enum FusedSiblings {
  /// The `--tie` options of `bitplan allocate` that make siblings share a format.
  static let tieAdvice =
    "bitplan allocate --tie 'layers\\.(\\d+)\\.self_attn\\.[qkv]_proj' --tie 'layers\\.(\\d+)\\.mlp\\.(gate|up)_proj'"

  /// `model.layers.3.self_attn.qkv_proj` for `model.layers.3.self_attn.k_proj`, `model.layers.3.mlp.gate_up_proj`
  /// for `…mlp.up_proj`; nil for a layer that is not fused.
  static func fusedName(of layer: String) -> String? {
    guard let dot = layer.lastIndex(of: ".") else { return nil }
    let parent = layer[..<dot], leaf = layer[layer.index(after: dot)...]
    switch leaf {
    case "q_proj", "k_proj", "v_proj": return parent + ".qkv_proj"
    case "gate_proj", "up_proj": return parent + ".gate_up_proj"
    default: return nil
    }
  }

  /// The fused groups of `layers` whose planned members do not all share `setting`, sorted by the fused name.
  /// Members absent from the plan are not compared (their model file decides).
  static func mismatches<S: Equatable>(
    _ layers: [PlannedLayer], setting: (PlannedLayer) -> S
  ) -> [(fused: String, members: [PlannedLayer])] {
    var groups: [String: [PlannedLayer]] = [:]
    for layer in layers {
      if let fused = fusedName(of: layer.name) { groups[fused, default: []].append(layer) }
    }
    return groups.sorted { $0.key < $1.key }.compactMap { fused, members in
      let first = setting(members[0])
      return members.allSatisfy({ setting($0) == first }) ? nil : (fused, members)
    }
  }

  /// `model.layers.3.self_attn (q_proj int4-g64, k_proj int8, v_proj int4-g64)`.
  static func describe(_ fused: String, _ members: [PlannedLayer]) -> String {
    let block = fused.split(separator: ".").dropLast().joined(separator: ".")
    let list = members.map { "\($0.name.split(separator: ".").last ?? "") \($0.formatName)" }.joined(separator: ", ")
    return "\(block) (\(list))"
  }
}
