import GGML

#if canImport(TensorCore)
  import TensorCore
#endif

/// A GGUF file (versions 2 and 3), memory-mapped, its header parsed and validated.
///
/// Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count, the metadata
/// (`string` key, `u32` type, value), the tensor infos (`string` name, `u32` rank, `i64` dims innermost first,
/// `u32` ggml type, `u64` offset), padding to `general.alignment` (default 32), then the data section.
///
/// Every count, length, shape and offset is checked before use, as ggml's `gguf_init_from_file_impl` does; a
/// malformed file throws a `ModelIOError` naming the rule it breaks, never traps.
public struct GGUFFile: Sendable {
  /// The mapped bytes; tensor data views stay valid as long as this file value (or `source`) lives.
  public let source: ByteSource
  /// 2 or 3.
  public let version: Int
  /// Data alignment in bytes: `general.alignment` or 32; a power of two.
  public let alignment: Int
  /// File offset of the data section (the end of the header, rounded up to `alignment`).
  public let dataOffset: Int
  /// Metadata keys in file order.
  public let metadataKeys: [String]
  /// Metadata values by key.
  public let metadata: [String: GGUFValue]
  /// Tensor infos in file order.
  public let tensors: [GGUFTensorInfo]
  private let tensorIndex: [String: Int]

  /// The alignment GGUF uses when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
  public static let defaultAlignment = 32
  /// Smallest possible metadata entry: 8-byte key length, 4-byte type, 1-byte value.
  static let minimumEntryBytes = 13
  /// Smallest possible tensor info: 8-byte name length, 4-byte rank, 4-byte type, 8-byte offset.
  static let minimumTensorInfoBytes = 24

  /// The file's path, when it has one.
  public var path: String? { source.path }

  /// Maps and parses the file at `path`.
  /// - Throws: `ModelIOError`: `.io` when it cannot be read, else the code of the first rule the file breaks.
  public init(path: String) throws(ModelIOError) {
    try self.init(source: ByteSource(path: path))
  }

  /// Parses GGUF bytes held in memory (tests, fuzzing); `path` only labels error messages.
  public init(bytes: [UInt8], path: String? = nil) throws(ModelIOError) {
    try self.init(source: ByteSource(bytes: bytes, path: path))
  }

