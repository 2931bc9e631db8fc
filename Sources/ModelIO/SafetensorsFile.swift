#if canImport(TensorCore)
  import TensorCore
#endif

/// A safetensors file (Hugging Face's tensor container), memory-mapped and validated on open.
///
/// Every header rule is checked before any offset is used (see `parseHeader`), so a malformed or hostile file
/// gives a `ModelIOError` with the code of the broken rule, never a crash. Tensor data is only read on request.
///
/// ```swift
/// let file = try SafetensorsFile(path: "model.safetensors")
/// for info in file.tensors { print(info.name, info.shape, info.dtype) }
/// let q = try file.tensor(named: "model.layers.0.self_attn.q_proj.weight")   // [out, in] Float
/// ```
public final class SafetensorsFile: Sendable {
  /// The file, for error messages; nil for bytes held in memory without a name.
  public let path: String?
  /// Every tensor, in file order (by data offset). `name == fileName`: safetensors files use HF names.
  public let tensors: [TensorInfo]
  /// The `__metadata__` map (`{"format": "pt"}` in files written by PyTorch), empty when absent.
  public let metadata: [String: String]
  /// Absolute offset of the data section: `8 + header length`.
  public let dataStart: Int

  private let bytes: ByteSource
  private let entries: [String: Entry]

  /// Maps and validates the file at `path`.
  /// - Throws: `.io` when it cannot be read, else the code of the first header rule it breaks.
  public convenience init(path: String) throws(ModelIOError) {
    try self.init(source: try ByteSource(path: path))
  }

  /// Validates a file held in memory (tests, fuzzing).
  /// - Parameters:
  ///   - bytes: the whole file.
  ///   - path: a name for error messages.
  public convenience init(bytes: [UInt8], path: String? = nil) throws(ModelIOError) {
    try self.init(source: ByteSource(bytes: bytes, path: path))
  }

  /// Validates the bytes of `source`.
  public init(source: ByteSource) throws(ModelIOError) {
    let header = try SafetensorsFile.parseHeader(source)
    bytes = source
    path = source.path
    metadata = header.metadata
    dataStart = header.dataStart
    tensors = header.entries.map {
      TensorInfo(
        fileName: $0.name, name: $0.name, shape: $0.shape, dtype: $0.dtype.rawValue, sizeInBytes: $0.end - $0.begin)
    }
    entries = Dictionary(header.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
  }

  /// Whether the file holds a tensor called `name`.
  public func contains(_ name: String) -> Bool { entries[name] != nil }

  /// The element type of the tensor `name`.
  /// - Throws: `.missingTensor` when there is no such tensor.
  public func dtype(of name: String) throws(ModelIOError) -> SafetensorsDType {
    try entry(name).dtype
  }

  /// The tensor `name` as `Float`, converting F16 and BF16 exactly.
  /// - Throws: `.missingTensor` when absent; `.unsupported` for a dtype other than F32, F16 or BF16.
  /// - Complexity: O(elements); reads the tensor's bytes once.
  public func tensor(named name: String) throws(ModelIOError) -> Tensor {
    let (e, raw) = try floatBytes(name)
    return Tensor(shape: e.shape, storage: e.dtype.decodeFloats(raw))
  }

  /// `tensor(named:)`'s values written into `out`, which holds exactly the tensor's element count.
  /// - Throws: as `tensor(named:)`; `.sizeMismatch` when `out` has another count.
  public func readValues(named name: String, into out: UnsafeMutableBufferPointer<Float>) throws(ModelIOError) {
    let (e, raw) = try floatBytes(name)
    guard raw.count == out.count * e.dtype.byteCount else {
      throw ModelIOError(.sizeMismatch, "tensor '\(name)' holds \(raw.count / e.dtype.byteCount) values, not \(out.count)", path: path)
    }
    e.dtype.decodeFloats(raw, into: out)
  }

  /// A copy of the stored bytes of `name`, little-endian, `sizeInBytes` long, whatever the dtype.
  /// - Throws: `.missingTensor` when absent.
  public func rawBytes(named name: String) throws(ModelIOError) -> [UInt8] {
    let e = try entry(name)
    return Array(try bytes.slice(e.begin, e.end - e.begin, "tensor '\(name)'"))
  }

  /// Calls `body` with the stored bytes of `name`, without copying. The buffer is valid only inside `body`.
  /// - Throws: `.missingTensor` when absent, or what `body` throws.
  public func withRawBytes<R>(
    named name: String, _ body: (UnsafeRawBufferPointer) throws(ModelIOError) -> R
  )
    throws(ModelIOError) -> R
  {
    let e = try entry(name)
    return try body(try bytes.slice(e.begin, e.end - e.begin, "tensor '\(name)'"))
  }

  /// Drops the pages that hold `name`'s bytes from the resident set (`ByteSource.dropResidentPages`); nothing for
  /// a name the file lacks.
  public func dropResidentPages(of name: String) {
    guard let e = entries[name] else { return }
    bytes.dropResidentPages(offset: e.begin, length: e.end - e.begin)
  }

  /// The entry and stored bytes of `name`, a tensor that converts to Float.
  /// - Throws: `.missingTensor` when absent; `.unsupported` for a dtype other than F32, F16 or BF16.
  private func floatBytes(_ name: String) throws(ModelIOError) -> (Entry, UnsafeRawBufferPointer) {
    let e = try entry(name)
    guard e.dtype.convertsToFloat else {
      throw ModelIOError(
        .unsupported, "tensor '\(name)' is \(e.dtype.rawValue); only F32, F16 and BF16 convert to Float", path: path)
    }
    return (e, try bytes.slice(e.begin, e.end - e.begin, "tensor '\(name)'"))
  }

  private func entry(_ name: String) throws(ModelIOError) -> Entry {
    guard let e = entries[name] else {
      throw ModelIOError(.missingTensor, "no tensor '\(name)' among \(entries.count)", path: path)
    }
    return e
  }
}
