import Allocation
import GGML
import Quantization

/// A plan layer's format as the exporters see it: which family, and the numbers a runtime's config needs.
///
/// Parsed from the plan's format name by `QuantFormat(parsing:)`, except MLX's affine names (`affine4-g64`), which
/// `parseAffineName(_:)` reads until the QuantFormat grammar knows them.
enum PlannedFormat: Equatable, Sendable {
  /// Not quantized: f32, f16 or bf16 (the GGML type with that spelling).
  case float(GGMLType)
  /// `int<bits>[-g<group>][-asym]`: uniform integer codes, one scale (and zero point) per group; `group` nil is
  /// per-channel.
  case integer(bits: Int, group: Int?, symmetric: Bool)
  /// A GGML block type (`q4_0`, `q6_k`).
  case ggml(GGMLType)
  /// MLX affine: `bits`-bit codes, one f16 scale and one f16 bias per `group` weights.
  case affine(bits: Int, group: Int)
  /// Any other format of the grammar (nf4, ternary): no runtime here stores it.
  case other

  /// The format named `name` in the plan's entry for `layer`.
  /// - Throws: `.unsupportedFormat` naming the layer when `name` is no format of the grammar.
  init(name: String, layer: String) throws(ExportError) {
    if let (bits, group) = parseAffineName(name) {
      self = .affine(bits: bits, group: group)
      return
    }
    let format: QuantFormat
    do { format = try QuantFormat(parsing: name) } catch {
      throw ExportError(.unsupportedFormat, "\(layer): '\(name)' is not a format name (\(error))")
    }
    switch format.scheme {
    case .f32: self = .float(.f32)
    case .f16: self = .float(.f16)
    case .bf16: self = .float(.bf16)
    case .integer(let bits): self = .integer(bits: bits, group: format.groupSize, symmetric: format.symmetric)
    case .ggml(let type): self = .ggml(type)
    default: self = .other
    }
  }

  /// Whether the layer stays unquantized (f32, f16, bf16).
  var isFloat: Bool {
    if case .float = self { return true }
    return false
  }
}

/// COORDINATOR: replace with `QuantFormat(parsing:)` once the affine helper's `affine<B>-g<G>` grammar is merged
/// (then map its scheme to `.affine` in `PlannedFormat.init` and delete this function).
///
/// `affine<B>-g<G>` (case-insensitive), B in 2...8, G a multiple of 32 in 32...4096 — the grammar the brief fixes
/// for MLX's affine format; nil for any other name.
func parseAffineName(_ name: String) -> (bits: Int, group: Int)? {
  let text = name.lowercased()
  guard text.hasPrefix("affine") else { return nil }
  let parts = text.dropFirst("affine".count).split(separator: "-", omittingEmptySubsequences: false)
  guard parts.count == 2, let bits = Int(parts[0]), String(bits) == parts[0], (2...8).contains(bits),
    parts[1].hasPrefix("g"), let group = Int(parts[1].dropFirst()), String(group) == parts[1].dropFirst(),
    (32...4096).contains(group), group % 32 == 0
  else { return nil }
  return (bits, group)
}

/// One plan layer: its name, the format name as the plan spells it, and the parsed format.
struct PlannedLayer: Sendable {
  /// HF module path (`model.layers.0.self_attn.q_proj`).
  var name: String
  /// The plan's spelling (`int4-g64`).
  var formatName: String
  /// The parsed format.
  var format: PlannedFormat

  /// Every layer of `plan`, sorted by name, so that every export is deterministic.
  /// - Throws: `.unsupportedFormat` for the first (by name) layer whose format name does not parse.
  static func all(in plan: PlanDocument) throws(ExportError) -> [PlannedLayer] {
    var out: [PlannedLayer] = []
    for (name, layer) in plan.layers.sorted(by: { $0.key < $1.key }) {
      out.append(PlannedLayer(name: name, formatName: layer.format, format: try PlannedFormat(name: layer.format, layer: name)))
    }
    return out
  }
}
