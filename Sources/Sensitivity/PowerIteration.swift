/// Dominant eigenvalue of a symmetric linear operator given only as `v ↦ Av`, by power iteration.
///
/// Starting from a seeded random unit vector `v₀`, repeat `w = A vₜ`, `λₜ = vₜᵀw` (the Rayleigh quotient),
/// `vₜ₊₁ = w/‖w‖`, until `|λₜ − λₜ₋₁| ≤ relativeTolerance · |λₜ|`. The iterate converges to the eigenvector of the
/// eigenvalue of largest magnitude at the rate `|λ₂/λ₁|` per step, and the Rayleigh quotient converges twice as fast
/// for a symmetric operator. For a loss Hessian, which is indefinite away from a minimum, this is the eigenvalue of
/// largest magnitude (its sign kept), as PyHessian's `eigenvalues()` reports.
/// Reference: Golub & Van Loan, "Matrix Computations" §8.2.1; Yao et al. (2020), PyHessian.
public enum PowerIteration {
  /// The eigenvalue found and how the iteration ended.
  public struct Result: Sendable, Codable, Equatable {
    /// Rayleigh quotient of the last iterate.
    public var eigenvalue: Double
    /// Number of operator applications.
    public var iterations: Int
    /// Whether the relative change fell below the tolerance before the iteration limit.
    public var converged: Bool

    /// A result; see the properties.
    public init(eigenvalue: Double, iterations: Int, converged: Bool) {
      self.eigenvalue = eigenvalue
      self.iterations = iterations
      self.converged = converged
    }
  }

  /// Runs power iteration on the `dimension`-dimensional symmetric operator `apply`.
  /// - Parameters:
  ///   - dimension: length of the vectors `apply` takes and returns.
  ///   - maximumIterations: the most operator applications.
  ///   - relativeTolerance: stop when successive Rayleigh quotients differ by at most this times the latest.
  ///   - rng: the start vector's entries are uniform in [−1, 1) from this generator, then normalized.
  ///   - apply: `v ↦ Av`; `A` must be symmetric.
  /// - Returns: the dominant eigenvalue; 0 (converged) for an operator that maps the iterate to zero.
  /// - Throws: `.invalidArgument` for a dimension below 1 or an iteration limit below 1, `.shapeMismatch` when
  ///   `apply` returns another length, `.nonFinite` for a NaN result, or what `apply` throws.
  /// - Complexity: `maximumIterations` applications of `apply` and O(dimension) work each.
  public static func dominantEigenvalue(
    dimension: Int, maximumIterations: Int = 100, relativeTolerance: Double = 1e-4,
    using rng: inout some RandomNumberGenerator, apply: ([Float]) throws -> [Float]
  ) throws -> Result {
    if dimension < 1 || maximumIterations < 1 {
      throw SensitivityError(
        .invalidArgument, "power iteration: dimension \(dimension), iterations \(maximumIterations)")
    }
    var v = (0..<dimension).map { _ in Double.random(in: -1..<1, using: &rng) }
    normalize(&v)
    var previous = Double.nan
    for t in 1...maximumIterations {
      let w = try apply(v.map { Float($0) })
      if w.count != dimension {
        throw SensitivityError(.shapeMismatch, "power iteration: operator returned \(w.count) of \(dimension) values")
      }
      // λ = vᵀ(Av), Double accumulation in index order.
      var lambda = 0.0
      for j in 0..<dimension { lambda += v[j] * Double(w[j]) }
      if !lambda.isFinite {
        throw SensitivityError(.nonFinite, "power iteration: Rayleigh quotient \(lambda) at step \(t)")
      }
      var next = w.map { Double($0) }
      if normalize(&next) == 0 { return Result(eigenvalue: 0, iterations: t, converged: true) }
      if abs(lambda - previous) <= relativeTolerance * abs(lambda) {
        return Result(eigenvalue: lambda, iterations: t, converged: true)
      }
      previous = lambda
      v = next
    }
    return Result(eigenvalue: previous, iterations: maximumIterations, converged: false)
  }

  /// Scales `x` to unit Euclidean norm (left alone when zero) and returns the norm it had.
  @discardableResult
  static func normalize(_ x: inout [Double]) -> Double {
    var s = 0.0
    for e in x { s += e * e }
    let norm = s.squareRoot()
    if norm > 0 { for j in x.indices { x[j] /= norm } }
    return norm
  }
}
