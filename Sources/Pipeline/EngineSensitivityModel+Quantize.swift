import Engine
import Foundation
import Quantization
import Sensitivity

/// Quantizing one layer to one candidate with the best range calibration for that layer.
extension EngineSensitivityModel {
  /// What `/calibration/method` records for formats whose range is not chosen by a calibration method: f16/bf16
  /// rounding, the GGML block types' own scale search, ternary's absmean scale.
  public static var fixedCalibrationName: String { "fixed" }

  /// Rows of a layer on which the calibration methods are compared (evenly spaced; all rows when fewer).
  public static var calibrationSampleRows: Int { 16 }

  /// `Q(W)` of layer `layer` in candidate `candidate`, with its exact bytes and the calibration used; `nil` when
  /// the format does not fit the layer's shape.
  ///
  /// Integer and nf4 formats: every method of `RangeCalibration.standard` (min-max, percentile 99.99, MSE clip
  /// search, KL) quantizes `calibrationSampleRows` evenly spaced rows of the layer, the method with the least
  /// `‖Q(W) − W‖²` on them is chosen (ties to the earlier method, as `RangeCalibration.compare` ranks), and the
  /// whole layer is quantized with it. Comparing on all rows would cost ~3× the whole-layer quantization (the
  /// percentile sort and the KL histogram are per tensor; on SmolLM2 they took 5.7 s and 4.1 s per 21 layers for
  /// the default candidates, against 5.3 s for the MSE search, which won on every one of those 231 pairs). Other
  /// formats have one fixed algorithm (`fixedCalibrationName`).
  ///
  /// Asked for candidate 0 (the per-layer stage asks in column order), all candidates of the layer are quantized
  /// at once on both cores and kept until the next layer; other requests (the audit's) quantize just one.
  /// - Throws: `QuantizationError` from the quantizer (a non-finite weight).
  public func quantize(layer: Int, candidate: Int) throws -> QuantizedWeights? {
    if let cached = quantizedLayer, cached.layer == layer { return try cached.results[candidate].get() }
    if candidate != 0 { return try quantizeOne(layer: layer, candidate: candidate) }
    let w = try weights(of: layer)
    let results = UnsafeMutableBufferPointer<Result<QuantizedWeights?, any Error>>.allocate(capacity: formats.count)
    defer { results.deallocate() }
    // Each worker reads only immutable state (the layer list, the formats, `w`) and writes its own slot.
    nonisolated(unsafe) let (slots, model) = (results, self)
    DispatchQueue.concurrentPerform(iterations: formats.count) { c in
      (slots.baseAddress! + c).initialize(to: Result { try model.quantizeOne(layer: layer, candidate: c, weights: w) })
    }
    quantizedLayer = (layer, Array(results))
    return try results[candidate].get()
  }

  /// Whether `layer` is the token embedding (`model.embed_tokens`), which a target may offer other formats.
  static func isEmbedding(_ layer: MeasuredRun.Layer) -> Bool { layer.name == LlamaModel<Scalar>.embeddingSlot }

  /// One candidate of one layer (see `quantize(layer:candidate:)`).
  func quantizeOne(layer: Int, candidate: Int, weights given: [Float]? = nil) throws -> QuantizedWeights? {
    let l = linearLayers[layer]
    let format = formats[candidate]
    guard target.canStore(format, rows: l.rows, columns: l.columns, isEmbedding: Self.isEmbedding(l)) else { return nil }
    let w = try given ?? weights(of: layer)
    let method = try Self.chooseCalibration(w, rows: l.rows, columns: l.columns, format: format)
    let q = try quantizeDequantize(w, rows: l.rows, columns: l.columns, format: format, calibration: method ?? .minMax)
    return QuantizedWeights(
      weights: q, bytes: target.storedBytes(format, rows: l.rows, columns: l.columns, isEmbedding: Self.isEmbedding(l)),
      calibration: method?.description ?? Self.fixedCalibrationName)
  }

  /// Whether `format` takes a range calibration (integer codes with a per-group scale, and nf4's absmax).
  public static func takesCalibration(_ format: QuantFormat) -> Bool {
    switch format.scheme {
    case .integer, .nf4: true
    default: false
    }
  }

  /// The calibration with the least squared error on the sampled rows, or `nil` for a format that takes none.
  static func chooseCalibration(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat
  ) throws -> RangeCalibration? {
    guard takesCalibration(format) else { return nil }
    let sampled = sampleRows(rows: rows)
    var sample: [Float] = []
    sample.reserveCapacity(sampled.count * columns)
    for r in sampled { sample += weights[r * columns..<(r + 1) * columns] }
    let ranked = try RangeCalibration.compare(sample, rows: sampled.count, columns: columns, format: format)
    return ranked.first!.method
  }

  /// `calibrationSampleRows` evenly spaced row indices `⌊k · rows / s⌋`, or every row when there are fewer.
  static func sampleRows(rows: Int) -> [Int] {
    let s = calibrationSampleRows
    return rows <= s ? Array(0..<rows) : (0..<s).map { $0 * rows / s }
  }
}
