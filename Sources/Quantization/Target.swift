/// A runtime a plan is made for: which formats it stores for a tensor of a given shape, and how many bytes that
/// takes, to the byte (`--target` of `bitplan measure` and `bitplan allocate`).
///
/// `measure`, `allocate` and the exporters ask the same value, so a plan never holds a format its runtime cannot
/// express. Shapes are row-major `[rows, columns]` = PyTorch `[out, in]`; groups and blocks run along a row.
/// Each byte model is what the consumer writes to disk for one weight tensor (its checkpoint tensors, or the GGUF
/// tensor data), with the file it is read from cited on `storedBytes(_:rows:columns:isEmbedding:)`. A layer left
/// unquantized is `f16`: 2 bytes per weight, as a 16-bit checkpoint keeps it.
///
/// A third runtime is added as one more case here: its `candidates` (every format it stores, by shape) and its
/// `storedBytes`; `canStore` follows from `candidates`.
public enum Target: String, CaseIterable, Sendable, Codable {
  /// Every target's name, comma-separated, for help and error messages (`any, llama-cpp, …`).
  public static let names = allCases.map(\.rawValue).joined(separator: ", ")

  /// No runtime: every format of the `QuantFormat` grammar that fits the shape, at the grammar's exact size
  /// (`QuantFormat.sizeInBytes`). The default, and what BitPlan did before targets existed.
  case any
  /// llama.cpp GGUF as `llama-quantize` writes it: GGML block types and f16.
  case llamaCpp = "llama-cpp"
  /// MLX / mlx-lm: the affine format (`affine<B>-g<G>`) and f16.
  case mlx
  /// GPTQModel's default `gptq` checkpoint format: int2/3/4/8, groups 32/64/128 or per channel, sym or asym.
  case gptqmodel
  /// llm-compressor's compressed-tensors `pack-quantized` checkpoints as vLLM reads them: int4 and int8.
  case llmCompressor = "llm-compressor"

  /// One line saying what the target stores, for help and error messages.
  public var summary: String {
    switch self {
    case .any: return "every format of the grammar that fits the shape"
    case .llamaCpp: return "q2_k…q6_k (rows a multiple of 256), q4_0, q4_1, q5_0, q5_1, q8_0 (a multiple of 32), f16"
    case .mlx: return "affine{2,3,4,5,6,8}-g{32,64,128} where the group divides the row, f16"
    case .gptqmodel: return "int{2,3,4,8}[-g{32,64,128}][-asym] where the group divides the row, f16"
    case .llmCompressor: return "int{4,8}[-g{32,64,128}][-asym] where the group divides the row, f16"
    }
  }

  /// Whether this runtime can quantize the token embedding, so that `measure --target` measures it as one more layer
  /// (`model.embed_tokens`): llama.cpp (`token_embd.weight` takes any type its rows allow) and MLX (`nn.Embedding`
  /// has `to_quantized`). GPTQModel and llm-compressor quantize linear layers only, so their embedding stays f16 and
  /// measuring it would add nothing to choose.
  public var storesTokenEmbedding: Bool { self == .llamaCpp || self == .mlx }

