import Engine
import Foundation
import Pipeline
import Quantization
import Sensitivity
import Testing
import _TestSupport

/// The audit scores through Engine's shared `TokenScoring` give exactly the numbers of the audit's own formula
/// before the move (kept here as the twin): the same operations in the same order, so equality is bitwise.
@Suite struct AuditScoringTests {
  /// The pre-move audit maths, verbatim in effect: p and Σ p log p from the baseline logits, then
  /// KL_t = Σ p log p − Σ p z + logsumexp(z) and NLL = −(z[y] − logsumexp(z)), averaged in position order.
  enum LegacyAudit {
    static func logSumExp(_ z: [Double], row r: Int, vocabulary v: Int) -> Double {
      var m = -Double.infinity
      for j in r * v..<(r + 1) * v { m = max(m, z[j]) }
      var s = 0.0
      for j in r * v..<(r + 1) * v { s += exp(z[j] - m) }
      return m + log(s)
    }

    static func reference(logits z: [Double], vocabulary v: Int, targets: [Int]) -> (meanNLL: Double, p: [Double], h: [Double]) {
      let rows = targets.count
      var p = [Double](repeating: 0, count: rows * v)
      var h = [Double](repeating: 0, count: rows)
      var nll = 0.0
      for r in 0..<rows {
        let lse = logSumExp(z, row: r, vocabulary: v)
        for j in 0..<v {
          let logp = z[r * v + j] - lse
          let pj = exp(logp)
          p[r * v + j] = pj
          if pj > 0 { h[r] += pj * logp }
        }
        nll -= z[r * v + targets[r]] - lse
      }
      return (nll / Double(rows), p, h)
    }

    static func score(logits z: [Double], vocabulary v: Int, targets: [Int], p: [Double], h: [Double]) -> (meanNLL: Double, meanKLD: Double) {
      let rows = targets.count
      var (nll, kld) = (0.0, 0.0)
      for r in 0..<rows {
        let lse = logSumExp(z, row: r, vocabulary: v)
        var pz = 0.0
        for j in 0..<v { pz += p[r * v + j] * z[r * v + j] }
        kld += h[r] - pz + lse
        nll -= z[r * v + targets[r]] - lse
      }
      return (nll / Double(rows), kld / Double(rows))
    }
  }

  @Test func auditNumbersAreUnchangedByTheMove() throws {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let tokens = Array(0..<40).map { ($0 * 37) % 258 }
    let evaluation = [256] + Array(0..<47).map { ($0 * 11 + 5) % 256 }
    let targets = Array(evaluation.dropFirst())
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 20, evaluationTokens: evaluation,
      formats: [try QuantFormat(parsing: "int2-g32")])
    let baseLogits = try loaded.model.logits(tokens: evaluation)
    let v = baseLogits.columns
    let legacy = LegacyAudit.reference(logits: baseLogits.storage.map(Double.init), vocabulary: v, targets: targets)
    #expect(try model.evaluate(replacing: nil, with: nil).meanNLL == legacy.meanNLL)
    for layer in [0, 3, model.linearLayers.count - 1] {
      let q = try #require(try model.quantize(layer: layer, candidate: 0))
      let got = try model.evaluate(replacing: layer, with: q.weights)
      // the legacy path: replace, take logits, restore
      let name = loaded.model.linearWeightNames[layer]
      let original = try loaded.model.weight(named: name)
      try loaded.model.replaceWeight(name: name, with: q.weights)
      let logits = try loaded.model.logits(tokens: evaluation)
      try loaded.model.replaceWeight(name: name, with: original)
      let want = LegacyAudit.score(logits: logits.storage.map(Double.init), vocabulary: v, targets: targets, p: legacy.p, h: legacy.h)
      #expect(got.meanNLL == want.meanNLL && got.meanKLD == want.meanKLD, "layer \(layer): \(got) vs \(want)")
      #expect(got.meanKLD > 0)
    }
  }
}
