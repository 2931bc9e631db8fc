#if canImport(TensorCore)
  import TensorCore
#endif

/// Dequantization of GGML tensor data to `Float`: one plain reference loop per type, written from the semantics of
/// ggml's `dequantize_row_*` (ggml-quants.c) and bit-identical to gguf-py's `gguf.quants.dequantize`.
///
/// Every result is an integer code times an f16 scale, optionally minus an f16-derived offset, evaluated in `Float`
/// in ggml's order (`(d · sc) · q − dmin · m`); Swift does not contract `a * b - c` into an FMA, so the results
/// match ggml and numpy bit for bit. Block layouts are given on each kernel; all scalars are little-endian.
public enum GGMLDequantize {
  /// Decodes `count` values of `type` from `bytes`.
  /// - Throws: `.sizeMismatch` when `count` is not a whole number of blocks or `bytes` is not exactly their size;
  ///   `.unsupported` for types without a decoder here (see `GGMLType.canDequantize`).
  public static func reference(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws(ModelIOError)
    -> [Float]
  {
    try validate(type, bytes.count, count)
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
      decode(type, bytes, out)
      initialized = count
    }
  }

  /// Decodes `out.count` values of `type` from `bytes` into `out`.
  /// - Throws: as `reference(_:_:count:)`.
  public static func reference(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>)
    throws(ModelIOError)
  {
    try validate(type, bytes.count, out.count)
    decode(type, bytes, out)
  }

  /// `[UInt8]` convenience for tests and small tensors.
  public static func reference(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws(ModelIOError) -> [Float] {
    let result: Result<[Float], ModelIOError> = bytes.withUnsafeBytes { raw in
      Result { () throws(ModelIOError) in try reference(type, raw, count: count) }
    }
    return try result.get()
  }

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

  /// Dispatch on the type; sizes are already validated.
  static func decode(_ type: GGMLType, _ src: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) {
    guard let p = src.baseAddress, let y = out.baseAddress, out.count > 0 else { return }
    let n = out.count
    switch type {
    case .f32: for i in 0..<n { y[i] = Float(bitPattern: u32(p, 4 * i)) }
    case .f16: for i in 0..<n { y[i] = f16(p, 2 * i) }
    case .bf16: for i in 0..<n { y[i] = Half.float(fromBF16: u16(p, 2 * i)) }
    case .f64: for i in 0..<n { y[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    case .i8: for i in 0..<n { y[i] = Float(Int8(bitPattern: p.load(fromByteOffset: i, as: UInt8.self))) }
    case .i16: for i in 0..<n { y[i] = Float(Int16(bitPattern: u16(p, 2 * i))) }
    case .i32: for i in 0..<n { y[i] = Float(Int32(bitPattern: u32(p, 4 * i))) }
    case .q4_0: q4_0(p, y, blocks: n / 32)
    case .q4_1: q4_1(p, y, blocks: n / 32)
    case .q5_0: q5_0(p, y, blocks: n / 32)
    case .q5_1: q5_1(p, y, blocks: n / 32)
    case .q8_0: q8_0(p, y, blocks: n / 32)
    case .q2_K: q2_K(p, y, blocks: n / 256)
    case .q3_K: q3_K(p, y, blocks: n / 256)
    case .q4_K: q4_K(p, y, blocks: n / 256)
    case .q5_K: q5_K(p, y, blocks: n / 256)
    case .q6_K: q6_K(p, y, blocks: n / 256)
    default: preconditionFailure("\(type.name) passed validation but has no decoder")
    }
  }

  // MARK: - Scalar loads

  @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
  }

  @inline(__always) static func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
  }

  @inline(__always) static func f16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Half.float(fromF16: u16(p, offset))
  }

  @inline(__always) static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
  }

  // MARK: - Legacy 32-value blocks

  /// Q4_0, 18 bytes: `d: f16 @0, qs[16] @2`. Value j < 16 is the low nibble of `qs[j]`, value j + 16 the high
  /// nibble; `y = d · (q − 8)`.
  static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 18 * b, o = y + 32 * b
      let d = f16(x, 0)
      for j in 0..<16 {
        let q = byte(x, 2 + j)
        o[j] = d * Float(Int(q & 0x0F) - 8)
        o[j + 16] = d * Float(Int(q >> 4) - 8)
      }
    }
  }

  /// Q4_1, 20 bytes: `d: f16 @0, m: f16 @2, qs[16] @4`; nibbles as Q4_0, `y = d · q + m`.
  static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 20 * b, o = y + 32 * b
      let d = f16(x, 0), m = f16(x, 2)
      for j in 0..<16 {
        let q = byte(x, 4 + j)
        o[j] = d * Float(q & 0x0F) + m
        o[j + 16] = d * Float(q >> 4) + m
      }
    }
  }

  /// Q5_0, 22 bytes: `d: f16 @0, qh: u32 @2, qs[16] @6`. Bit j of `qh` is the fifth bit of value j;
  /// `y = d · (q − 16)`.
  static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 22 * b, o = y + 32 * b
      let d = f16(x, 0), qh = u32(x, 2)
      for j in 0..<16 {
        let q = byte(x, 6 + j)
        let lo = Int(q & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
        let hi = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
        o[j] = d * Float(lo - 16)
        o[j + 16] = d * Float(hi - 16)
      }
    }
  }

  /// Q5_1, 24 bytes: `d: f16 @0, m: f16 @2, qh: u32 @4, qs[16] @8`; bits as Q5_0, `y = d · q + m`.
  static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 24 * b, o = y + 32 * b
      let d = f16(x, 0), m = f16(x, 2), qh = u32(x, 4)
      for j in 0..<16 {
        let q = byte(x, 8 + j)
        let lo = UInt32(q & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let hi = UInt32(q >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        o[j] = d * Float(lo) + m
        o[j + 16] = d * Float(hi) + m
      }
    }
  }

  /// Q8_0, 34 bytes: `d: f16 @0, qs: int8[32] @2`; `y = d · q`.
  static func q8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 34 * b, o = y + 32 * b
      let d = f16(x, 0)
      for j in 0..<32 { o[j] = Float(Int8(bitPattern: byte(x, 2 + j))) * d }
    }
  }
}
