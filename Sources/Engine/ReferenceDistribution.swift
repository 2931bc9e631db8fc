#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// A base model's next-token distributions over one window, kept to score another model against (KL divergence,
/// top-1 agreement): per position the log-softmax of the base logits and its argmax.
///
/// Two precisions:
/// - `.uint16` (the default; what Validation caches on disk): per row r, log p_r,v rounded to a UInt16 code on the
///   grid `offset_r + code · step_r`, `offset_r = min_v log p_r,v`, `step_r = (max − min)/65535`, so each stored
///   log-probability is within `step_r/2` of the exact one (2 bytes per entry: 50 MB for 511 × 49,152). Scores use
///   the *stored* values, renormalised, `log p̂_r,v = offset + code·step − logsumexp_v(offset + code·step)`, so they
///   are identical whether the reference was just computed or read back with `init(serialized:)`. With
///   `|log p̂ − log p| ≤ s = step_r` (half a step from rounding, at most half a step more from renormalising), the
///   stored form changes a KL divergence by at most (eˢ − 1)² + (eˢ − 1)·Σ_v p_v |log p_v − log q_v| per position;
///   against the distribution itself, 0 ≤ KL(p̂‖p) ≤ χ²(p̂‖p) ≤ (eˢ − 1)² (s ≈ 5e-4 for a 49,152-word vocabulary
///   whose log-probabilities span 30 nats: ≤ 2.5e-7).
/// - `.exact`: p_r,v in Double and Σ_v p log p per row (8 bytes per entry), for the sensitivity audit, whose numbers
///   must not move.
///
/// Scoring: `TokenScoring.score(logits:rows:vocabulary:targets:reference:)`.
public struct ReferenceDistribution: Sendable, Equatable {
  /// How the log-probabilities are stored.
  public enum Precision: UInt32, Sendable, Codable {
    /// p in Double: KL divergences exact to Double rounding.
    case exact = 0
    /// log p as UInt16 codes on a per-row grid (see the type's documentation for the bound).
    case uint16 = 1
  }

  /// Positions (rows of the logits it was made from).
  public let rows: Int
  /// Vocabulary size (columns).
  public let vocabulary: Int
  /// The storage precision.
  public let precision: Precision
  /// Index of the largest base logit per position (the first one on ties).
  public let argmax: [Int32]

  /// `.uint16`: codes `[rows, vocabulary]`, and each row's grid offset and step.
  let codes: [UInt16]
  let offsets: [Double]
  let steps: [Double]
  /// `.uint16`: logsumexp of each row's dequantized values (derived from the stored data; subtracted to
  /// renormalise). `.exact`: zeros.
  let logNormalizers: [Double]
  /// `.exact`: p `[rows, vocabulary]`.
  let probabilities: [Double]
  /// Σ_v p log p per row (of the stored, renormalised form for `.uint16`).
  let negativeEntropy: [Double]

