/// Distribution statistics of one weight matrix: variance, largest magnitude and excess kurtosis.
///
/// With `n` weights, mean `μ = Σw/n` and central moments `m₂ = Σ(w−μ)²/n`, `m₄ = Σ(w−μ)⁴/n` (population moments,
/// divided by `n`, as `numpy.var` and `scipy.stats.kurtosis(fisher=True, bias=True)`):
/// `variance = m₂`, `absmax = max |w|`, `kurtosis = m₄/m₂² − 3` (excess kurtosis: 0 for a Gaussian, −1.2 for a
/// uniform, large for heavy-tailed weights with outliers, which are hard to quantize). Two passes in `Double`.
public struct WeightStatistics: Sendable, Codable, Equatable {
  /// Number of weights.
  public var count: Int
  /// Population variance `m₂`.
  public var variance: Double
  /// Largest magnitude `max |w|`.
  public var absmax: Double
  /// Excess kurtosis `m₄/m₂² − 3`; NaN when the variance is 0 (a constant matrix has none).
  public var kurtosis: Double

  /// Statistics given directly (e.g. read back from a file).
  public init(count: Int, variance: Double, absmax: Double, kurtosis: Double) {
    self.count = count
    self.variance = variance
    self.absmax = absmax
    self.kurtosis = kurtosis
  }

  /// Measures `weights` (any layout; order only affects rounding).
  /// - Throws: `.invalidArgument` for no weights, `.nonFinite` for a NaN or infinite weight.
  public init(weights: [Float]) throws(SensitivityError) {
    if weights.isEmpty { throw SensitivityError(.invalidArgument, "statistics of an empty weight matrix") }
    let n = Double(weights.count)
    var sum = 0.0
    var absmax = 0.0
    for w in weights {
      if !w.isFinite { throw SensitivityError(.nonFinite, "weight \(w) in a weight matrix") }
      sum += Double(w)
      absmax = max(absmax, Double(abs(w)))
    }
    let mean = sum / n
    var m2 = 0.0
    var m4 = 0.0
    for w in weights {
      let d = Double(w) - mean
      let d2 = d * d
      m2 += d2
      m4 += d2 * d2
    }
    m2 /= n
    m4 /= n
    self.init(count: weights.count, variance: m2, absmax: absmax, kurtosis: m2 > 0 ? m4 / (m2 * m2) - 3 : .nan)
  }
}