  /// Every format this runtime stores for a `[rows, columns]` weight, exactly: nothing it would rewrite or refuse.
  ///
  /// - `any`: `QuantFormat.candidates(for:columns:)` over `QuantFormat.defaultCandidates` (as before targets).
  /// - `llama-cpp`: q2_k, q3_k, q4_k, q5_k, q6_k only when `columns % 256 == 0`; q4_0, q4_1, q5_0, q5_1, q8_0 when
  ///   `columns % 32 == 0`; f16 always. llama.cpp `src/llama-quant.cpp` `tensor_type_fallback` (as vendored in
  ///   llama-cpp-python 0.3.36) checks `ne[0] % ggml_blck_size(type)` (ne[0] = the row length) and otherwise
  ///   *rewrites* the type (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0, q2_K/q3_K → q4_0; a 32-block type that does not
  ///   fit → f16), so only the types that pass that check are stored as asked. F16 has block size 1 and passes
  ///   for every shape. The token embedding is offered the same set (`--token-embedding-type` or a
  ///   `--tensor-type` rule reaches it like any weight).
  /// - `mlx`: affine B ∈ {2, 3, 4, 5, 6, 8} × G ∈ {32, 64, 128} where `columns % G == 0` (then `columns·B` is a
  ///   multiple of 32, as the packed uint32 row needs), plus f16. ml-explore/mlx `mlx/ops.cpp` `affine_quantize`
  ///   accepts exactly these bits and groups; mlx-lm `mlx_lm/utils.py` `quantize_model` skips a module whose
  ///   `weight.shape[-1] % group_size != 0` (it stays in the model dtype, our f16). The embedding is offered the
  ///   same set (`nn.Embedding` has `to_quantized`).
  /// - `gptqmodel`: int B ∈ {2, 3, 4, 8} × group ∈ {per channel, 32, 64, 128} × {sym, asym} where the group
  ///   divides `columns` (`gptqmodel/nn_modules/qlinear/__init__.py` raises "in_features must be divisible by
  ///   group_size"), plus f16. GPTQModel quantizes the decoder's linear layers only, so the embedding gets f16.
  /// - `llm-compressor`: int B ∈ {4, 8} × group ∈ {per channel, 32, 64, 128} × {sym, asym}, plus f16.
  ///   compressed-tensors' `pack_to_int32` packs 1…8 bits, but vLLM's `CompressedTensorsWNA16` (the consumer)
  ///   reads 4 and 8 (`WNA16_SUPPORTED_TYPES_MAP`, zero-point variants `WNA16_ZP_SUPPORTED_TYPES_MAP`); the
  ///   embedding gets f16 (the WNA16 scheme serves linear layers).
  ///
  /// Order: f16 first, then by decreasing bits.
  public func candidates(rows: Int, columns: Int, isEmbedding: Bool = false) -> [QuantFormat] {
    guard rows >= 0, columns >= 0 else { return [] }
    switch self {
    case .any:
      return QuantFormat.candidates(for: rows, columns: columns)
    case .llamaCpp:
      let names = ["q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k", "q2_k"]
      return [.f16] + names.map { try! QuantFormat(parsing: $0) }.filter { $0.canQuantize(rows: rows, columns: columns) }
    case .mlx:
      var list: [QuantFormat] = [.f16]
      for bits in [8, 6, 5, 4, 3, 2] {
        for group in [32, 64, 128] where columns % group == 0 && columns * bits % 32 == 0 {
          list.append(try! .affine(bits: bits, group: group))
        }
      }
      return list
    case .gptqmodel, .llmCompressor:
      if isEmbedding { return [.f16] }
      var list: [QuantFormat] = [.f16]
      for bits in self == .gptqmodel ? [8, 4, 3, 2] : [8, 4] {
        for group in [nil, 32, 64, 128] as [Int?] where group.map({ columns % $0 == 0 }) ?? true {
          for symmetric in [true, false] { list.append(try! .integer(bits: bits, group: group, symmetric: symmetric)) }
        }
      }
      return list
    }
  }

  /// Whether this runtime stores `format` for a `[rows, columns]` weight as asked. For `any`, every format of the
  /// grammar that fits the shape (`QuantFormat.canQuantize`), not only the default list; otherwise membership in
  /// `candidates(rows:columns:isEmbedding:)`.
  public func canStore(_ format: QuantFormat, rows: Int, columns: Int, isEmbedding: Bool = false) -> Bool {
    switch self {
    case .any: return format.canQuantize(rows: rows, columns: columns)
    default: return candidates(rows: rows, columns: columns, isEmbedding: isEmbedding).contains(format)
    }
  }