  /// Parses the GGUF file in `source`.
  ///
  /// A file cut short inside its metadata or tensor infos usually reports `.absurdCount` or `.headerTooLarge`
  /// rather than `.truncated`: the counts and lengths it announces then exceed the bytes left.
  /// - Throws: `.truncated` (file ends inside a fixed-size field), `.badMagic`, `.unsupportedVersion` (v1, or > 3),
  ///   `.absurdCount` (tensor, entry or element counts the bytes left cannot hold), `.headerTooLarge` (a string
  ///   longer than the bytes left), `.badHeader` (value type, UTF-8, bool, alignment, name length), `.duplicate`,
  ///   `.badShape`, `.sizeMismatch`, `.unknownDType`, `.misaligned`, `.outOfBounds`, `.overlap`.
  public init(source: ByteSource) throws(ModelIOError) {
    self.source = source
    let path = source.path
    var r = GGUFHeaderReader(source)

    // Magic and version.
    let magic = try source.slice(0, 4, "GGUF magic")
    guard Array(magic) == Array("GGUF".utf8) else {
      throw ModelIOError(.badMagic, "first bytes are \(Array(magic)), expected \"GGUF\"", path: path)
    }
    r.position = 4
    let rawVersion = try r.read(UInt32.self, "GGUF version")
    guard rawVersion == 2 || rawVersion == 3 else {
      let hint = rawVersion == 1 ? " (GGUF v1 is obsolete: re-convert the model)" : ""
      throw ModelIOError(.unsupportedVersion, "GGUF version \(rawVersion), this reads 2 and 3\(hint)", path: path)
    }
    version = Int(rawVersion)

    // Counts: each tensor info and each entry needs a minimum number of bytes, so counts beyond what the file
    // could hold are rejected before anything is reserved.
    let tensorCount = try r.readCount("tensor count", code: .absurdCount)
    let entryCount = try r.readCount("metadata count", code: .absurdCount)
    guard tensorCount <= r.bytesLeft / Self.minimumTensorInfoBytes else {
      throw ModelIOError(
        .absurdCount, "tensor count \(tensorCount) cannot fit in the \(r.bytesLeft) bytes left", path: path)
    }
    guard entryCount <= (r.bytesLeft - tensorCount * Self.minimumTensorInfoBytes) / Self.minimumEntryBytes else {
      throw ModelIOError(
        .absurdCount, "metadata count \(entryCount) cannot fit in the \(r.bytesLeft) bytes left", path: path)
    }

    // Metadata.
    var keys: [String] = []
    var values: [String: GGUFValue] = [:]
    keys.reserveCapacity(entryCount)
    for i in 0..<entryCount {
      let key = try r.readString("key of metadata entry \(i)")
      guard values[key] == nil else {
        throw ModelIOError(.duplicate, "metadata key '\(key)' appears twice", path: path)
      }
      let type = try r.readValueType("value of '\(key)'")
      values[key] = try r.readValue(type, "value of '\(key)'")
      keys.append(key)
    }
    metadataKeys = keys
    metadata = values

    // Alignment: ggml reads it as u32 and requires a power of two.
    switch values["general.alignment"] {
    case nil: alignment = Self.defaultAlignment
    case .uint32(let a) where a > 0 && a & (a - 1) == 0: alignment = Int(a)
    case let other?:
      throw ModelIOError(.badHeader, "general.alignment is \(other) (\(other.typeDescription)), must be a u32 power of two", path: path)
    }

    // Tensor infos.
    var infos: [GGUFTensorInfo] = []
    var index: [String: Int] = [:]
    infos.reserveCapacity(tensorCount)
    for i in 0..<tensorCount {
      let info = try r.readTensorInfo(index: i, alignment: alignment)
      guard index[info.name] == nil else {
        throw ModelIOError(.duplicate, "tensor name '\(info.name)' appears twice", path: path)
      }
      index[info.name] = i
      infos.append(info)
    }
    tensors = infos
    tensorIndex = index

    // Data section: starts at the next multiple of the alignment; every tensor lies inside it, none overlap.
    dataOffset = (r.position + alignment - 1) / alignment * alignment
    let dataSize = max(source.count - dataOffset, 0)
    for info in infos where info.offset > dataSize || info.sizeInBytes > dataSize - info.offset {
      throw ModelIOError(
        .outOfBounds,
        "tensor '\(info.name)': \(info.sizeInBytes) bytes at offset \(info.offset) of the data section, which "
          + "starts at file byte \(dataOffset) and holds \(dataSize) bytes", path: path)
    }
    let byOffset = infos.sorted { $0.offset < $1.offset }
    for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.sizeInBytes > b.offset {
      throw ModelIOError(
        .overlap, "tensors '\(a.name)' (\(a.offset)..<\(a.offset + a.sizeInBytes)) and '\(b.name)' (from \(b.offset)) overlap",
        path: path)
    }
  }

  /// The info of the tensor named `name` (GGUF name), or nil.
  public func info(named name: String) -> GGUFTensorInfo? {
    tensorIndex[name].map { tensors[$0] }
  }

  /// Sum of all tensors' value counts.
  public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

  /// The stored bytes of a tensor: a view into `source`, valid while `source` lives.
  public func rawBytes(of info: GGUFTensorInfo) throws(ModelIOError) -> UnsafeRawBufferPointer {
    try source.slice(dataOffset + info.offset, info.sizeInBytes, "data of tensor '\(info.name)'")
  }

  /// The stored bytes of the tensor named `name`, copied.
  /// - Throws: `.missingTensor` when there is no such tensor.
  public func rawData(named name: String) throws(ModelIOError) -> [UInt8] {
    Array(try rawBytes(of: try requireInfo(name)))
  }

  /// The tensor named `name` (GGUF name), dequantized to `Float`, in PyTorch order (`[out, in]` for a matrix).
  ///
  /// GGUF's `ne[0]` is the fastest dimension, so the stored values are already row-major in the reversed shape;
  /// no data is moved. Llama Q/K rows stay in GGUF's RoPE order here (see `hfTensor(named:)`).
  /// - Throws: `.missingTensor`; `.unsupported` for types `GGMLDequantize` cannot decode (i-quants, Q8_1, ...).
  public func tensor(named name: String) throws(ModelIOError) -> Tensor {
    let info = try requireInfo(name)
    let values = try GGMLDequantize.dequantize(info.type, try rawBytes(of: info), count: info.elementCount)
    return Tensor(shape: info.shape, storage: values)
  }

  func requireInfo(_ name: String) throws(ModelIOError) -> GGUFTensorInfo {
    guard let info = info(named: name) else {
      throw ModelIOError(.missingTensor, "no tensor named '\(name)'", path: path)
    }
    return info
  }
}
