/// What `bitplan inspect` shows of one stored tensor, whatever the file format.
public struct TensorInfo: Sendable, Codable, Equatable {
  /// The name in the file (`blk.0.attn_q.weight` in GGUF, the HF name in safetensors).
  public var fileName: String
  /// The Hugging Face parameter path (`model.layers.0.self_attn.q_proj.weight`).
  public var name: String
  /// PyTorch order, outermost first: `[out, in]` for a weight matrix.
  public var shape: [Int]
  /// The stored element type, in the file format's own spelling (`Q4_1`, `F32`, `BF16`).
  public var dtype: String
  /// Bytes the tensor occupies in the file.
  public var sizeInBytes: Int

  public init(fileName: String, name: String, shape: [Int], dtype: String, sizeInBytes: Int) {
    self.fileName = fileName
    self.name = name
    self.shape = shape
    self.dtype = dtype
    self.sizeInBytes = sizeInBytes
  }

  /// Number of values.
  public var parameterCount: Int { shape.reduce(1, *) }
}
