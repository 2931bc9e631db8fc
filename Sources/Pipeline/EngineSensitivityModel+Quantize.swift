import Quantization
import Sensitivity

/// Quantizing one layer to one candidate with the best range calibration for that layer.
extension EngineSensitivityModel {
  /// What `/calibration/method` records for formats whose range is not chosen by a calibration method: f16/bf16
  /// rounding, the GGML block types' own scale search, ternary's absmean scale.
  public static var fixedCalibrationName: String { "fixed" }

  /// `Q(W)` of layer `layer` in candidate `candidate`, with its exact bytes and the calibration used; `nil` when
  /// the format does not fit the layer's shape.
  ///
  /// For the integer and nf4 formats every method of `RangeCalibration.standard` (min-max, percentile 99.99,
  /// MSE clip search, KL) is tried and the one with the least `‖Q(W) − W‖²_F` is kept, ties going to the earlier
  /// method; `RangeCalibration.compare` ranks them the same way. Other formats have one fixed algorithm
  /// (`fixedCalibrationName`).
  /// - Throws: `QuantizationError` from the quantizer (a non-finite weight).
  public func quantize(layer: Int, candidate: Int) throws -> QuantizedWeights? {
    let l = linearLayers[layer]
    let format = formats[candidate]
    guard format.canQuantize(rows: l.rows, columns: l.columns) else { return nil }
    let w = try weights(of: layer)
    let (q, method) = try Self.bestCalibration(w, rows: l.rows, columns: l.columns, format: format)
    return QuantizedWeights(weights: q, bytes: format.sizeInBytes(rows: l.rows, columns: l.columns), calibration: method)
  }

  /// Whether `format` takes a range calibration (integer codes with a per-group scale, and nf4's absmax).
  public static func takesCalibration(_ format: QuantFormat) -> Bool {
    switch format.scheme {
    case .integer, .nf4: true
    default: false
    }
  }

  /// Fake-quantizes `weights` with each applicable calibration and keeps the best.
  /// - Returns: `Q(W)` and the method's name (`RangeCalibration.description`, or `fixedCalibrationName`).
  static func bestCalibration(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat
  ) throws -> (weights: [Float], method: String) {
    guard takesCalibration(format) else {
      return (try quantizeDequantize(weights, rows: rows, columns: columns, format: format), fixedCalibrationName)
    }
    var best: (weights: [Float], error: Double, method: String)?
    for method in RangeCalibration.standard {
      let q = try quantizeDequantize(weights, rows: rows, columns: columns, format: format, calibration: method)
      let error = LossProxy.weightError(delta: zip(q, weights).map { $0 - $1 })
      if best == nil || error < best!.error { best = (q, error, method.description) }
    }
    return (best!.weights, best!.method)
  }
}
