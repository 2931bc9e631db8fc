import Allocation
import GGML
import Quantization

/// A plan layer's format as the exporters see it: which family, and the numbers a runtime's config needs.
///
/// Parsed from the plan's format name by `QuantFormat(parsing:)` (MLX's affine names included: `affine4-g64`).
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
  /// Any other format of the grammar (nf4, ternary, w8a8): no runtime here stores it.
  case other

  /// The format named `name` in the plan's entry for `layer`.
  /// - Throws: `.unsupportedFormat` naming the layer when `name` is no format of the grammar.
  init(name: String, layer: String) throws(ExportError) {
    let format: QuantFormat
    do { format = try QuantFormat(parsing: name) } catch {
      throw ExportError(.unsupportedFormat, "\(layer): '\(name)' is not a format name (\(error))")
    }
    // SmoothQuant's w8a8 needs its smoothing factors and int8 activations, which no exporter here writes.
    if format.isW8A8 {
      self = .other
      return
    }
    switch format.scheme {
    case .f32: self = .float(.f32)
    case .f16: self = .float(.f16)
    case .bf16: self = .float(.bf16)
    case .integer(let bits): self = .integer(bits: bits, group: format.groupSize, symmetric: format.symmetric)
    case .ggml(let type): self = .ggml(type)
    case .affine(let bits): self = .affine(bits: bits, group: format.groupSize ?? 0)
    default: self = .other
    }
  }

  /// Whether the layer stays unquantized (f32, f16, bf16).
  var isFloat: Bool {
    if case .float = self { return true }
    return false
  }
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
