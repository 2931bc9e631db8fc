import Allocation

/// An llm-compressor recipe (YAML) for a plan: one `QuantizationModifier` (round-to-nearest; GPTQ belongs to
/// BitPlan's own quantizers), one config group per distinct int format, exact-name targets.
///
/// ```yaml
/// quant_stage:
///   quant_modifiers:
///     QuantizationModifier:
///       ignore: ['lm_head', 'model.layers.3.mlp.down_proj']
///       config_groups:
///         group_0:
///           targets: ['re:^model\.layers\.0\.mlp\.down_proj$']
///           weights: {num_bits: 8, type: int, strategy: channel, symmetric: true, dynamic: false}
/// ```
/// How the targets are matched (compressed-tensors `utils/match.py` `match_name`): `re:` targets with `re.match`
/// (start-anchored; the `$` makes them exact), others by equality; exact names win over regexes, which are tried
/// alphabetically, so groups are only unambiguous when no two patterns match one module — one exact pattern per
/// layer guarantees it. `ignore` uses the same matcher: it lists `lm_head` (unless the plan quantizes it) and every
/// f16/f32/bf16 layer by exact name. Strings are YAML single-quoted, where a backslash is literal.
///
/// Every int format of BitPlan's grammar (2–8 bits) is storable: compressed-tensors' pack-quantized format packs
/// `num_bits` in [1, 8] (`compressors/quantized_compressors/pack_quantized.py` `pack_to_int32`). vLLM's WNA16
/// kernels run 4 and 8 bits. Siblings vLLM fuses (q/k/v, gate/up of one block) must share one format: vLLM raises
/// "Found a different quantization schemes for … vLLM requires all to use the same scheme"; such plans are refused.
public struct LLMCompressorRecipe: Sendable, Equatable {
  /// One `config_groups` entry.
  public struct Group: Sendable, Equatable {
    /// `num_bits`.
    public var bits: Int
    /// Group size, nil for `strategy: channel`.
    public var groupSize: Int?
    /// `symmetric`.
    public var symmetric: Bool
    /// Exact module names, sorted.
    public var layers: [String]
  }

  /// One group per distinct format, ordered by bits, then group size (per-channel last), then symmetric first.
  public var groups: [Group]
  /// Exact module names left unquantized, `lm_head` first when the plan does not quantize it.
  public var ignore: [String]

  /// The recipe for `plan`.
  /// - Throws: `.unsupportedFormat` for a non-int format or an int-planned token embedding; `.fusedMismatch` naming
  ///   the first block (by name) whose fused siblings differ, with their formats and the `--tie` options that fix it.
  public init(plan: PlanDocument) throws(ExportError) {
    let layers = try PlannedLayer.all(in: plan)
    var grouped: [String: Group] = [:]
    var ignore: [String] = []
    for layer in layers {
      switch layer.format {
      case .float:
        if layer.name != "model.embed_tokens" { ignore.append(layer.name) }
      case .integer(let bits, let group, let symmetric):
        guard layer.name != "model.embed_tokens" else {
          throw ExportError(
            .unsupportedFormat,
            "\(layer.name): \(layer.formatName): llm-compressor's QuantizationModifier quantizes linear layers; plan the embedding as f16")
        }
        let key = "\(bits)/\(group ?? -1)/\(symmetric)"
        grouped[key, default: Group(bits: bits, groupSize: group, symmetric: symmetric, layers: [])].layers.append(layer.name)
      default:
        throw ExportError(
          .unsupportedFormat,
          "\(layer.name): \(layer.formatName) is not an llm-compressor int format; it stores int2…int8 (per-channel or "
            + "-g<G>, -asym allowed) or f16 (make the plan with --target llm-compressor)")
      }
    }
    if let (fused, members) = FusedSiblings.mismatches(layers, setting: { $0.format }).first {
      throw ExportError(
        .fusedMismatch,
        "\(FusedSiblings.describe(fused, members)) differ, but vLLM loads them fused as one "
          + "\(fused.split(separator: ".").last ?? "") with one scheme; re-plan with \(FusedSiblings.tieAdvice)")
    }
    if !grouped.values.contains(where: { $0.layers.contains("lm_head") }) && !ignore.contains("lm_head") {
      ignore.insert("lm_head", at: 0)
    }
    groups = grouped.values.sorted {
      ($0.bits, $0.groupSize ?? Int.max, $0.symmetric ? 0 : 1) < ($1.bits, $1.groupSize ?? Int.max, $1.symmetric ? 0 : 1)
    }
    self.ignore = ignore
  }

  /// The YAML text.
  public var yaml: String {
    func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
    func list(_ items: [String]) -> String { "[" + items.map(quoted).joined(separator: ", ") + "]" }
    var lines = [
      "quant_stage:", "  quant_modifiers:", "    QuantizationModifier:",
      "      ignore: \(list(ignore))", "      config_groups:",
    ]
    for (i, group) in groups.enumerated() {
      lines += [
        "        group_\(i):",
        "          targets: \(list(group.layers.map { "re:" + GPTQModelConfig.exactPattern($0) }))",
        "          weights:",
        "            num_bits: \(group.bits)",
        "            type: int",
        "            strategy: \(group.groupSize == nil ? "channel" : "group")",
      ]
      if let g = group.groupSize { lines.append("            group_size: \(g)") }
      lines += ["            symmetric: \(group.symmetric)", "            dynamic: false"]
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
