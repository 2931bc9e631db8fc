import GGML

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
#if canImport(TensorCore)
  import TensorCore
#endif

/// A copy of a GGUF file with some tensors stored as other types, written one tensor at a time.
///
/// The output keeps the source's tensors in their order, with their names and shapes, and its metadata in order;
/// `setValue(_:forKey:)` changes a key the way ggml's `gguf_set_val_*` does (the old entry removed, the new one
/// appended). A tensor whose output type is its stored type is copied byte for byte from the mapped source; any
/// other is re-encoded by `GGMLRequantize.fast` (decoded to `Float` in the file's row order, then encoded without
/// an importance matrix, or with the vector `setImportance` gave it), so at most one tensor's new bytes are in memory
/// at a time. Data is laid out as
/// `GGUFWriter` lays it out: each tensor at the next multiple of the source's alignment, zero padding between.
///
/// `write(to:)` writes beside the target and renames into place (`FileChecks`), so a failure leaves no output.
public struct GGUFRewriter: Sendable {
  /// The file being rewritten.
  public let source: GGUFFile
  /// The output's metadata, in order.
  public private(set) var metadata: [(key: String, value: GGUFValue)]
  /// The output type of each source tensor, in file order.
  public private(set) var types: [GGMLType]
  /// Bytes given for a tensor (by name) instead of re-encoding its source, e.g. codes chosen by GPTQ.
  public private(set) var givenBytes: [String: [UInt8]] = [:]
  /// Importance vectors (by tensor name) its re-encoding is weighed by (llama-quantize's imatrix entries).
  public private(set) var importance: [String: [Float]] = [:]

  /// A rewriter that, unchanged, writes a copy of `source` (same metadata, same tensors, same alignment).
  public init(source: GGUFFile) {
    self.source = source
    metadata = source.metadataKeys.map { ($0, source.metadata[$0]!) }
    types = source.tensors.map(\.type)
  }

  /// Sets `key` as ggml's `gguf_set_val_*` does: removes any entry with that key and appends the new one.
  /// - Throws: `.badHeader` for `general.alignment` (the output keeps the source's alignment) and for an array
  ///   whose elements are not all of its type.
  public mutating func setValue(_ value: GGUFValue, forKey key: String) throws(ModelIOError) {
    guard key != "general.alignment" else {
      throw ModelIOError(.badHeader, "general.alignment is the source's (\(source.alignment)); it cannot be set")
    }
    try GGUFWriterChecks.checkTypes(value, key)
    metadata.removeAll { $0.key == key }
    metadata.append((key, value))
  }

  /// Stores the tensor named `name` as `type` in the output.
  /// - Throws: `.missingTensor`; `.unsupported` when the stored type cannot be decoded or `type` cannot be encoded
  ///   (`GGMLRequantize.canEncode`); `.sizeMismatch` when the tensor's rows are not whole blocks of `type`.
  public mutating func setType(_ type: GGMLType, ofTensor name: String) throws(ModelIOError) {
    guard let index = source.tensors.firstIndex(where: { $0.name == name }) else {
      throw ModelIOError(.missingTensor, "no tensor named '\(name)'", path: source.path)
    }
    let info = source.tensors[index]
    if type != info.type {
      guard info.type.canDequantize else {
        throw ModelIOError(.unsupported, "tensor '\(name)': its stored type \(info.type.name) cannot be decoded", path: source.path)
      }
      guard GGMLRequantize.canEncode(type) else {
        throw ModelIOError(.unsupported, "tensor '\(name)': \(type.name) cannot be written (GGML quants q2_K…q6_K, q4_0…q8_0, F32, F16, BF16)")
      }
      guard type.rowSizeInBytes(info.rowLength) != nil else {
        throw ModelIOError(
          .sizeMismatch, "tensor '\(name)': rows of \(info.rowLength) values are not whole \(type.name) blocks of \(type.blockSize)")
      }
    }
    types[index] = type
  }

  /// Stores the tensor named `name` as `type` with `bytes` as its data (codes another quantizer chose), in the
  /// source's row order.
  /// - Throws: as `setType`; `.sizeMismatch` when `bytes` is not the size of the tensor in `type`.
  public mutating func setBytes(_ bytes: [UInt8], type: GGMLType, ofTensor name: String) throws(ModelIOError) {
    try setType(type, ofTensor: name)
    let info = source.tensors.first { $0.name == name }!
    let rowBytes = type.rowSizeInBytes(info.rowLength)!
    guard bytes.count == rowBytes * (info.elementCount / max(info.rowLength, 1)) else {
      throw ModelIOError(
        .sizeMismatch, "tensor '\(name)': \(bytes.count) bytes given, \(type.name) of \(info.shape) takes \(rowBytes * (info.elementCount / max(info.rowLength, 1)))")
    }
    givenBytes[name] = bytes
  }

