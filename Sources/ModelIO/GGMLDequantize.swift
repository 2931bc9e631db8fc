import GGML

/// GGUF tensor data to `Float`: the size checks a file's untrusted numbers need, then GGML's decoder.
///
/// The decoders themselves live in the GGML module (`GGMLDecode.reference`, one value at a time, and its
/// bit-identical twin `GGMLDecode.fast`); this enum only turns a size mismatch or an undecodable type into a
/// `ModelIOError` instead of a precondition failure. Results are bit-identical to ggml's `dequantize_row_*` and
/// gguf-py's `gguf.quants.dequantize`.
public enum GGMLDequantize {
  /// Decodes `count` values of `type` from `bytes` with `GGMLDecode.fast`.
  /// - Throws: `.sizeMismatch` when `count` is not a whole number of blocks or `bytes` is not exactly their size;
  ///   `.unsupported` for types without a decoder (see `GGMLType.canDequantize`).
  public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws(ModelIOError)
    -> [Float]
  {
    try validate(type, bytes.count, count)
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
      GGMLDecode.fast(type, bytes, into: out)
      initialized = count
    }
  }

  /// Decodes `out.count` values of `type` from `bytes` into `out` with `GGMLDecode.fast` (a streamed weight's own
  /// buffer: no array in between).
  /// - Throws: as `dequantize(_:_:count:)`.
  public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>)
    throws(ModelIOError)
  {
    try validate(type, bytes.count, out.count)
    GGMLDecode.fast(type, bytes, into: out)
  }

  /// Decodes `count` values of `type` from `bytes` with `GGMLDecode.reference` (one value at a time).
  /// - Throws: as `dequantize(_:_:count:)`.
  public static func reference(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws(ModelIOError)
    -> [Float]
  {
    try validate(type, bytes.count, count)
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
      GGMLDecode.reference(type, bytes, into: out)
      initialized = count
    }
  }

  /// Decodes `out.count` values of `type` from `bytes` into `out` with `GGMLDecode.reference`.
  /// - Throws: as `dequantize(_:_:count:)`.
  public static func reference(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>)
    throws(ModelIOError)
  {
    try validate(type, bytes.count, out.count)
    GGMLDecode.reference(type, bytes, into: out)
  }

  /// `[UInt8]` convenience for tests and small tensors (`GGMLDecode.reference`).
  public static func reference(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws(ModelIOError) -> [Float] {
    let result: Result<[Float], ModelIOError> = bytes.withUnsafeBytes { raw in
      Result { () throws(ModelIOError) in try reference(type, raw, count: count) }
    }
    return try result.get()
  }

  /// The checks `GGMLDecode` leaves to its callers as preconditions, as typed errors.
  static func validate(_ type: GGMLType, _ byteCount: Int, _ count: Int) throws(ModelIOError) {
    guard type.canDequantize else {
      throw ModelIOError(.unsupported, "dequantizing \(type.name) is not implemented")
    }
    guard let expected = type.rowSizeInBytes(count) else {
      throw ModelIOError(.sizeMismatch, "\(count) values are not whole \(type.name) blocks of \(type.blockSize)")
    }
    guard expected == byteCount else {
      throw ModelIOError(.sizeMismatch, "\(count) values of \(type.name) take \(expected) bytes, got \(byteCount)")
    }
  }
}
