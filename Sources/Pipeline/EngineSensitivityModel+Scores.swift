import Engine
import Quantization
import Sensitivity
import TensorCore
import Validation

/// What single-layer scoring keeps between pairs: per scored text the unmodified model's block inputs, its exact
/// next-token distributions and mean NLL; and how many scored pairs ran packed or dense.
public final class ScoringState<Scalar: EngineScalar> {
  /// One scored text.
  struct Window {
    var tokens: [Int]
    var inputs: BlockInputs<Scalar>
    var reference: ReferenceDistribution
    var meanNLL: Double
  }

  var calibration: Window?
  var heldOut: Window?
  /// Working memory of the packed layers (one runs at a time).
  let scratch = PackedGEMM.Scratch()
  /// Pairs scored with the layer run from its packed bytes (`PackedLinear`, int8 activations).
  public internal(set) var packedPairs = 0
  /// Pairs scored with dense fake-quantized weights: formats without an int8 kernel (nf4, ternary), codes that are
  /// not round-to-nearest's, the token embedding, a `Double` model.
  public internal(set) var densePairs = 0

  init() {}
}

/// Single-layer scores end to end (`SensitivityModel.score(layer:candidate:on:)`): the measured-KLD stage
/// (`--score-kld`, on calibration tokens) and the audit (on the held-out tokens).
///
/// - Activation reuse: the unmodified model's residual inputs of every block are recorded once per text
///   (`LlamaModel.blockInputs`), and a pair that changes a linear layer of block `b` recomputes only blocks `b…`,
///   the final norm and the head (`LlamaModel.logits(resumingAt:from:)`, bit-identical to the full pass). On
///   SmolLM2 that halves the blocks run on average; the head (28 M of 135 M weights) runs every time. The token
///   embedding (measured with `--target llama-cpp`) changes block 0's input, so it runs the whole pass.
/// - Packed kernels: the changed layer runs as validation runs it, from its packed bytes with per-token int8
///   activations (`PackedLinear`, `.int8`), installed in the engine's operator slot for the pass and removed after.
///   The packed tensor is quantized again with the calibration `quantize(layer:candidate:)` recorded, and is used
///   only when it dequantizes to exactly that `Q(W)`; otherwise (another quantizer's codes), for formats with no
///   int8 kernel (nf4, ternary) and for the embedding, the pass runs the dense fake-quantized weights instead
///   (`ScoringState.densePairs` counts them). f16/bf16 take the Float path of `PackedLinear`, as in validation.
/// - Scoring: KL and NLL from the logits against the exact (Double) reference distributions, as `evaluate` does.
extension EngineSensitivityModel {
  /// The unmodified model's mean NLL on `text`.
  /// - Throws: `MeasureError.badSettings` for a text with no tokens, `EngineError`.
  public func baselineNLL(on text: ScoredText) throws -> Double { try window(text).meanNLL }

  /// Mean NLL and KLD on `text` with only `layer` quantized to `candidate` (see the extension's documentation);
  /// `nil` when the format does not fit the layer. The model is left as it was, also when the pass fails.
  public func score(layer: Int, candidate: Int, on text: ScoredText) throws -> (meanNLL: Double, meanKLD: Double)? {
    let window = try window(text)
    guard let q = try quantize(layer: layer, candidate: candidate) else { return nil }
    let logits: Matrix<Scalar>
    if includesTokenEmbedding && layer == linearLayers.count - 1 {
      logits = try withDense(layer, q.weights) { () throws(EngineError) in try model.logits(tokens: window.tokens) }
    } else {
      let block = model.linearLayers[layer].block
      if let op = try packedOperator(layer: layer, candidate: candidate, quantized: q), let float = model as? LlamaModel<Float> {
        try float.installOperator(op, forLayer: model.linearLayers[layer].name)
        defer { float.removeOperators() }
        logits = try model.logits(resumingAt: block, from: window.inputs)
        scoring.packedPairs += 1
      } else {
        logits = try withDense(layer, q.weights) { () throws(EngineError) in
          try model.logits(resumingAt: block, from: window.inputs)
        }
      }
    }
    let scores = try TokenScoring.score(
      logits: logits, targets: Array(window.tokens.dropFirst()), reference: window.reference)
    return (scores.meanNLL, scores.meanKLD)
  }

