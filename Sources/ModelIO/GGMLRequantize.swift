import GGML

#if canImport(TensorCore)
  import TensorCore
#endif

/// Re-encoding stored GGML data as another type, the way `llama-quantize` does it: every row decoded to `Float`
/// (`llama_tensor_dequantize_impl`, ggml's `to_float`), then encoded by `ggml_quantize_chunk`: without an importance
/// matrix `quantize_row_*_ref` for every quantized type, with one (`importance`) ggml's `quantize_<type>(…,
/// quant_weights)` row by row (`GGMLEncode.weighted`; q8_0 ignores the weights); `ggml_fp32_to_fp16_row` for F16,
/// `ggml_fp32_to_bf16_row_ref` for BF16, the values themselves for F32 (the float types ignore the weights).
///
/// `importance` holds k·rowLength weights, k dividing the row count: row r is weighed by slice r / (rows / k), as
/// `llama_tensor_quantize_impl` gives each expert's rows (ne[1] of them) that expert's slice; k = 1 for a matrix,
/// every row the same vector. The weights are per column, so the row order does not matter to them either.
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

  /// Whether `type`'s encoder reads an importance vector: the quantized types but q8_0 (`quantize_q8_0` ignores
  /// it), not the float conversions.
  public static func usesImportance(_ type: GGMLType) -> Bool { type.canQuantize && type != .q8_0 }

  /// The bytes of `count` values stored as `from` in `bytes`, re-encoded as `to`, rows of `rowLength` values,
  /// weighed by `importance` when it is given (see the type).
  /// - Throws: `.unsupported` when `from` cannot be decoded or `to` cannot be encoded; `.sizeMismatch` when
  ///   `rowLength` does not divide `count`, a row is not whole blocks of either type, `bytes` is not the size of
  ///   `count` values of `from`, or `importance` is not k whole rows with k dividing the row count; `.badShape`
  ///   when a value becomes infinite or NaN in a float `to` (an f16 overflow), which llama-quantize refuses too
  ///   (`ggml_validate_row_data`).
  public static func fast(
    _ bytes: UnsafeRawBufferPointer, from: GGMLType, to: GGMLType, count: Int, rowLength: Int,
    importance: [Float]? = nil
  ) throws(ModelIOError) -> [UInt8] {
    let rowBytes = try check(bytes.count, from: from, to: to, count: count, rowLength: rowLength)
    let rows = count / rowLength
    let rowsPerSlice = try slicing(importance, rows: rows, rowLength: rowLength)
    let sourceRowBytes = bytes.count / max(rows, 1)
    var out = [UInt8](repeating: 0, count: rows * rowBytes)
    withImportance(importance) { weights in
      out.withUnsafeMutableBytes { dst in
        // ~40 ns per value for the K-quant searches: a few rows already pay for a worker.
        Parallel.forEachChunk(rows, costPerItem: rowLength, minimumWork: 1 << 15) { range in
          var values = [Float](repeating: 0, count: rowLength)
          values.withUnsafeMutableBufferPointer { row in
            for r in range {
              let src = UnsafeRawBufferPointer(rebasing: bytes[r * sourceRowBytes..<(r + 1) * sourceRowBytes])
              GGMLDecode.fast(from, src, into: row)
              encodeRow(
                to, UnsafeBufferPointer(row), importance: weights.map { slice($0, r / rowsPerSlice, rowLength) },
                into: UnsafeMutableRawBufferPointer(rebasing: dst[r * rowBytes..<(r + 1) * rowBytes]), fast: true)
            }
          }
        }
      }
    }
    try checkFinite(out, to)
    return out
  }

  /// `fast`'s twin: the whole tensor decoded with `GGMLDecode.reference`, then encoded as one run of rows with
  /// `GGMLEncode.reference` (ggml's `quantize_row_*_ref(src, dst, nrows · n_per_row)`), or, with `importance`, row
  /// by row with `GGMLEncode.weighted` on one thread. Same bytes as `fast`.
  /// - Throws: as `fast`.
  public static func reference(
    _ bytes: UnsafeRawBufferPointer, from: GGMLType, to: GGMLType, count: Int, rowLength: Int,
    importance: [Float]? = nil
  ) throws(ModelIOError) -> [UInt8] {
    let rowBytes = try check(bytes.count, from: from, to: to, count: count, rowLength: rowLength)
    let rowsPerSlice = try slicing(importance, rows: count / rowLength, rowLength: rowLength)
    // x: [rows, rowLength] as Float, row-major.
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBufferPointer { GGMLDecode.reference(from, bytes, into: $0) }
    var out = [UInt8](repeating: 0, count: count / rowLength * rowBytes)
    values.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBytes { o in
        withImportance(importance) { weights in
          guard let weights else { return encodeRow(to, x, importance: nil, into: o, fast: false) }
          for r in 0..<count / rowLength {
            encodeRow(
              to, UnsafeBufferPointer(rebasing: x[r * rowLength..<(r + 1) * rowLength]),
              importance: slice(weights, r / rowsPerSlice, rowLength),
              into: UnsafeMutableRawBufferPointer(rebasing: o[r * rowBytes..<(r + 1) * rowBytes]), fast: false)
          }
        }
      }
    }
    try checkFinite(out, to)
    return out
  }

  /// The rows each importance slice weighs (all of them without `importance`).
  static func slicing(_ importance: [Float]?, rows: Int, rowLength: Int) throws(ModelIOError) -> Int {
    guard let importance else { return max(rows, 1) }
    let slices = importance.count / rowLength
    guard slices > 0, importance.count % rowLength == 0, rows % slices == 0 else {
      throw ModelIOError(
        .sizeMismatch, "\(importance.count) importances are not whole rows of \(rowLength) for \(rows) rows")
    }
    return max(rows / slices, 1)
  }

  /// `body` with a view of `importance`'s values, or nil.
  static func withImportance(_ importance: [Float]?, _ body: (UnsafeBufferPointer<Float>?) -> Void) {
    if let importance { importance.withUnsafeBufferPointer { body($0) } } else { body(nil) }
  }

  /// Slice `index` of `weights`: `length` values.
  static func slice(_ weights: UnsafeBufferPointer<Float>, _ index: Int, _ length: Int) -> UnsafeBufferPointer<Float> {
    UnsafeBufferPointer(rebasing: weights[index * length..<(index + 1) * length])
  }

  /// Encodes `x` (whole blocks of `type`) into `out`: a GGML quantizer (`weighted` when `importance` is given and the
  /// type is quantized), or the float conversions of ggml.c, which ignore `importance`.
  static func encodeRow(
    _ type: GGMLType, _ x: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
    into out: UnsafeMutableRawBufferPointer, fast: Bool
  ) {
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
      if let importance {
        GGMLEncode.weighted(type, x, importance: importance, into: out)
      } else if fast {
        GGMLEncode.fast(type, x, into: out)
      } else {
        GGMLEncode.reference(type, x, into: out)
      }
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
