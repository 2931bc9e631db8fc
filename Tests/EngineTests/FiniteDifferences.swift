/// Central finite differences in Double, the reference every hand-written derivative is tested against.
///
/// Error of (f(x + h) − f(x − h)) / 2h: truncation h²/6 · |f'''| plus rounding ≈ u·|f| / h (u = 2⁻⁵³). With
/// h = `step` = 1e-5 ≈ u^(1/3) and O(1) inputs both terms are ~1e-10, so `tolerance` = 1e-7 · (1 + |g|)
/// leaves three orders of margin while a wrong derivative (an O(1) error) fails by six.
enum FiniteDifferences {
  static let step = 1e-5
  static let tolerance = 1e-7

  /// ∂f/∂x_i for every i.
  static func gradient(at x: [Double], step h: Double = step, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    return (0..<x.count).map { i in
      let saved = x[i]
      x[i] = saved + h
      let plus = f(x)
      x[i] = saved - h
      let minus = f(x)
      x[i] = saved
      return (plus - minus) / (2 * h)
    }
  }

  /// Whether `analytic` matches `numeric` entry by entry within `tolerance · (1 + |numeric|)`.
  static func mismatches(_ analytic: [Double], _ numeric: [Double], tolerance: Double = tolerance) -> [String] {
    precondition(analytic.count == numeric.count, "\(analytic.count) vs \(numeric.count)")
    return analytic.indices.compactMap { i in
      abs(analytic[i] - numeric[i]) <= tolerance * (1 + abs(numeric[i]))
        ? nil : "[\(i)] analytic \(analytic[i]) numeric \(numeric[i])"
    }
  }

  /// Σ wᵢ yᵢ: a scalar probe of a vector-valued op, whose gradient is Jᵀw.
  static func dot(_ w: [Double], _ y: [Double]) -> Double {
    zip(w, y).reduce(0) { $0 + $1.0 * $1.1 }
  }
}
