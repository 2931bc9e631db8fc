import GGML

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
#if canImport(TensorCore)
  import TensorCore
#endif

/// Builds a GGUF v3 file: metadata of every type (nested arrays included), tensors given as `Float` (stored as F32,
/// F16 or BF16) or as raw bytes of any ggml type, data aligned to `alignment`. `write(to:)` is atomic.
///
/// Tensors are laid out in the order added, each at the next multiple of `alignment`, exactly as gguf-py's writer
/// and ggml's `gguf_write_to_file` do, so ggml's strict "offset equals running padded size" check also passes.
public struct GGUFWriter: Sendable {
  /// Data alignment in bytes, a power of two; written as `general.alignment` when it is not the default 32.
  public let alignment: Int
  private var entries: [(key: String, value: GGUFValue)] = []
  private var tensors: [(info: GGUFTensorInfo, data: [UInt8])] = []
  private var keys: Set<String> = []
  private var tensorNames: Set<String> = []
  private var dataSize = 0

  /// - Precondition: `alignment` is a power of two.
  public init(alignment: Int = GGUFFile.defaultAlignment) {
    precondition(alignment > 0 && alignment & (alignment - 1) == 0 && alignment <= Int(UInt32.max),
      "alignment \(alignment) is not a power of two")
    self.alignment = alignment
    if alignment != GGUFFile.defaultAlignment {
      entries.append(("general.alignment", .uint32(UInt32(alignment))))
      keys.insert("general.alignment")
    }
  }

  /// Adds a metadata entry.
  /// - Throws: `.duplicate` for a key already added (including `general.alignment`, which `init` sets);
  ///   `.badHeader` for an array whose elements are not all of its declared type.
  public mutating func add(_ key: String, _ value: GGUFValue) throws(ModelIOError) {
    guard !keys.contains(key) else {
      throw ModelIOError(.duplicate, "metadata key '\(key)' added twice")
    }
    try Self.checkTypes(value, key)
    entries.append((key, value))
    keys.insert(key)
  }

  private static func checkTypes(_ value: GGUFValue, _ key: String) throws(ModelIOError) {
    guard case .array(let t, let elements) = value else { return }
    for e in elements {
      guard e.type == t else { throw ModelIOError(.badHeader, "'\(key)': a \(e.type) element in an array of \(t)") }
      try checkTypes(e, key)
    }
  }

  /// Adds a tensor from its stored bytes. `shape` is PyTorch order (`[out, in]`); GGUF stores it reversed.
  /// - Throws: `.duplicate`, `.badHeader` (name of 64 bytes or more), `.badShape`, `.sizeMismatch` (a row not
  ///   whole blocks, or `data.count` not the size of `shape` in `type`).
  public mutating func addTensor(_ name: String, shape: [Int], type: GGMLType, data: [UInt8]) throws(ModelIOError) {
    guard !tensorNames.contains(name) else {
      throw ModelIOError(.duplicate, "tensor '\(name)' added twice")
    }
    guard name.utf8.count < GGUFHeaderReader.maxTensorNameBytes else {
      throw ModelIOError(.badHeader, "tensor name '\(name)' has \(name.utf8.count) bytes, ggml allows 63")
    }
    let info = try GGUFTensorInfo(
      name: name, dimensions: shape.reversed(), type: type, offset: dataSize, alignment: alignment)
    guard info.sizeInBytes == data.count else {
      throw ModelIOError(.sizeMismatch, "tensor '\(name)': \(shape) in \(type.name) is \(info.sizeInBytes) bytes, got \(data.count)")
    }
    tensors.append((info, data))
    tensorNames.insert(name)
    dataSize = Self.pad(dataSize + data.count, alignment)
  }

  /// Adds a `Float` tensor stored as `type` (`.f32`, `.f16` or `.bf16`, both rounded to nearest even).
  /// - Throws: `.unsupported` for other types (quantize with the Quantization module and pass raw bytes).
  public mutating func addTensor(_ name: String, _ tensor: Tensor, as type: GGMLType = .f32) throws(ModelIOError) {
    var bytes: [UInt8] = []
    switch type {
    case .f32:
      bytes.reserveCapacity(4 * tensor.count)
      for x in tensor.storage { Self.append(x.bitPattern, to: &bytes) }
    case .f16:
      bytes.reserveCapacity(2 * tensor.count)
      for x in tensor.storage { Self.append(Half.f16Bits(x), to: &bytes) }
    case .bf16:
      bytes.reserveCapacity(2 * tensor.count)
      for x in tensor.storage { Self.append(Half.bf16Bits(x), to: &bytes) }
    default:
      throw ModelIOError(.unsupported, "tensor '\(name)': GGUFWriter converts Float only to F32, F16 and BF16, not \(type.name)")
    }
    try addTensor(name, shape: tensor.shape, type: type, data: bytes)
  }

