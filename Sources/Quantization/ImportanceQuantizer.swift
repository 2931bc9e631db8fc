import Foundation
import GGML

/// ggml's importance-matrix quantization of a GGML type, as `llama-quantize --imatrix FILE` applies it: each row by
/// `GGMLEncode.weighted` (ggml's `quantize_row_*_impl`) with one weight per input column.
///
/// The weights are the layer's calibration inputs' mean squares `diag(XᵀX)/n` (`GramMatrix.columnSquareMeans`),
/// exactly as llama-quantize reads them back from the file `bitplan export --imatrix` writes: that file stores
/// `in_sum2 = Float(n · mean)` and `counts = n`, and llama.cpp's loader divides the two in Float
/// (tools/quantize/quantize.cpp `load_imatrix`). `weights(squareMeans:count:)` does the same arithmetic, so a
/// layer measured with `--quantizer imatrix` gets the very codes llama-quantize writes with that file.
/// Reference: llama.cpp's imatrix (tools/imatrix/imatrix.cpp; ggml-quants.c `quantize_row_q4_K_impl` and friends).
public enum ImportanceQuantizer {
  /// The GGML block types with an importance path: q4_0 … q8_0 and q2_K … q6_K (q8_0's ignores the weights).
  /// Float formats and the other schemes have none.
  public static func supports(_ format: QuantFormat) -> Bool {
    guard case .ggml(let type) = format.scheme else { return false }
    return type.canQuantize && type.blockSize > 1
  }

  /// The weights llama-quantize uses for a tensor whose file entry holds these mean squares over `count` tokens:
  /// `Float(Float(n · mean) / Float(n))`.
  public static func weights(squareMeans: [Double], count: Int) -> [Float] {
    let n = max(count, 1)
    return squareMeans.map { Float($0 * Double(n)) / Float(n) }
  }

  /// `values` `[rows, columns]` (row-major) in `format` with importance `weights` (`columns` of them).
  /// - Throws: `QuantizationError.unsupportedShape` for a format without an importance path or a shape it cannot
  ///   take, `.badData` for a non-finite or negative weight, a non-finite value, or mismatched counts.
  public static func quantize(
    _ values: [Float], rows: Int, columns: Int, format: QuantFormat, weights: [Float]
  ) throws -> PackedTensor {
    guard supports(format), case .ggml(let type) = format.scheme else {
      throw QuantizationError(.unsupportedShape, "\(format.name) has no importance-matrix quantizer (GGML block types only)")
    }
    guard format.canQuantize(rows: rows, columns: columns) else {
      throw QuantizationError(.unsupportedShape, "\(format.name) cannot take a [\(rows), \(columns)] tensor: \(format.shapeRule)")
    }
    guard weights.count == columns else {
      throw QuantizationError(.badData, "\(weights.count) importance weights for a [\(rows), \(columns)] tensor")
    }
    if let bad = weights.first(where: { !($0.isFinite && $0 >= 0) }) {
      throw QuantizationError(.badData, "importance weight \(bad); they must be finite and ≥ 0")
    }
    let bytes = try values.withUnsafeBufferPointer { v in
      try checkValues(v, rows: rows, columns: columns)
      return weights.withUnsafeBufferPointer { w in
        nonisolated(unsafe) let q = w
        return encodeRows(v, rows: rows, columns: columns, rowSize: type.rowSizeInBytes(columns)!) { x, out in
          GGMLEncode.weighted(type, x, importance: q, into: out)
        }
      }
    }
    return try PackedTensor(format: format, rows: rows, columns: columns, bytes: bytes)
  }
}