  /// The bytes this runtime stores for a `[rows, columns]` weight in `format`, to the byte.
  ///
  /// - `any`: `format.sizeInBytes(rows:columns:)`.
  /// - f16 (every target): `2·rows·columns`.
  /// - `llama-cpp`: the GGUF tensor's data, `rows · columns/blockSize · bytesPerBlock` (ggml `ggml_row_size`,
  ///   the `ggml_nbytes` of the tensor llama-quantize writes; the alignment padding between tensors is not
  ///   counted) = `format.sizeInBytes`.
  /// - `mlx`: `weight` uint32 `[rows, columns·B/32]` + `scales` and `biases` `[rows, columns/G]` in the 16-bit model
  ///   dtype: `rows·columns·B/8 + rows·(columns/G)·4` (mlx `affine_quantize`'s output shapes; mlx-lm saves the three
  ///   arrays) = `format.sizeInBytes`.
  /// - `gptqmodel`, intB with group G (G = columns per channel, GPTQModel's `group_size = -1`), g = columns/G:
  ///   `qweight` int32 `[⌈columns·B/32⌉, rows]`, `qzeros` int32 `[g, ⌈rows·B/32⌉]` (written for symmetric formats
  ///   too), `scales` f16 `[g, rows]`, `g_idx` int32 `[columns]`:
  ///   `4·⌈columns·B/32⌉·rows + 4·g·⌈rows·B/32⌉ + 2·g·rows + 4·columns`. ModelCloud/GPTQModel
  ///   `gptqmodel/nn_modules/qlinear/__init__.py` `_register_gptq_buffers` (@f4c327a1, int32 `pack_dtype`, the
  ///   default). Linear layers have no bias in Llama models.
  /// - `llm-compressor` (compressed-tensors `pack-quantized`), intB, g groups per row (1 per channel):
  ///   `weight_packed` int32 `[rows, ⌈columns·B/32⌉]`, `weight_scale` `[rows, g]` in the 16-bit model dtype,
  ///   `weight_zero_point` int32 `[⌈rows·B/32⌉, g]` only when asymmetric (packed along dim 0), `weight_shape` int64
  ///   `[2]`: `4·rows·⌈columns·B/32⌉ + 2·rows·g + (asym ? 4·⌈rows·B/32⌉·g : 0) + 16`.
  ///   vllm-project/compressed-tensors `compressors/pack_quantized/base.py` `compress` and `helpers.py`
  ///   `pack_to_int32`; scale shapes from `quantization/lifecycle/initialize.py` (@ac8e2ba8).
  /// - Precondition: `canStore(format, rows:columns:isEmbedding:)`.
  public func storedBytes(_ format: QuantFormat, rows: Int, columns: Int, isEmbedding: Bool = false) -> Int {
    precondition(
      canStore(format, rows: rows, columns: columns, isEmbedding: isEmbedding),
      "\(rawValue) cannot store \(format.name) for a [\(rows), \(columns)] tensor")
    func words(_ values: Int, bits: Int) -> Int { (values * bits + 31) / 32 }
    switch (self, format.scheme) {
    case (.any, _), (_, .f16), (.llamaCpp, _), (.mlx, _):
      return format.sizeInBytes(rows: rows, columns: columns)
    case (.gptqmodel, .integer(let bits)):
      let groups = columns == 0 ? 0 : columns / (format.groupSize ?? columns)
      return 4 * words(columns, bits: bits) * rows + 4 * groups * words(rows, bits: bits) + 2 * groups * rows + 4 * columns
    case (.llmCompressor, .integer(let bits)):
      let groups = columns == 0 ? 0 : columns / (format.groupSize ?? columns)
      let zeroPoints = format.symmetric ? 0 : 4 * words(rows, bits: bits) * groups
      return 4 * rows * words(columns, bits: bits) + 2 * rows * groups + zeroPoints + 16
    default:
      preconditionFailure("\(rawValue) has no byte model for \(format.name)")
    }
  }

  /// The target named `text` (`llama-cpp`, `mlx`, `gptqmodel`, `llm-compressor`, `any`), or `nil`.
  public init?(name text: String) {
    self.init(rawValue: text.lowercased())
  }
}
