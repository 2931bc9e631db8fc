/// The measured-score stage (`--score-kld`): every offered (layer, candidate)'s single-layer KLD and ΔNLL on the
/// leading `kldTokens` calibration tokens, a layer at a time.
extension MeasurementRun {
  /// Records the baseline once, then each layer's candidates (`SensitivityModel.score(…on: .calibration)`) in layer
  /// order, checkpointing after each layer; a resumed run continues at the first layer not fully measured
  /// (`MeasuredScores.layersDone`). Progress counts (layer, candidate) pairs.
  func kldStage(_ store: RunStore) throws {
    let text = ScoredText.calibration(tokens: provenance.kldTokens)
    if store.run.measured == nil {
      try store.recordMeasuredBaseline(meanNLL: try model.baselineNLL(on: text), tokens: provenance.kldTokens)
    }
    let bytes = store.run.bytes
    let offered = bytes.map { row in row.indices.filter { row[$0] >= 0 } }
    let total = offered.reduce(0) { $0 + $1.count }
    let first = store.run.measured!.layersDone(bytes: bytes)
    var done = offered[..<first].reduce(0) { $0 + $1.count }
    let baseline = store.run.measured!.baselineNLL
    for layer in first..<bytes.count where !offered[layer].isEmpty {
      var kld = [Double](repeating: .nan, count: bytes[layer].count)
      var deltaNLL = kld
      for c in offered[layer] {
        guard let s = try model.score(layer: layer, candidate: c, on: text) else {
          throw SensitivityError(.shapeMismatch, "candidate \(c) no longer fits layer \(layer)")
        }
        (kld[c], deltaNLL[c]) = (s.meanKLD, s.meanNLL - baseline)
      }
      try store.recordMeasuredLayer(layer, kld: kld, deltaNLL: deltaNLL)
      done += offered[layer].count
      onProgress(.kld, done, total)
    }
  }
}