  /// The header of a file with this writer's metadata and the `declared` tensors (name, PyTorch shape, type) laid
  /// out in order, with their infos: for a caller that writes the data itself, tensor by tensor, instead of
  /// holding it here (`TinyLlama.streamGGUF`). Tensors added with `addTensor` are not part of it.
  /// - Throws: the errors of `addTensor` for a bad name or shape.
  func header(declaring declared: [(name: String, shape: [Int], type: GGMLType)]) throws(ModelIOError)
    -> (header: [UInt8], infos: [GGUFTensorInfo])
  {
    var infos: [GGUFTensorInfo] = []
    var offset = 0
    for (name, shape, type) in declared {
      guard name.utf8.count < GGUFHeaderReader.maxTensorNameBytes else {
        throw ModelIOError(.badHeader, "tensor name '\(name)' has \(name.utf8.count) bytes, ggml allows 63")
      }
      let info = try GGUFTensorInfo(name: name, dimensions: shape.reversed(), type: type, offset: offset, alignment: alignment)
      infos.append(info)
      offset = Self.pad(offset + info.sizeInBytes, alignment)
    }
    return (Self.header(metadata: entries, tensors: infos, alignment: alignment), infos)
  }

  /// The header: magic, version 3, counts, metadata, tensor infos, padding to `alignment`.
  public func header() -> [UInt8] {
    Self.header(metadata: entries, tensors: tensors.map(\.info), alignment: alignment)
  }

  /// A GGUF v3 header: magic, version, counts, the metadata in order, the tensor infos (with their offsets) in order,
  /// zero padding to `alignment`. `GGUFRewriter` writes its header with it too.
  static func header(
    metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensorInfo], alignment: Int
  ) -> [UInt8] {
    var out: [UInt8] = Array("GGUF".utf8)
    append(UInt32(3), to: &out)
    append(UInt64(tensors.count), to: &out)
    append(UInt64(metadata.count), to: &out)
    for (key, value) in metadata {
      appendString(key, to: &out)
      append(value.type.rawValue, to: &out)
      appendValue(value, to: &out)
    }
    for info in tensors {
      appendString(info.name, to: &out)
      append(UInt32(info.dimensions.count), to: &out)
      for d in info.dimensions { append(Int64(d), to: &out) }
      append(info.type.rawValue, to: &out)
      append(UInt64(info.offset), to: &out)
    }
    out += [UInt8](repeating: 0, count: pad(out.count, alignment) - out.count)
    return out
  }

  /// The whole file in memory.
  public func serialized() -> [UInt8] {
    var out = header()
    out.reserveCapacity(out.count + dataSize)
    for (_, data) in tensors {
      out += data
      out += [UInt8](repeating: 0, count: Self.pad(data.count, alignment) - data.count)
    }
    return out
  }

  /// Writes the file to `path + ".tmp-<pid>"`, flushes it, and renames it over `path`, so readers never see a
  /// partial file. - Throws: `.cannotCreate` or `.writeFailed`, with the temporary file removed.
  public func write(to path: String) throws(ModelIOError) {
    let target = FileChecks.resolvedTarget(path)
    let tmp: String, fd: Int32
    do { (tmp, fd) = try FileChecks.createTemporary(beside: target, option: "-o", path: path) } catch {
      throw ModelIOError(error.code == .writeFailed ? .writeFailed : .cannotCreate, error.message, path: path)
    }
    func fail(_ what: String) -> ModelIOError {
      let e = ModelIOError(.writeFailed, "\(what): \(String(cString: strerror(errno)))", path: path)
      close(fd)
      unlink(tmp)
      return e
    }
    func put(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { writeAll(fd, $0) } }
    guard put(header()) else { throw fail("write failed") }
    for (_, data) in tensors {
      guard put(data), put([UInt8](repeating: 0, count: Self.pad(data.count, alignment) - data.count)) else {
        throw fail("write failed")
      }
    }
    guard fsync(fd) == 0 else { throw fail("fsync failed") }
    guard close(fd) == 0 else { unlink(tmp); throw ModelIOError(.writeFailed, "close failed", path: path) }
    do { try FileChecks.replace(target, with: tmp, option: "-o", path: path) } catch {
      throw ModelIOError(error.code == .cannotCreate ? .cannotCreate : .writeFailed, error.message, path: path)
    }
  }

  // MARK: - Encoding

  static func pad(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }

  static func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: v.littleEndian) { out += $0 }
  }

  static func appendString(_ s: String, to out: inout [UInt8]) {
    append(UInt64(s.utf8.count), to: &out)
    out += s.utf8
  }

  static func appendValue(_ value: GGUFValue, to out: inout [UInt8]) {
    switch value {
    case .uint8(let v): append(v, to: &out)
    case .int8(let v): append(v, to: &out)
    case .uint16(let v): append(v, to: &out)
    case .int16(let v): append(v, to: &out)
    case .uint32(let v): append(v, to: &out)
    case .int32(let v): append(v, to: &out)
    case .float32(let v): append(v.bitPattern, to: &out)
    case .bool(let v): append(UInt8(v ? 1 : 0), to: &out)
    case .string(let v): appendString(v, to: &out)
    case .uint64(let v): append(v, to: &out)
    case .int64(let v): append(v, to: &out)
    case .float64(let v): append(v.bitPattern, to: &out)
    case .array(let t, let elements):
      append(t.rawValue, to: &out)
      append(UInt64(elements.count), to: &out)
      for e in elements { appendValue(e, to: &out) }
    }
  }
}
