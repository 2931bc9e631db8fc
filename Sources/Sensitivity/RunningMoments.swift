/// Running mean and variance of a stream of numbers by Welford's update, in `Double`.
///
/// After `n` values: `mean = Σx/n`, `m2 = Σ(x − mean)²`, sample variance `m2/(n−1)`, standard error of the mean
/// `√(m2/(n−1)/n)`. Welford's form avoids the cancellation of `Σx² − n·mean²`. The result depends on the order
/// of the values (floating-point addition is not associative), so a resumed run replays stored values in order.
/// Reference: Welford (1962), "Note on a method for calculating corrected sums of squares and products";
/// `reference(_:)` is the two-pass twin used in tests.
public struct RunningMoments: Sendable, Codable, Equatable {
  /// Number of values added.
  public private(set) var count: Int = 0
  /// Mean of the values added (0 when none).
  public private(set) var mean: Double = 0
  /// Sum of squared deviations from the mean.
  public private(set) var m2: Double = 0

  /// An empty accumulator.
  public init() {}

  /// Adds one value: `δ = x − mean; mean += δ/n; m2 += δ·(x − mean)`.
  public mutating func add(_ x: Double) {
    count += 1
    let delta = x - mean
    mean += delta / Double(count)
    m2 += delta * (x - mean)
  }

  /// Sample variance `m2/(n−1)`; 0 for fewer than two values.
  public var variance: Double { count > 1 ? m2 / Double(count - 1) : 0 }

  /// Standard error of the mean `√(variance/n)`; infinite for fewer than two values, where it is unknown.
  public var standardError: Double { count > 1 ? (variance / Double(count)).squareRoot() : .infinity }

  /// Two-pass reference: `(mean, standard error)` of `values`, each sum in order. Slow and obviously right.
  public static func reference(_ values: [Double]) -> (mean: Double, standardError: Double) {
    let n = Double(values.count)
    guard values.count > 1 else { return (values.first ?? 0, .infinity) }
    var sum = 0.0
    for x in values { sum += x }
    let mean = sum / n
    var squares = 0.0
    for x in values { squares += (x - mean) * (x - mean) }
    return (mean, (squares / (n - 1) / n).squareRoot())
  }
}

/// A Monte-Carlo estimate with its uncertainty and the samples it came from (never raw samples alone).
public struct Estimate: Sendable, Codable, Equatable {
  /// Mean of the samples.
  public var mean: Double
  /// Standard error of the mean (sample standard deviation / √n); infinite with fewer than two samples.
  public var standardError: Double
  /// The samples, in the order they were drawn.
  public var samples: [Double]
  /// Whether the stopping rule was met: at least the minimum number of samples and a relative standard error
  /// `standardError / |mean|` below the tolerance.
  public var converged: Bool

  /// Creates an estimate.
  public init(mean: Double, standardError: Double, samples: [Double], converged: Bool) {
    self.mean = mean
    self.standardError = standardError
    self.samples = samples
    self.converged = converged
  }

  /// `standardError / |mean|`; 0 when both are 0 (an exactly zero block), infinite when only the mean is 0.
  public var relativeStandardError: Double {
    if standardError == 0 { return 0 }
    return mean == 0 ? .infinity : standardError / abs(mean)
  }
}
