import Engine
import Sensitivity

/// The audit's truth: mean NLL and KL divergence on held-out tokens with one layer replaced.
extension EngineSensitivityModel {
  /// Mean NLL of `evaluationTokens` and the mean KL divergence of the next-token distributions from the
  /// unmodified model's, with `layer`'s weights replaced by `weights` for this one forward pass (the original
  /// weights are restored before returning, also when the pass fails). A linear layer's pass starts at its block
  /// (`LlamaModel.logits(resumingAt:from:)`), which halves the blocks run on average and changes no number.
  ///
  /// Scored by Engine's `TokenScoring` against an `.exact` `ReferenceDistribution` (p in Double): from the logits
  /// `z` `[T−1, V]`, `log q_t = z_t − logsumexp(z_t)`, `NLL = −mean_t log q_t[x_{t+1}]`, and with the unmodified
  /// model's `p_t`, `KL_t = Σ_v p_t,v (log p_t,v − log q_t,v) = Σ_v p log p − Σ_v p z + logsumexp(z)` (using
  /// `Σ p = 1`), averaged over the `T − 1` positions. (The same operations, in the same order, as the audit's own
  /// code before scoring moved to Engine: the numbers are bit-identical.)
  /// - Throws: `MeasureError.badSettings` without evaluation tokens, `EngineError` from the engine.
  public func evaluate(replacing layer: Int?, with weights: [Float]?) throws -> (meanNLL: Double, meanKLD: Double) {
    if evaluationTokens.count < 2 {
      throw MeasureError(.badSettings, "no held-out tokens to evaluate on: the audit needs an evaluation text")
    }
    let reference = try baselineScores()
    guard let layer, let weights else { return (reference.meanNLL, 0) }
    // A linear layer of block b: blocks below b compute what the unmodified model computed, so the pass resumes
    // at b from the recorded block inputs (bit-identical to the full pass, `ResumeForwardTests`); the token
    // embedding changes block 0's input and runs the whole pass.
    let block: Int? = includesTokenEmbedding && layer == linearLayers.count - 1 ? nil : model.linearLayers[layer].block
    let inputs = try block.map { _ in try window(.heldOut).inputs }
    let name = weightNames[layer]
    let original = try model.weight(named: name)
    try model.replaceWeight(name: name, with: Self.scalars(weights))
    let result = Result { () throws(EngineError) in
      if let block, let inputs { try model.logits(resumingAt: block, from: inputs) } else { try model.logits(tokens: evaluationTokens) }
    }
    try model.replaceWeight(name: name, with: original)
    let scores = try TokenScoring.score(
      logits: try result.get(), targets: Array(evaluationTokens.dropFirst()), reference: reference.distribution)
    return (scores.meanNLL, scores.meanKLD)
  }

  /// The unmodified model's scores on `evaluationTokens`: mean NLL and its exact next-token distributions.
  func baselineScores() throws -> Reference {
    if let baseline { return baseline }
    let logits = try model.logits(tokens: evaluationTokens)
    let nll = TokenScoring.nll(
      logits: logits.storage, rows: logits.rows, vocabulary: logits.columns, targets: Array(evaluationTokens.dropFirst()))
    let reference = Reference(
      meanNLL: nll.reduce(0, +) / Double(nll.count), distribution: ReferenceDistribution(logits: logits, precision: .exact))
    baseline = reference
    return reference
  }

  /// The baseline, kept for every audited quantization.
  struct Reference {
    /// Mean NLL of the unmodified model.
    var meanNLL: Double
    /// Its next-token distributions `p` `[T−1, V]` in Double.
    var distribution: ReferenceDistribution
  }
}
