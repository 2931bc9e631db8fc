import TensorCore

/// Dequantization of GGML data to `Float` (ggml-quants.c `dequantize_row_*`, gguf-py `gguf.quants.dequantize`):
/// `reference` decodes every value on its own from `GGMLLayout`'s accessors; `fast` runs block loops in ggml's order
/// (`GGMLDecode+Fast.swift`). The two agree bit for bit (GGMLTests), and both agree with gguf-py (ModelIOTests,
/// QuantizationTests' GGMLGoldenTests).
///
/// Every value is an integer code times an f16-derived scale, minus an f16-derived minimum for the affine types,
/// evaluated in `Float` in ggml's order:
/// - q4_0, q5_0, q8_0: `code · d`;  q4_1, q5_1: `code · d + m`;
/// - q2_K, q4_K, q5_K: `(d · sc) · code − dmin · min`;  q3_K, q6_K: `(d · sc) · code`.
///
/// Swift does not contract `a * b - c` into an FMA, so the results match ggml and numpy bit for bit. Plain types
/// (f32, f16, bf16, f64, i8, i16, i32) are widened exactly (f64 rounds to nearest).
public enum GGMLDecode {
  /// Decodes `out.count` values of `type` from `src`, one value at a time. Slow and obviously right.
  /// - Precondition: `type.canDequantize`, and `src.count == type.rowSizeInBytes(out.count)` (callers holding
  ///   untrusted sizes check them first: ModelIO's `GGMLDequantize` throws a `ModelIOError`).
  public static func reference(_ type: GGMLType, _ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
    checkSizes(type, src.count, out.count)
    guard let s = src.baseAddress, let y = out.baseAddress, out.count > 0 else { return }
    if type.blockSize == 1 { return scalars(type, s, y, out.count) }
    let length = type.blockSize, size = type.bytesPerBlock
    for index in 0..<out.count {
      // Value i of the block at p: its code, the block's f16 scales, its sub-block's integer scale.
      let p = s + (index / length) * size, i = index % length
      let q = Float(GGMLLayout.code(type, p, i))
      let (d, m) = GGMLLayout.blockScales(type, p)
      switch type {
      case .q4_0, .q5_0, .q8_0: y[index] = q * d
      case .q4_1, .q5_1: y[index] = q * d + m
      case .q2_K, .q4_K, .q5_K:
        let (sc, min) = GGMLLayout.subScale(type, p, i / GGMLLayout.subBlockLength(type))
        y[index] = (d * Float(sc)) * q - m * Float(min)
      case .q3_K, .q6_K:
        let (sc, _) = GGMLLayout.subScale(type, p, i / GGMLLayout.subBlockLength(type))
        y[index] = (d * Float(sc)) * q
      default: preconditionFailure("\(type.name) passed canDequantize but has no decoder")
      }
    }
  }

  /// Decodes `out.count` values of `type` from `src` with block loops; bit-identical to `reference`.
  /// - Precondition: as `reference(_:_:into:)`.
  public static func fast(_ type: GGMLType, _ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
    checkSizes(type, src.count, out.count)
    guard let s = src.baseAddress, let y = out.baseAddress, out.count > 0 else { return }
    switch type {
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: legacyBlocks(type, s, y, blocks: out.count / 32)
    case .q2_K: q2KBlocks(s, y, blocks: out.count / 256)
    case .q3_K: q3KBlocks(s, y, blocks: out.count / 256)
    case .q4_K, .q5_K: q45KBlocks(type, s, y, blocks: out.count / 256)
    case .q6_K: q6KBlocks(s, y, blocks: out.count / 256)
    default: scalars(type, s, y, out.count)  // already a plain loop LLVM vectorizes: the fast path too
    }
  }

  @inline(__always) static func checkSizes(_ type: GGMLType, _ byteCount: Int, _ count: Int) {
    precondition(type.canDequantize, "decoding \(type.name) is not implemented")
    precondition(type.rowSizeInBytes(count) == byteCount,
      "\(type.name): \(byteCount) bytes for \(count) values (\(type.blockSize) per \(type.bytesPerBlock)-byte block)")
  }

  /// The plain types, one value each: f32, f16, bf16, f64, i8, i16, i32.
  static func scalars(_ type: GGMLType, _ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    @inline(__always) func u16(_ i: Int) -> UInt16 {
      UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
    @inline(__always) func u32(_ i: Int) -> UInt32 { BlockBytes.u32(p, 4 * i) }
    switch type {
    case .f32: for i in 0..<n { y[i] = Float(bitPattern: u32(i)) }
    case .f16: for i in 0..<n { y[i] = Half.float(fromF16: u16(i)) }
    case .bf16: for i in 0..<n { y[i] = Half.float(fromBF16: u16(i)) }
    case .f64:
      for i in 0..<n {
        y[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
      }
    case .i8: for i in 0..<n { y[i] = Float(p.load(fromByteOffset: i, as: Int8.self)) }
    case .i16: for i in 0..<n { y[i] = Float(Int16(bitPattern: u16(i))) }
    case .i32: for i in 0..<n { y[i] = Float(Int32(bitPattern: u32(i))) }
    default: preconditionFailure("\(type.name) is not a plain type")
    }
  }
}