  /// The layer as a packed int8-activation operator, or nil when the pass must run dense (see the extension).
  ///
  /// The packed tensor must dequantize to exactly `q.weights`. It is first encoded from `Q(W)` itself with min-max
  /// ranges: `Q(W)`'s largest code in every group is already at the grid's edge (the calibration clipped there, or
  /// the maximum mapped there), so this finds the same scales and codes without the calibration's search (the MSE
  /// clip search would otherwise run a second time per pair). When that does not reproduce `Q(W)` (GGML block
  /// types with their own scale search), `W` is encoded again with the recorded calibration.
  func packedOperator(layer: Int, candidate: Int, quantized q: QuantizedWeights) throws -> PackedLinear? {
    guard Scalar.self == Float.self, model.installedOperatorCount == 0, !model.hasEmbeddingSource else { return nil }
    let l = linearLayers[layer]
    let format = formats[candidate]
    var packed = try Quantization.quantize(q.weights, rows: l.rows, columns: l.columns, format: format, calibration: .minMax)
    if packed.dequantize() != q.weights {
      packed = try Quantization.quantize(
        try weights(of: layer), rows: l.rows, columns: l.columns, format: format,
        calibration: RangeCalibration(recorded: q.calibration) ?? .minMax)
      guard packed.dequantize() == q.weights else { return nil }
    }
    return try? PackedLinear(packed, activations: .int8, scratch: scoring.scratch)
  }

  /// `body` run with layer `layer`'s dense weights replaced by `weights` (restored after, also on failure).
  func withDense<T>(_ layer: Int, _ weights: [Float], _ body: () throws(EngineError) -> T) throws -> T {
    let name = weightNames[layer]
    let original = try model.weight(named: name)
    try model.replaceWeight(name: name, with: Self.scalars(weights))
    let result = Result { () throws(EngineError) in try body() }
    try model.replaceWeight(name: name, with: original)
    scoring.densePairs += 1
    return try result.get()
  }

  /// The scored window of `text`, recorded on first use.
  func window(_ text: ScoredText) throws -> ScoringState<Scalar>.Window {
    switch text {
    case .heldOut:
      if let w = scoring.heldOut { return w }
      let reference = try baselineScores()  // throws without evaluation tokens
      let w = ScoringState<Scalar>.Window(
        tokens: evaluationTokens, inputs: try model.blockInputs(tokens: evaluationTokens),
        reference: reference.distribution, meanNLL: reference.meanNLL)
      scoring.heldOut = w
      return w
    case .calibration(let count):
      if let w = scoring.calibration, w.tokens.count == count { return w }
      guard count >= 2 && count <= calibrationTokens.count else {
        throw MeasureError(
          .badSettings, "--kld-tokens must be in 2...\(calibrationTokens.count) (--tokens), got \(count)")
      }
      let tokens = Array(calibrationTokens.prefix(count))
      let logits = try model.logits(tokens: tokens)
      let nll = TokenScoring.nll(
        logits: logits.storage, rows: logits.rows, vocabulary: logits.columns, targets: Array(tokens.dropFirst()))
      let w = ScoringState<Scalar>.Window(
        tokens: tokens, inputs: try model.blockInputs(tokens: tokens),
        reference: ReferenceDistribution(logits: logits, precision: .exact),
        meanNLL: nll.reduce(0, +) / Double(nll.count))
      scoring.calibration = w
      return w
    }
  }
}

extension EngineSensitivityModel {
  /// How many layers the all-layer audit at `format` (`--audit-format`) scores: those that offer it.
  /// - Throws: `MeasureError.badCandidate` when `format` is not one of the candidates.
  public func allLayerAuditCount(_ format: QuantFormat) throws(MeasureError) -> Int {
    guard formats.contains(format) else {
      throw MeasureError(
        .badCandidate, "--audit-format \(format.name) is not among the candidates (\(formats.map(\.name).joined(separator: ","))); "
          + "add it to --candidates")
    }
    return linearLayers.count { target.canStore(format, rows: $0.rows, columns: $0.columns, isEmbedding: Self.isEmbedding($0)) }
  }
}
