#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// Per-position scores of one window: what a model's logits say about the targets, and how far its next-token
/// distributions are from a reference's.
public struct WindowScores: Sendable, Equatable, Codable {
  /// −log q_t[target_t] (nats) per position.
  public var nll: [Double]
  /// KL(p_t ‖ q_t) (nats) per position, p the reference, q the scored model.
  public var kld: [Double]
  /// Whether argmax q_t == argmax p_t per position.
  public var top1Agrees: [Bool]

  public init(nll: [Double], kld: [Double], top1Agrees: [Bool]) {
    self.nll = nll
    self.kld = kld
    self.top1Agrees = top1Agrees
  }

  /// Mean NLL, summed in position order (PPL = exp of it).
  public var meanNLL: Double { nll.reduce(0, +) / Double(nll.count) }
  /// Mean KL divergence, summed in position order.
  public var meanKLD: Double { kld.reduce(0, +) / Double(kld.count) }
  /// Fraction of positions whose top-1 token agrees with the reference's.
  public var top1Agreement: Double { Double(top1Agrees.count { $0 }) / Double(top1Agrees.count) }
}

/// NLL, KL divergence and top-1 agreement from logits: the one place the audit (Pipeline) and validation score
/// a window. Logits in (Float or Double), Double maths.
///
/// Per position t with logits z_t: `lse_t = m + log Σ_v e^{z_t,v − m}` (m = max_v z_t,v), `log q_t = z_t − lse_t`,
/// `NLL_t = lse_t − z_t[y_t]`, and with the reference's p_t,
/// `KL_t = Σ_v p log p − Σ_v p_t,v z_t,v + lse_t` (= Σ p (log p − log q), using Σ p = 1).
/// `score` runs rows concurrently (`Parallel`), each row's sums in index order, so results do not depend on the
/// number of workers; `scoreReference` is the plain single-threaded twin from the definition Σ p (log p − log q).
public enum TokenScoring {
  /// Per-position NLL, KL divergence from `reference`, and top-1 agreement.
  /// - Parameters:
  ///   - logits: `[rows, vocabulary]` row-major; row t scores `targets[t]`.
  ///   - targets: one id in `0..<vocabulary` per row.
  ///   - reference: the base distributions of the same window.
  /// - Throws: `EngineError.badReference` when the reference's rows or vocabulary differ from the logits'.
  /// - Complexity: O(rows · vocabulary): two exps per entry for a `.uint16` reference, one for `.exact`.
  @specialized(where S == Float)
  @specialized(where S == Double)
  public static func score<S: EngineScalar>(
    logits: [S], rows: Int, vocabulary: Int, targets: [Int], reference: ReferenceDistribution
  ) throws(EngineError) -> WindowScores {
    try check(logits: logits.count, rows: rows, vocabulary: vocabulary, targets: targets, reference: reference)
    let v = vocabulary
    var nll = [Double](repeating: 0, count: rows)
    var kld = [Double](repeating: 0, count: rows)
    var agrees = [Bool](repeating: false, count: rows)
    logits.withUnsafeBufferPointer { z in
      nll.withUnsafeMutableBufferPointer { nll in
        kld.withUnsafeMutableBufferPointer { kld in
          agrees.withUnsafeMutableBufferPointer { agrees in
            Parallel.forEachChunk(rows, costPerItem: v) { range in
              for r in range {
                let row = z.baseAddress! + r * v
                let lse = logSumExp(row, count: v)
                nll[r] = -(Double(row[targets[r]]) - lse)
                kld[r] = reference.negativeEntropy[r] - reference.expectedLogit(row: r, row) + lse
                agrees[r] = argmax(row, count: v) == Int(reference.argmax[r])
              }
            }
          }
        }
      }
    }
    return WindowScores(nll: nll, kld: kld, top1Agrees: agrees)
  }

  /// `score` for a logits matrix (`LlamaModel.logits(tokens:)`).
  public static func score<S: EngineScalar>(
    logits: Matrix<S>, targets: [Int], reference: ReferenceDistribution
  ) throws(EngineError) -> WindowScores {
    try score(logits: logits.storage, rows: logits.rows, vocabulary: logits.columns, targets: targets, reference: reference)
  }

