import GGML

/// llama.cpp's `enum llama_ftype` (include/llama.h), the value of a GGUF's `general.file_type`: the type most of a
/// model's weight matrices are stored in ("mostly Q4_0, except 1-D tensors").
///
/// `llama-quantize MODEL OUT TYPE` writes `TYPE`'s value whatever its overrides chose. For a mixed file,
/// `of(_:)` names the type that stores the most weights among the tensors llama-quantize quantizes, so that
/// passing `name` as llama-quantize's TYPE (with a `--tensor-type-file` covering every tensor) writes the same key.
public struct LlamaFileType: Sendable, Equatable, CustomStringConvertible {
  /// The `llama_ftype` value (`LLAMA_FTYPE_MOSTLY_Q4_1` = 3).
  public var rawValue: UInt32
  /// llama-quantize's name for it (`Q4_1`, `Q3_K_M`, `F16`), accepted as its TYPE argument.
  public var name: String

  public var description: String { "\(name) (\(rawValue))" }

  /// The file type "mostly `type`", as llama.cpp's loader guesses it from a tensor type (`llama_model_loader`):
  /// K-quants 3, 4, 5 map to their `_M` mixes. Nil for types no `llama_ftype` names (q8_1, q8_K, integers).
  public static func mostly(_ type: GGMLType) -> LlamaFileType? {
    switch type {
    case .f32: LlamaFileType(rawValue: 0, name: "F32")
    case .f16: LlamaFileType(rawValue: 1, name: "F16")
    case .q4_0: LlamaFileType(rawValue: 2, name: "Q4_0")
    case .q4_1: LlamaFileType(rawValue: 3, name: "Q4_1")
    case .q8_0: LlamaFileType(rawValue: 7, name: "Q8_0")
    case .q5_0: LlamaFileType(rawValue: 8, name: "Q5_0")
    case .q5_1: LlamaFileType(rawValue: 9, name: "Q5_1")
    case .q2_K: LlamaFileType(rawValue: 10, name: "Q2_K")
    case .q3_K: LlamaFileType(rawValue: 12, name: "Q3_K_M")
    case .q4_K: LlamaFileType(rawValue: 15, name: "Q4_K_M")
    case .q5_K: LlamaFileType(rawValue: 17, name: "Q5_K_M")
    case .q6_K: LlamaFileType(rawValue: 18, name: "Q6_K")
    case .bf16: LlamaFileType(rawValue: 32, name: "BF16")
    default: nil
    }
  }

  /// Whether llama-quantize quantizes this tensor (`tensor_allows_quantization` in src/llama-quant.cpp).
  public static func isQuantizable(_ info: GGUFTensorInfo) -> Bool {
    isQuantizable(name: info.name, dimensions: info.dimensions.count)
  }

  /// Whether llama-quantize may change the type of the tensor `name` with `dimensions` dimensions
  /// (`tensor_allows_quantization` in src/llama-quant.cpp, the rules that apply to decoder-only text models): at
  /// least 2-D, a name ending in `weight`, not a norm, not an expert router, not a position embedding.
  public static func isQuantizable(name: String, dimensions: Int) -> Bool {
    guard dimensions >= 2, name.hasSuffix("weight") else { return false }
    let never = [
      "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
      "ssm_conv1d", "shortconv.conv.weight", "attn_rel_b.weight", ".position_embd", ".rel_pos", ".patch_embd",
    ]
    return !never.contains { name.contains($0) } && name != "position_embd.weight" && name != "token_types.weight"
  }

  /// The file type of a set of tensors: among the quantizable ones (`isQuantizable`), the quantized type with the
  /// most weights (ties: the lower ggml id); with none quantized, the float type with the most weights; `F32`
  /// when there is no quantizable tensor.
  public static func of(_ tensors: [GGUFTensorInfo]) -> LlamaFileType {
    of(weights: tensors.filter(isQuantizable).map { ($0.type, $0.elementCount) })
  }

  /// The file type of quantizable tensors given as (stored type, weight count): the quantized type with the most
  /// weights (ties: the lower ggml id); with none quantized, the float type with the most weights; `F32` when
  /// there is none. `bitplan quantize` writes it as `general.file_type`, and `bitplan export --format llama-cpp`
  /// names it as llama-quantize's TYPE, so that both files carry the same key.
  public static func of(weights typed: [(GGMLType, Int)]) -> LlamaFileType {
    var weights: [GGMLType: Int] = [:]
    for (type, count) in typed where mostly(type) != nil { weights[type, default: 0] += count }
    func best(_ candidates: [(key: GGMLType, value: Int)]) -> GGMLType? {
      candidates.max { ($0.value, -Int($0.key.rawValue)) < ($1.value, -Int($1.key.rawValue)) }?.key
    }
    let quantized = weights.filter { $0.key.canQuantize }.map { $0 }
    let type = best(quantized) ?? best(weights.map { $0 }) ?? .f32
    return mostly(type)!
  }
}