  /// Weighs the re-encoding of the tensor named `name` by `weights` (`GGMLRequantize`'s `importance`: one weight per
  /// column, or one row of them per expert). Used only when the tensor is re-encoded (its output type is not its
  /// stored type and no bytes were given), and then only by the quantized types that read it
  /// (`GGMLRequantize.usesImportance`).
  /// - Throws: `.missingTensor`; `.sizeMismatch` when `weights` is not k rows of the tensor's row length with k
  ///   dividing its row count.
  public mutating func setImportance(_ weights: [Float], ofTensor name: String) throws(ModelIOError) {
    guard let info = source.info(named: name) else {
      throw ModelIOError(.missingTensor, "no tensor named '\(name)'", path: source.path)
    }
    let rows = info.elementCount / max(info.rowLength, 1)
    do { _ = try GGMLRequantize.slicing(weights, rows: rows, rowLength: info.rowLength) } catch {
      throw ModelIOError(.sizeMismatch, "tensor '\(name)' \(info.shape): \(error.message)", path: source.path)
    }
    importance[name] = weights
  }

  /// The output's tensor infos, in the source's order, offsets laid out for the output.
  public func outputTensors() throws(ModelIOError) -> [GGUFTensorInfo] {
    var offset = 0
    var out: [GGUFTensorInfo] = []
    out.reserveCapacity(types.count)
    for (info, type) in zip(source.tensors, types) {
      let next = try GGUFTensorInfo(
        name: info.name, dimensions: info.dimensions, type: type, offset: offset, alignment: source.alignment)
      out.append(next)
      offset = GGUFWriter.pad(offset + next.sizeInBytes, source.alignment)
    }
    return out
  }

  /// The output's header: magic, version 3, counts, metadata, tensor infos, padding to the alignment.
  public func header() throws(ModelIOError) -> [UInt8] {
    GGUFWriter.header(metadata: metadata, tensors: try outputTensors(), alignment: source.alignment)
  }

  /// Writes the output to a temporary file beside `path`, then renames it over `path`.
  /// - Parameters:
  ///   - option: the option that named `path`, for messages.
  ///   - progress: called after each tensor with (tensors done, tensor count, the tensor's name).
  /// - Throws: `.cannotCreate` or `.writeFailed` (the temporary file removed, `path` untouched); the errors of
  ///   `GGMLRequantize`.
  public func write(
    to path: String, option: String = "-o", progress: (Int, Int, String) -> Void = { _, _, _ in }
  ) throws(ModelIOError) {
    let head = try header()
    let outputs = try outputTensors()
    let target = FileChecks.resolvedTarget(path)
    let tmp: String, fd: Int32
    do { (tmp, fd) = try FileChecks.createTemporary(beside: target, option: option, path: path) } catch {
      throw ModelIOError(error.code == .writeFailed ? .writeFailed : .cannotCreate, error.message, path: path)
    }
    var closed = false
    func abandon() {
      if !closed { close(fd) }
      unlink(tmp)
    }
    func put(_ bytes: UnsafeRawBufferPointer, _ what: String) throws(ModelIOError) {
      guard writeAll(fd, bytes) else {
        throw ModelIOError(.writeFailed, "writing \(what): \(String(cString: strerror(errno)))", path: path)
      }
    }
    func put(_ bytes: [UInt8], _ what: String) throws(ModelIOError) {
      guard bytes.withUnsafeBytes({ writeAll(fd, $0) }) else {
        throw ModelIOError(.writeFailed, "writing \(what): \(String(cString: strerror(errno)))", path: path)
      }
    }
    do throws(ModelIOError) {
      try put(head, "the header")
      for (index, (info, out)) in zip(source.tensors, outputs).enumerated() {
        let stored = try source.rawBytes(of: info)
        if let given = givenBytes[info.name] {
          try put(given, "tensor '\(info.name)'")
        } else if out.type == info.type {
          try put(stored, "tensor '\(info.name)'")
        } else {
          let bytes = try GGMLRequantize.fast(
            stored, from: info.type, to: out.type, count: info.elementCount, rowLength: info.rowLength,
            importance: importance[info.name])
          try put(bytes, "tensor '\(info.name)'")
        }
        let padding = GGUFWriter.pad(out.sizeInBytes, source.alignment) - out.sizeInBytes
        try put([UInt8](repeating: 0, count: padding), "padding")
        progress(index + 1, outputs.count, info.name)
      }
    } catch {
      abandon()
      throw error.at(path)
    }
    guard fsync(fd) == 0 else {
      let e = ModelIOError(.writeFailed, "fsync failed: \(String(cString: strerror(errno)))", path: path)
      abandon()
      throw e
    }
    closed = true
    guard close(fd) == 0 else { unlink(tmp); throw ModelIOError(.writeFailed, "close failed", path: path) }
    do { try FileChecks.replace(target, with: tmp, option: option, path: path) } catch {
      throw ModelIOError(error.code == .cannotCreate ? .cannotCreate : .writeFailed, error.message, path: path)
    }
  }
}

/// `GGUFWriter`'s array check, shared with `GGUFRewriter`.
enum GGUFWriterChecks {
  static func checkTypes(_ value: GGUFValue, _ key: String) throws(ModelIOError) {
    guard case .array(let t, let elements) = value else { return }
    for e in elements {
      guard e.type == t else { throw ModelIOError(.badHeader, "'\(key)': a \(e.type) element in an array of \(t)") }
      try checkTypes(e, key)
    }
  }
}