  /// The base distributions from its logits.
  /// - Parameters:
  ///   - logits: `[rows, vocabulary]` row-major (`LlamaModel.logits(tokens:)`'s storage), finite.
  ///   - precision: `.uint16` for a compact reference, `.exact` for Double probabilities.
  /// - Complexity: O(rows · vocabulary), one exp per entry (two for `.uint16`), rows spread over `Parallel`.
  @specialized(where S == Float)
  @specialized(where S == Double)
  public init<S: EngineScalar>(logits: [S], rows: Int, vocabulary: Int, precision: Precision = .uint16) {
    precondition(rows >= 0 && vocabulary >= 1, "reference of \(rows) rows over a vocabulary of \(vocabulary)")
    precondition(logits.count == rows * vocabulary, "\(logits.count) logits for \(rows) x \(vocabulary)")
    let v = vocabulary
    var argmax = [Int32](repeating: 0, count: rows)
    var negativeEntropy = [Double](repeating: 0, count: rows)
    var probabilities: [Double] = []
    var codes: [UInt16] = []
    var (offsets, steps) = ([Double](), [Double]())
    switch precision {
    case .exact:
      probabilities = [Double](repeating: 0, count: rows * v)
      logits.withUnsafeBufferPointer { z in
        probabilities.withUnsafeMutableBufferPointer { p in
          argmax.withUnsafeMutableBufferPointer { top in
            negativeEntropy.withUnsafeMutableBufferPointer { h in
              Parallel.forEachChunk(rows, costPerItem: v) { range in
                for r in range {
                  let row = z.baseAddress! + r * v
                  let lse = TokenScoring.logSumExp(row, count: v)
                  top[r] = Int32(TokenScoring.argmax(row, count: v))
                  // log p = z − lse, p = exp(log p), Σ p log p over p > 0 (the audit's formula, unchanged)
                  var sum = 0.0
                  for j in 0..<v {
                    let logp = Double(row[j]) - lse
                    let pj = exp(logp)
                    p[r * v + j] = pj
                    if pj > 0 { sum += pj * logp }
                  }
                  h[r] = sum
                }
              }
            }
          }
        }
      }
    case .uint16:
      codes = [UInt16](repeating: 0, count: rows * v)
      offsets = [Double](repeating: 0, count: rows)
      steps = [Double](repeating: 0, count: rows)
      logits.withUnsafeBufferPointer { z in
        codes.withUnsafeMutableBufferPointer { code in
          offsets.withUnsafeMutableBufferPointer { offset in
            steps.withUnsafeMutableBufferPointer { step in
              argmax.withUnsafeMutableBufferPointer { top in
                Parallel.forEachChunk(rows, costPerItem: v) { range in
                  for r in range {
                    let row = z.baseAddress! + r * v
                    let lse = TokenScoring.logSumExp(row, count: v)
                    top[r] = Int32(TokenScoring.argmax(row, count: v))
                    // grid over [min, max] of log p = z − lse: 65,536 levels
                    var (lo, hi) = (Double.infinity, -Double.infinity)
                    for j in 0..<v {
                      let logp = Double(row[j]) - lse
                      lo = min(lo, logp)
                      hi = max(hi, logp)
                    }
                    let s = hi > lo ? (hi - lo) / 65535 : 0
                    (offset[r], step[r]) = (lo, s)
                    for j in 0..<v {
                      let q = s > 0 ? ((Double(row[j]) - lse - lo) / s).rounded() : 0
                      code[r * v + j] = UInt16(min(max(q, 0), 65535))
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    self.init(
      rows: rows, vocabulary: vocabulary, precision: precision, argmax: argmax, codes: codes, offsets: offsets,
      steps: steps, probabilities: probabilities, negativeEntropy: precision == .exact ? negativeEntropy : nil)
  }

  /// The base distributions from a logits matrix (`LlamaModel.logits(tokens:)`).
  public init<S: EngineScalar>(logits: Matrix<S>, precision: Precision = .uint16) {
    self.init(logits: logits.storage, rows: logits.rows, vocabulary: logits.columns, precision: precision)
  }

  /// Assembles stored data and derives the rest (`logNormalizers`, and `negativeEntropy` for `.uint16`) from it,
  /// by the same code whether the data was just computed or deserialized.
  init(
    rows: Int, vocabulary: Int, precision: Precision, argmax: [Int32], codes: [UInt16], offsets: [Double],
    steps: [Double], probabilities: [Double], negativeEntropy: [Double]?
  ) {
    self.rows = rows
    self.vocabulary = vocabulary
    self.precision = precision
    self.argmax = argmax
    self.codes = codes
    self.offsets = offsets
    self.steps = steps
    self.probabilities = probabilities
    if let negativeEntropy {
      self.negativeEntropy = negativeEntropy
      logNormalizers = [Double](repeating: 0, count: rows)
      return
    }
    // .uint16: c_r = logsumexp of the dequantized row, Σ p̂ log p̂ with log p̂ = dequantized − c_r
    var normalizers = [Double](repeating: 0, count: rows)
    var entropy = [Double](repeating: 0, count: rows)
    let v = vocabulary
    codes.withUnsafeBufferPointer { code in
      normalizers.withUnsafeMutableBufferPointer { c in
        entropy.withUnsafeMutableBufferPointer { h in
          Parallel.forEachChunk(rows, costPerItem: v) { range in
            for r in range {
              let (row, offset, step) = (code.baseAddress! + r * v, offsets[r], steps[r])
              var top = -Double.infinity
              for j in 0..<v { top = max(top, offset + Double(row[j]) * step) }
              var sum = 0.0
              for j in 0..<v { sum += exp(offset + Double(row[j]) * step - top) }
              let normalizer = top + log(sum)
              var negative = 0.0
              for j in 0..<v {
                let logp = offset + Double(row[j]) * step - normalizer
                negative += exp(logp) * logp
              }
              (c[r], h[r]) = (normalizer, negative)
            }
          }
        }
      }
    }
    logNormalizers = normalizers
    self.negativeEntropy = entropy
  }

  /// log p̂ of `token` at position `row`, as the scores use it (for `.uint16` the stored, renormalised value).
  public func logProbability(row: Int, token: Int) -> Double {
    precondition(row >= 0 && row < rows && token >= 0 && token < vocabulary, "(\(row), \(token)) outside \(rows) x \(vocabulary)")
    switch precision {
    case .exact: return log(probabilities[row * vocabulary + token])
    case .uint16: return offsets[row] + Double(codes[row * vocabulary + token]) * steps[row] - logNormalizers[row]
    }
  }

  /// The grid step of a `.uint16` row (the bound `s` above is this step); 0 for `.exact`.
  public func step(row: Int) -> Double { precision == .uint16 ? steps[row] : 0 }

  /// Bytes held in memory by the stored form (codes or probabilities, plus per-row data).
  public var sizeInBytes: Int {
    codes.count * 2 + probabilities.count * 8 + rows * (4 + 8 * 4)
  }
}
