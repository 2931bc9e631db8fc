import Foundation

/// The re-solve of `bitplan validate --repair N`: the closest calls' measured loss changes put into the problem in
/// its own score units, then the exact optimum at the same budget.
///
/// The rule. The score's units are not the measured KLD's, so one scale s is fitted over the N swaps by least
/// squares through the origin, measured ≈ s · predicted: s = Σ pⱼmⱼ / Σ pⱼ². When that s is not positive (the
/// predictions point the wrong way on average) or not finite, s = Σ|mⱼ| / Σ|pⱼ| (the ratio of magnitudes), which is
/// positive whenever any change was measured; when neither exists nothing is re-solved. Then for each swap j of
/// layer i from option cᵢ to option t, loss(t) := loss(cᵢ) + mⱼ / s, every other option as predicted, and the
/// problem is solved exactly at the same budget.
public enum MeasuredRepair {
  /// How the scale was fitted.
  public enum ScaleRule: String, Sendable, Codable {
    /// Σ p·m / Σ p² (least squares through the origin).
    case leastSquares = "least_squares"
    /// Σ|m| / Σ|p|, because least squares gave s ≤ 0 or no finite value.
    case magnitudeRatio = "magnitude_ratio"
  }

  /// The scale s (measured ≈ s · predicted) and its rule, or nil when neither rule gives a positive finite value.
  public static func scale(predicted: [Double], measured: [Double]) -> (value: Double, rule: ScaleRule)? {
    precondition(predicted.count == measured.count, "\(predicted.count) predictions for \(measured.count) measurements")
    let pm = zip(predicted, measured).reduce(0.0) { $0 + $1.0 * $1.1 }
    let pp = predicted.reduce(0.0) { $0 + $1 * $1 }
    let s = pm / pp
    if s > 0 && s.isFinite { return (s, .leastSquares) }
    let ratio = measured.reduce(0.0) { $0 + abs($1) } / predicted.reduce(0.0) { $0 + abs($1) }
    if ratio > 0 && ratio.isFinite { return (ratio, .magnitudeRatio) }
    return nil
  }

  /// `problem` with each swap's target option's loss replaced by loss(from) + measured / `scale`.
  /// - Parameters:
  ///   - swaps: the measured swaps (from `ClosestCalls.select`), each with its measured change in `measured`.
  public static func adjusted(
    _ problem: AllocationProblem, swaps: [PlanSwap], measured: [Double], scale: Double
  ) -> AllocationProblem {
    precondition(swaps.count == measured.count && scale > 0, "\(swaps.count) swaps, \(measured.count) measurements, scale \(scale)")
    var out = problem
    for (swap, m) in zip(swaps, measured) {
      out.layers[swap.layer].options[swap.to].loss = problem.layers[swap.layer].options[swap.from].loss + m / scale
    }
    return out
  }
}
