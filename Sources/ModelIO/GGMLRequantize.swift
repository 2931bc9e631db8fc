import GGML

#if canImport(TensorCore)
  import TensorCore
#endif

/// Re-encoding stored GGML data as another type, the way `llama-quantize` does it: every row decoded to `Float`
/// (`llama_tensor_dequantize_impl`, ggml's `to_float`), then encoded by `ggml_quantize_chunk` with no importance
/// matrix (`quantize_row_*_ref` for every quantized type, `ggml_fp32_to_fp16_row` for F16,
/// `ggml_fp32_to_bf16_row_ref` for BF16, the values themselves for F32).
///
/// Rows are independent in both directions (blocks never cross a row), so the result does not depend on the order
/// of the rows: a GGUF's RoPE-permuted Q/K rows are re-encoded in the file's order, as llama-quantize does, with no
/// permutation. `reference` runs ggml's scalar decoders and encoders over the whole tensor on one thread; `fast`
/// splits the rows over `Parallel` workers and uses `GGMLDecode.fast` / `GGMLEncode.fast`. Both write the same bytes.
public enum GGMLRequantize {
  /// Whether `type` is a type this enum writes: the GGML types `GGMLEncode` quantizes (q4_0 … q8_0, q2_K … q6_K),
  /// and the float types F32, F16 and BF16.
  public static func canEncode(_ type: GGMLType) -> Bool {
    type.canQuantize || type == .f32 || type == .f16 || type == .bf16
  }

  /// The bytes of `count` values stored as `from` in `bytes`, re-encoded as `to`, rows of `rowLength` values.
  /// - Throws: `.unsupported` when `from` cannot be decoded or `to` cannot be encoded; `.sizeMismatch` when
  ///   `rowLength` does not divide `count`, a row is not whole blocks of either type, or `bytes` is not the size of
  ///   `count` values of `from`; `.badShape` when a value becomes infinite or NaN in a float `to` (an f16
  ///   overflow), which llama-quantize refuses too (`ggml_validate_row_data`).
  public static func fast(
    _ bytes: UnsafeRawBufferPointer, from: GGMLType, to: GGMLType, count: Int, rowLength: Int
  ) throws(ModelIOError) -> [UInt8] {
    let rowBytes = try check(bytes.count, from: from, to: to, count: count, rowLength: rowLength)
    let rows = count / rowLength
    let sourceRowBytes = bytes.count / max(rows, 1)
    var out = [UInt8](repeating: 0, count: rows * rowBytes)
    out.withUnsafeMutableBytes { dst in
      // ~40 ns per value for the K-quant searches: a few rows already pay for a worker.
      Parallel.forEachChunk(rows, costPerItem: rowLength, minimumWork: 1 << 15) { range in
        var values = [Float](repeating: 0, count: rowLength)
        values.withUnsafeMutableBufferPointer { row in
          for r in range {
            let src = UnsafeRawBufferPointer(rebasing: bytes[r * sourceRowBytes..<(r + 1) * sourceRowBytes])
            GGMLDecode.fast(from, src, into: row)
            encodeRow(to, UnsafeBufferPointer(row), into: UnsafeMutableRawBufferPointer(rebasing: dst[r * rowBytes..<(r + 1) * rowBytes]), fast: true)
          }
        }
      }
    }
    try checkFinite(out, to)
    return out
  }

  /// `fast`'s twin: the whole tensor decoded with `GGMLDecode.reference`, then encoded as one run of rows with
  /// `GGMLEncode.reference` (ggml's `quantize_row_*_ref(src, dst, nrows · n_per_row)`). Same bytes as `fast`.
  /// - Throws: as `fast`.
  public static func reference(
    _ bytes: UnsafeRawBufferPointer, from: GGMLType, to: GGMLType, count: Int, rowLength: Int
  ) throws(ModelIOError) -> [UInt8] {
    let rowBytes = try check(bytes.count, from: from, to: to, count: count, rowLength: rowLength)
    // x: [rows, rowLength] as Float, row-major.
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { GGMLDecode.reference(from, bytes, into: $0) }
    var out = [UInt8](repeating: 0, count: count / rowLength * rowBytes)
    values.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBytes { encodeRow(to, x, into: $0, fast: false) }
    }
    try checkFinite(out, to)
    return out
  }

  /// Encodes `x` (whole blocks of `type`) into `out`: a GGML quantizer, or the float conversions of ggml.c.
  static func encodeRow(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer, fast: Bool) {
    switch type {
    case .f32:
      for (i, v) in x.enumerated() { out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    case .f16:
      // ggml_compute_fp32_to_fp16: round to nearest even, overflow to infinity (Float16's conversion).
      for (i, v) in x.enumerated() { out.storeBytes(of: Half.f16Bits(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    case .bf16:
      // ggml_compute_fp32_to_bf16: round to nearest even, NaN made quiet (the same rule as Half.bf16Bits).
      for (i, v) in x.enumerated() { out.storeBytes(of: Half.bf16Bits(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    default:
      if fast { GGMLEncode.fast(type, x, into: out) } else { GGMLEncode.reference(type, x, into: out) }
    }
  }

  /// Throws `.badShape` when float output `bytes` of `type` hold an infinity or NaN (all exponent bits set).
  static func checkFinite(_ bytes: [UInt8], _ type: GGMLType) throws(ModelIOError) {
    let (width, mask): (Int, UInt32) =
      switch type {
      case .f16: (2, 0x7C00)
      case .bf16: (2, 0x7F80)
      case .f32: (4, 0x7F80_0000)
      default: (0, 0)
      }
    guard width > 0 else { return }
    let bad = bytes.withUnsafeBytes { raw -> Int? in
      for i in 0..<raw.count / width {
        let bits = width == 2
          ? UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
          : UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
        if bits & mask == mask { return i }
      }
      return nil
    }
    if let bad {
      throw ModelIOError(.badShape, "value \(bad) is not finite as \(type.name) (out of its range); llama-quantize refuses it too")
    }
  }

  /// The checks `GGMLDecode` and `GGMLEncode` leave to callers; returns the bytes of one output row.
  static func check(
    _ byteCount: Int, from: GGMLType, to: GGMLType, count: Int, rowLength: Int
  ) throws(ModelIOError) -> Int {
    guard from.canDequantize else { throw ModelIOError(.unsupported, "decoding \(from.name) is not implemented") }
    guard canEncode(to) else { throw ModelIOError(.unsupported, "encoding \(to.name) is not implemented") }
    guard rowLength > 0, count >= 0, count % rowLength == 0 else {
      throw ModelIOError(.sizeMismatch, "\(count) values are not whole rows of \(rowLength)")
    }
    guard let sourceRow = from.rowSizeInBytes(rowLength), sourceRow * (count / rowLength) == byteCount else {
      throw ModelIOError(.sizeMismatch, "\(count) values of \(from.name) in rows of \(rowLength) do not take \(byteCount) bytes")
    }
    guard let rowBytes = to.rowSizeInBytes(rowLength) else {
      throw ModelIOError(.sizeMismatch, "rows of \(rowLength) values are not whole \(to.name) blocks of \(to.blockSize)")
    }
    return rowBytes
  }
}
