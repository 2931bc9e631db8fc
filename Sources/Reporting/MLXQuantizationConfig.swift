import Allocation
import Foundation

/// The `quantization` block of an MLX checkpoint's `config.json` for a plan, with the `quantization_config` copy
/// that mlx-lm's `save_config` writes beside it ("support hf model tree #957").
///
/// ```json
/// "quantization": { "group_size": 64, "bits": 4, "mode": "affine",
///                   "model.layers.0.mlp.down_proj": { "group_size": 64, "bits": 6, "mode": "affine" },
///                   "model.layers.0.self_attn.q_proj": false }
/// ```
/// - Keys are MLX module paths. For llama models they are the HF module paths: mlx-lm's `models/llama.py`
///   `sanitize` only drops `self_attn.rotary_emb.inv_freq` and, with tied embeddings, `lm_head.weight`; the module
///   tree is `model.embed_tokens`, `model.layers.N.{self_attn,mlp}.*`, `lm_head`.
/// - Every per-layer object carries `group_size`, `bits` and `mode`: mlx `nn.quantize` passes the object verbatim to
///   `to_quantized(**params)`, where a missing key takes the *mode's* default, not the global one; mlx-swift-lm's
///   `BaseConfiguration` refuses an object without `group_size` or `bits`.
/// - f16/f32/bf16 layers are `false` (not quantized).
/// - The global triple is the affine format of the most planned layers (ties: more bytes, then fewer bits); mlx-lm's
///   loader applies it only to modules absent from the map whose `<path>.scales` exist in the weights.
///
/// To quantize a model by it in mlx-lm: `nn.quantize(model, group_size=g, bits=b, class_predicate=lambda p, m:
/// block.get(p, False))`, then `save_config` with `config["quantization"] = block`.
public struct MLXQuantizationConfig: Sendable, Equatable {
  /// One layer's entry.
  public enum Entry: Sendable, Equatable {
    /// `{"group_size": g, "bits": b, "mode": "affine"}`.
    case affine(bits: Int, groupSize: Int)
    /// `false`.
    case notQuantized
  }

  /// Bits MLX's affine quantization accepts (mlx `ops.cpp` `affine_quantize`).
  public static let acceptedBits = [2, 3, 4, 5, 6, 8]
  /// Group sizes MLX's affine quantization accepts.
  public static let acceptedGroupSizes = [32, 64, 128]

  /// Global bits.
  public var bits: Int
  /// Global group size.
  public var groupSize: Int
  /// Always `affine`: the only MLX mode in BitPlan's grammar.
  public var mode = "affine"
  /// Per-layer entries by module path.
  public var layers: [String: Entry]

  /// The block for `plan`.
  /// - Parameter shapes: `[out, in]` of each layer by module path, when the model is at hand: a group that does not
  ///   divide a row is refused (MLX requires `in % group_size == 0`). Layers not listed are not shape-checked.
  /// - Throws: `.unsupportedFormat` for a non-affine format (int, GGML, nf4) or bits/groups MLX refuses;
  ///   `.unsupportedShape` for a group that does not divide the row; `.unsupportedFormat` for a plan with no affine
  ///   layer at all.
  public init(plan: PlanDocument, shapes: [String: [Int]] = [:]) throws(ExportError) {
    var layers: [String: Entry] = [:]
    var counts: [Entry: (layers: Int, bytes: Int)] = [:]
    for layer in try PlannedLayer.all(in: plan) {
      switch layer.format {
      case .float:
        layers[layer.name] = .notQuantized
      case .affine(let bits, let group):
        guard Self.acceptedBits.contains(bits), Self.acceptedGroupSizes.contains(group) else {
          throw ExportError(
            .unsupportedFormat,
            "\(layer.name): \(layer.formatName) is outside MLX's affine range (bits 2, 3, 4, 5, 6, 8; groups 32, 64, 128)")
        }
        if let shape = shapes[layer.name], let columns = shape.last, columns % group != 0 {
          throw ExportError(
            .unsupportedShape, "\(layer.name) \(shape): \(layer.formatName) needs rows of a multiple of \(group) values")
        }
        let entry = Entry.affine(bits: bits, groupSize: group)
        layers[layer.name] = entry
        let c = counts[entry] ?? (0, 0)
        counts[entry] = (c.layers + 1, c.bytes + (plan.layers[layer.name]?.bytes ?? 0))
      default:
        throw ExportError(
          .unsupportedFormat,
          "\(layer.name): \(layer.formatName) is not an MLX format; MLX stores affine<B>-g<G> (scale and bias per group) "
            + "or f16 (make the plan with --target mlx)")
      }
    }
    let global = counts.max { a, b in
      guard case .affine(let bitsA, _) = a.key, case .affine(let bitsB, _) = b.key else { return false }
      return (a.value.layers, a.value.bytes, -bitsA) < (b.value.layers, b.value.bytes, -bitsB)
    }
    guard case .affine(let bits, let groupSize)? = global?.key else {
      throw ExportError(.unsupportedFormat, "the plan quantizes no layer in an MLX affine format; nothing to export")
    }
    self.bits = bits
    self.groupSize = groupSize
    self.layers = layers
  }

  /// The block as a JSON object: the global keys, then one key per layer.
  public var block: [String: Any] {
    var object: [String: Any] = ["group_size": groupSize, "bits": bits, "mode": mode]
    for (name, entry) in layers {
      switch entry {
      case .affine(let bits, let group): object[name] = ["group_size": group, "bits": bits, "mode": "affine"]
      case .notQuantized: object[name] = false
      }
    }
    return object
  }

  /// `{"quantization": block, "quantization_config": block}`, pretty-printed with sorted keys, ending in a newline:
  /// merge it into the checkpoint's config.json.
  public func jsonData() -> Data {
    let object: [String: Any] = ["quantization": block, "quantization_config": block]
    // Strings, integers and booleans only: serialization cannot fail.
    var data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    data.append(0x0A)
    return data
  }
}

extension MLXQuantizationConfig.Entry: Hashable {}