  /// Per-position NLL only, `lse_t − z_t[y_t]`, without a reference (a base model's own scores).
  /// - Precondition: `logits.count == rows · vocabulary`, one target per row in `0..<vocabulary`.
  @specialized(where S == Float)
  @specialized(where S == Double)
  public static func nll<S: EngineScalar>(logits: [S], rows: Int, vocabulary: Int, targets: [Int]) -> [Double] {
    precondition(logits.count == rows * vocabulary && targets.count == rows, "\(logits.count) logits, \(targets.count) targets for \(rows) x \(vocabulary)")
    precondition(targets.allSatisfy { $0 >= 0 && $0 < vocabulary }, "target outside 0..<\(vocabulary)")
    var nll = [Double](repeating: 0, count: rows)
    logits.withUnsafeBufferPointer { z in
      nll.withUnsafeMutableBufferPointer { nll in
        Parallel.forEachChunk(rows, costPerItem: vocabulary) { range in
          for r in range {
            let row = z.baseAddress! + r * vocabulary
            nll[r] = -(Double(row[targets[r]]) - logSumExp(row, count: vocabulary))
          }
        }
      }
    }
    return nll
  }

  /// Reference twin of `score`: one thread, from the definitions log q = z − logsumexp(z),
  /// KL = Σ_v p̂_v (log p̂_v − log q_v) with log p̂ from `reference.logProbability(row:token:)`, argmax by a plain
  /// scan. Agrees with `score` to Double rounding (the sums are regrouped).
  public static func scoreReference<S: EngineScalar>(
    logits: [S], rows: Int, vocabulary v: Int, targets: [Int], reference: ReferenceDistribution
  ) throws(EngineError) -> WindowScores {
    try check(logits: logits.count, rows: rows, vocabulary: v, targets: targets, reference: reference)
    var scores = WindowScores(nll: [], kld: [], top1Agrees: [])
    for r in 0..<rows {
      // z: the row in Double; lse by the max-shifted sum
      let z = (0..<v).map { Double(logits[r * v + $0]) }
      let m = z.max()!
      let lse = m + log(z.reduce(0) { $0 + exp($1 - m) })
      scores.nll.append(lse - z[targets[r]])
      var kl = 0.0
      for j in 0..<v {
        let logp = reference.logProbability(row: r, token: j)
        kl += exp(logp) * (logp - (z[j] - lse))
      }
      scores.kld.append(kl)
      scores.top1Agrees.append(z.firstIndex(of: m)! == Int(reference.argmax[r]))
    }
    return scores
  }

  /// Checks that logits, targets and reference describe the same window.
  private static func check(
    logits count: Int, rows: Int, vocabulary: Int, targets: [Int], reference: ReferenceDistribution
  ) throws(EngineError) {
    precondition(count == rows * vocabulary, "\(count) logits for \(rows) x \(vocabulary)")
    guard reference.rows == rows, reference.vocabulary == vocabulary else {
      throw EngineError(
        .badReference, "logits are \(rows) x \(vocabulary), the reference distribution is \(reference.rows) x \(reference.vocabulary)")
    }
    guard targets.count == rows else { throw EngineError(.badTokens, "\(targets.count) targets for \(rows) positions") }
    if let bad = targets.firstIndex(where: { $0 < 0 || $0 >= vocabulary }) {
      throw EngineError(.badTokens, "target \(targets[bad]) at position \(bad) outside vocabulary 0..<\(vocabulary)")
    }
  }

  /// logsumexp of `count` values in Double, shifted by their maximum: m + log Σ e^{x − m}.
  @inline(__always)
  static func logSumExp<S: EngineScalar>(_ x: UnsafePointer<S>, count: Int) -> Double {
    var m = -Double.infinity
    for j in 0..<count { m = max(m, Double(x[j])) }
    var s = 0.0
    for j in 0..<count { s += exp(Double(x[j]) - m) }
    return m + log(s)
  }

  /// Index of the first largest value.
  @inline(__always)
  static func argmax<S: EngineScalar>(_ x: UnsafePointer<S>, count: Int) -> Int {
    var best = 0
    for j in 1..<max(count, 1) where x[j] > x[best] { best = j }
    return best
  }
}

extension ReferenceDistribution {
  /// Σ_v p̂_r,v · z_v in Double, index order (p̂ from the stored form).
  @inline(__always)
  func expectedLogit<S: EngineScalar>(row r: Int, _ z: UnsafePointer<S>) -> Double {
    let v = vocabulary
    var sum = 0.0
    switch precision {
    case .exact:
      probabilities.withUnsafeBufferPointer { p in
        let pr = p.baseAddress! + r * v
        for j in 0..<v { sum += pr[j] * Double(z[j]) }
      }
    case .uint16:
      // log p̂ exactly as `init` and `logProbability` form it, so KL(p̂‖p̂) cancels to rounding
      let (offset, step, normalizer) = (offsets[r], steps[r], logNormalizers[r])
      codes.withUnsafeBufferPointer { code in
        let cr = code.baseAddress! + r * v
        for j in 0..<v { sum += exp(offset + Double(cr[j]) * step - normalizer) * Double(z[j]) }
      }
    }
    return sum
  }
}
