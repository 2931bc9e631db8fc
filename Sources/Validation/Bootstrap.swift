import Foundation
import TensorCore

/// A statistic with its 95% bootstrap interval.
public struct Interval: Sendable, Equatable, Codable {
  /// The statistic on the data as observed.
  public var value: Double
  /// 2.5th percentile of the bootstrap distribution.
  public var low: Double
  /// 97.5th percentile of the bootstrap distribution.
  public var high: Double

  public init(value: Double, low: Double, high: Double) {
    self.value = value
    self.low = low
    self.high = high
  }

  /// `0.0312 [0.0290, 0.0335]` with `digits` decimals.
  public func formatted(_ digits: Int = 4) -> String {
    "\(fixed(value, digits)) [\(fixed(low, digits)), \(fixed(high, digits))]"
  }
}

/// Percentile bootstrap over windows (Efron & Tibshirani 1993, ch. 13), seeded.
///
/// Windows are the resampling unit: positions inside a window are correlated (they share context), windows far apart
/// in the text much less so. Each replicate draws `windows.count` window indices with replacement and recomputes the
/// statistic; the interval is the 2.5th and 97.5th percentile of `replicates` such values (linear interpolation
/// between order statistics). Every statistic of one validation run is resampled with the same index draws, so
/// paired differences (plan − baseline) see the same windows on both sides.
public struct WindowBootstrap: Sendable {
  /// The resampled index lists, one per replicate.
  public let draws: [[Int]]

  /// - Parameters:
  ///   - windows: number of windows (≥ 1).
  ///   - replicates: resamples (≥ 1; 2,000 is the default of the command line).
  ///   - seed: `SplitMix64` seed.
  public init(windows: Int, replicates: Int = 2000, seed: UInt64) {
    precondition(windows >= 1 && replicates >= 1, "bootstrap of \(windows) windows, \(replicates) replicates")
    var rng = SplitMix64(seed: seed)
    draws = (0..<replicates).map { _ in (0..<windows).map { _ in Int(rng.next() % UInt64(windows)) } }
  }

  /// The interval of `statistic` (a function of per-window values, e.g. their mean).
  public func interval(_ perWindow: [Double], statistic: ([Double]) -> Double = Self.mean) -> Interval {
    let value = statistic(perWindow)
    var replicated = draws.map { d in statistic(d.map { perWindow[$0] }) }
    replicated.sort()
    return Interval(
      value: value, low: Self.percentile(replicated, 0.025), high: Self.percentile(replicated, 0.975))
  }

  /// The interval of a paired difference `mean(a) − mean(b)` over the same windows.
  public func difference(_ a: [Double], _ b: [Double]) -> Interval {
    precondition(a.count == b.count, "paired windows: \(a.count) vs \(b.count)")
    return interval(zip(a, b).map { $0 - $1 })
  }

  /// Arithmetic mean (0 for no values).
  public static func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

  /// The `q`-quantile of sorted values, interpolating linearly between order statistics (type 7 of Hyndman &
  /// Fan 1996, numpy's default).
  public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let h = Double(sorted.count - 1) * q
    let lo = Int(h.rounded(.down))
    let hi = min(lo + 1, sorted.count - 1)
    return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
  }
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
