import Dispatch

/// A weight matrix stored in a `QuantFormat`: the exact bytes plus format and shape.
///
/// Shape is `[rows, columns]` row-major, as a PyTorch `[out, in]` weight; rows are stored back to back, each
/// `format.rowSizeInBytes(columns:)` bytes. `bytes.count == format.sizeInBytes(rows:columns:)` always holds.
/// Build one with `quantize(_:rows:columns:format:calibration:)`; run it with `dequantize()`, `gemv(_:)` and
/// `gemm(_:tokens:)` (PackedTensor+Kernels.swift).
public struct PackedTensor: Sendable, Codable, Equatable {
  /// The storage format.
  public let format: QuantFormat
  /// Output dimension (number of rows).
  public let rows: Int
  /// Input dimension (values per row).
  public let columns: Int
  /// The stored bytes, GGML-identical for GGML types.
  public let bytes: [UInt8]

  /// Wraps existing bytes (for example a GGML tensor read from a GGUF file).
  /// - Throws: `QuantizationError.unsupportedShape` when the format cannot take the shape,
  ///   `.sizeMismatch` when `bytes.count` differs from `format.sizeInBytes(rows:columns:)`.
  public init(format: QuantFormat, rows: Int, columns: Int, bytes: [UInt8]) throws {
    guard format.canQuantize(rows: rows, columns: columns) else {
      throw QuantizationError(.unsupportedShape, "\(format.name) cannot take a [\(rows), \(columns)] tensor: \(format.shapeRule)")
    }
    let expected = format.sizeInBytes(rows: rows, columns: columns)
    guard bytes.count == expected else {
      throw QuantizationError(.sizeMismatch, "\(format.name) [\(rows), \(columns)] needs \(expected) bytes, got \(bytes.count)")
    }
    self.format = format
    self.rows = rows
    self.columns = columns
    self.bytes = bytes
  }

  /// Bytes of one stored row.
  public var rowSizeInBytes: Int { format.rowSizeInBytes(columns: columns) }

  /// Calls `body` with the bytes of rows `range`.
  func withRows<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    let size = rowSizeInBytes
    return bytes.withUnsafeBytes { all in body(UnsafeRawBufferPointer(rebasing: all[(range.lowerBound * size)..<(range.upperBound * size)])) }
  }
}

extension QuantFormat {
  /// One line saying which row lengths the format takes, for error messages.
  public var shapeRule: String {
    guard let g = groupSize else { return "any shape" }
    return "columns (the input dimension) must be a multiple of \(g)"
  }
}

/// Quantizes a row-major `[rows, columns]` weight: the one entry point the rest of BitPlan uses.
///
/// Rows are independent, so large tensors are split over the cores (`DispatchQueue.concurrentPerform`); the result
/// does not depend on the split.
/// - Parameters:
///   - weights: `rows · columns` finite values, row-major.
///   - calibration: range calibration for the integer and nf4 formats (`RangeCalibration`); GGML, ternary and
///     float formats have fixed algorithms and ignore it.
///   - variant: `.simd` uses the vectorizable q4_0/q8_0 quantizers (same bytes); every other format has one
///     quantizer, its reference.
/// - Returns: the packed tensor; `bytes.count == format.sizeInBytes(rows:columns:)`.
/// - Throws: `QuantizationError.unsupportedShape` when the format cannot take the shape, `.badData` for a
///   non-finite weight or a count that is not `rows · columns`, `.badCalibration` for a bad calibration setting.
public func quantize(
  _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, format: QuantFormat,
  calibration: RangeCalibration = .minMax, variant: KernelVariant = .best
) throws -> PackedTensor {
  guard format.canQuantize(rows: rows, columns: columns) else {
    throw QuantizationError(.unsupportedShape, "\(format.name) cannot take a [\(rows), \(columns)] tensor: \(format.shapeRule)")
  }
  try checkValues(weights, rows: rows, columns: columns)
  let clip = try calibration.clip(for: weights, format: format)
  let bytes = encodeRows(weights, rows: rows, columns: columns, rowSize: format.rowSizeInBytes(columns: columns)) { x, out in
    RowCodec.quantizeRow(format, x, out, clip: clip, variant: variant)
  }
  return try PackedTensor(format: format, rows: rows, columns: columns, bytes: bytes)
}

/// `.badData` unless `values` holds `rows · columns` finite values.
func checkValues(_ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int) throws(QuantizationError) {
  guard values.count == rows * columns else {
    throw QuantizationError(.badData, "\(values.count) weights for a [\(rows), \(columns)] tensor")
  }
  if let bad = values.firstIndex(where: { !$0.isFinite }) {
    throw QuantizationError(.badData, "weight \(bad) (row \(bad / max(columns, 1))) is \(values[bad]); quantize finite values only")
  }
}

/// `rows` rows of `columns` values encoded by `encode` (one row in, `rowSize` bytes out) into one buffer: up to 16
/// chunks of rows on the cores once the tensor has 65,536 values, else on this thread. Rows are independent, so
/// the bytes do not depend on the split.
func encodeRows(
  _ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, rowSize: Int,
  _ encode: @escaping @Sendable (UnsafeBufferPointer<Float>, UnsafeMutableRawBufferPointer) -> Void
) -> [UInt8] {
  var bytes = [UInt8](repeating: 0, count: rows * rowSize)
  bytes.withUnsafeMutableBytes { out in
    let chunks = rows * columns >= 1 << 16 ? min(rows, 16) : 1
    let perChunk = (rows + chunks - 1) / max(chunks, 1)
    nonisolated(unsafe) let o = out
    nonisolated(unsafe) let w = values
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      for r in (c * perChunk)..<min(rows, (c + 1) * perChunk) {
        encode(
          UnsafeBufferPointer(rebasing: w[(r * columns)..<((r + 1) * columns)]),
          UnsafeMutableRawBufferPointer(rebasing: o[(r * rowSize)..<((r + 1) * rowSize)]))
      }
    }
  }
  return bytes
}

/// `quantize` for an array.
public func quantize(
  _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, calibration: RangeCalibration = .minMax,
  variant: KernelVariant = .best
) throws -> PackedTensor {
  try weights.withUnsafeBufferPointer {
    try quantize($0, rows: rows, columns: columns, format: format, calibration: calibration, variant: variant)
  }
}

/// Fake quantization: `dequantize(quantize(weights))`, the Q(W) of the sensitivity stage's ‖Q(W) − W‖².
/// - Throws: as `quantize`.
public func quantizeDequantize(
  _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, calibration: RangeCalibration = .minMax
) throws -> [Float] {
  try quantize(weights, rows: rows, columns: columns, format: format, calibration: calibration).dequantize()
}
