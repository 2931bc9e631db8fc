import Engine
import Foundation
import Sensitivity

/// The audit's truth: mean NLL and KL divergence on held-out tokens with one layer replaced.
extension EngineSensitivityModel {
  /// Mean NLL of `evaluationTokens` and the mean KL divergence of the next-token distributions from the
  /// unmodified model's, with `layer`'s weights replaced by `weights` for this one forward pass (the original
  /// weights are restored before returning, also when the pass fails).
  ///
  /// From the logits `z` `[T−1, V]` in Double: `log q_t = z_t − logsumexp(z_t)`,
  /// `NLL = −mean_t log q_t[x_{t+1}]`, and with the unmodified model's `p_t`,
  /// `KL_t = Σ_v p_t,v (log p_t,v − log q_t,v) = Σ_v p log p − Σ_v p z + logsumexp(z)` (using `Σ p = 1`), averaged
  /// over the `T − 1` positions.
  /// - Throws: `MeasureError.badSettings` without evaluation tokens, `EngineError` from the engine.
  public func evaluate(replacing layer: Int?, with weights: [Float]?) throws -> (meanNLL: Double, meanKLD: Double) {
    if evaluationTokens.count < 2 {
      throw MeasureError(.badSettings, "no held-out tokens to evaluate on: the audit needs an evaluation text")
    }
    let reference = try baselineScores()
    guard let layer, let weights else { return (reference.meanNLL, 0) }
    let name = weightNames[layer]
    let original = try model.weight(named: name)
    try model.replaceWeight(name: name, with: Self.scalars(weights))
    let result = Result { () throws(EngineError) in try model.logits(tokens: evaluationTokens) }
    try model.replaceWeight(name: name, with: original)
    let logits = try result.get()
    return Self.score(
      logits: Self.doubles(logits.storage), vocabulary: logits.columns, targets: Array(evaluationTokens.dropFirst()),
      reference: reference)
  }

  /// The unmodified model's scores on `evaluationTokens`: mean NLL, `p` `[T−1, V]` and `Σ_v p log p` per position.
  func baselineScores() throws -> Reference {
    if let baseline { return baseline }
    let logits = try model.logits(tokens: evaluationTokens)
    let reference = Self.reference(
      logits: Self.doubles(logits.storage), vocabulary: logits.columns, targets: Array(evaluationTokens.dropFirst()))
    baseline = reference
    return reference
  }

  /// The baseline's next-token distributions, kept for every audited quantization.
  struct Reference {
    /// Mean NLL of the unmodified model.
    var meanNLL: Double
    /// `p_t,v`, `[T−1, V]` row-major.
    var probabilities: [Double]
    /// `Σ_v p_t,v log p_t,v` per position.
    var negativeEntropy: [Double]
  }

  /// `[Scalar]` as `[Double]` (the same array when `Scalar` is `Double`).
  static func doubles(_ x: [Scalar]) -> [Double] {
    if Scalar.self == Double.self { return unsafeBitCast(x, to: [Double].self) }
    return floats(x).map(Double.init)
  }

  /// `logsumexp` of row `r`, shifted by the row maximum.
  static func logSumExp(_ z: UnsafeBufferPointer<Double>, row r: Int, vocabulary v: Int) -> Double {
    let start = r * v
    var m = -Double.infinity
    for j in start..<start + v { m = max(m, z[j]) }
    var s = 0.0
    for j in start..<start + v { s += exp(z[j] - m) }
    return m + log(s)
  }

  /// The baseline from its logits `[T−1, V]`.
  static func reference(logits: [Double], vocabulary v: Int, targets: [Int]) -> Reference {
    let rows = targets.count
    var p = [Double](repeating: 0, count: rows * v)
    var negativeEntropy = [Double](repeating: 0, count: rows)
    var nll = 0.0
    logits.withUnsafeBufferPointer { z in
      for r in 0..<rows {
        let lse = logSumExp(z, row: r, vocabulary: v)
        var h = 0.0
        for j in 0..<v {
          let logp = z[r * v + j] - lse
          let pj = exp(logp)
          p[r * v + j] = pj
          if pj > 0 { h += pj * logp }
        }
        negativeEntropy[r] = h
        nll -= z[r * v + targets[r]] - lse
      }
    }
    return Reference(meanNLL: nll / Double(rows), probabilities: p, negativeEntropy: negativeEntropy)
  }

  /// Mean NLL and mean KL divergence from `reference` of the logits `[T−1, V]`.
  static func score(
    logits: [Double], vocabulary v: Int, targets: [Int], reference: Reference
  ) -> (meanNLL: Double, meanKLD: Double) {
    let rows = targets.count
    var (nll, kld) = (0.0, 0.0)
    reference.probabilities.withUnsafeBufferPointer { p in
      logits.withUnsafeBufferPointer { z in
        for r in 0..<rows {
          let lse = logSumExp(z, row: r, vocabulary: v)
          var pz = 0.0
          for j in 0..<v { pz += p[r * v + j] * z[r * v + j] }
          kld += reference.negativeEntropy[r] - pz + lse
          nll -= z[r * v + targets[r]] - lse
        }
      }
    }
    return (nll / Double(rows), kld / Double(rows))
  }
}
