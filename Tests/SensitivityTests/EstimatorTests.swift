import Sensitivity
import Testing
import _TestSupport

/// Power iteration, weight statistics, the Gram matrix and output error, the proxies and Spearman's ρ.
@Suite struct EstimatorTests {
  /// `A = Q diag(λ) Qᵀ` with the Householder reflection `Q = I − 2uuᵀ/‖u‖²`, so the eigenvalues are exactly `λ`.
  func symmetric(eigenvalues: [Double], seed: UInt64) -> [Double] {
    let n = eigenvalues.count
    let u = randomDoubles(n, seed: seed)
    let uu = u.reduce(0) { $0 + $1 * $1 }
    var q = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { q[i * n + j] = (i == j ? 1 : 0) - 2 * u[i] * u[j] / uu } }
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0..<n {
        var s = 0.0
        for k in 0..<n { s += q[i * n + k] * eigenvalues[k] * q[j * n + k] }
        a[i * n + j] = s
      }
    }
    return a
  }

  func apply(_ a: [Double], _ x: [Float]) -> [Float] {
    let n = x.count
    return (0..<n).map { i in Float((0..<n).reduce(0.0) { $0 + a[i * n + $1] * Double(x[$1]) }) }
  }

  /// Ratio |λ₂/λ₁| = 0.6, so 1e-8 relative change is reached well inside 200 steps; the Rayleigh quotient's error
  /// is then limited by Float rounding of the iterate (≈ 1e-6 relative), hence the 1e-5 tolerance.
  @Test(arguments: [[10.0, 6, 3, -2, 1, 0.5, 0.1, -4], [-9.0, 5, 2, 1, -3, 0.2]])
  func powerIterationFindsDominantEigenvalue(eigenvalues: [Double]) throws {
    let a = symmetric(eigenvalues: eigenvalues, seed: 4)
    var rng = SplitMix64(seed: 8)
    let r = try PowerIteration.dominantEigenvalue(
      dimension: eigenvalues.count, maximumIterations: 200, relativeTolerance: 1e-8, using: &rng
    ) { apply(a, $0) }
    #expect(r.converged)
    #expect(abs(r.eigenvalue - eigenvalues[0]) <= 1e-5 * abs(eigenvalues[0]), "\(r)")
  }

  @Test func powerIterationRejectsBadOperators() throws {
    var rng = SplitMix64(seed: 1)
    #expect { try PowerIteration.dominantEigenvalue(dimension: 3, using: &rng) { _ in [1, 2] } } throws: {
      ($0 as? SensitivityError)?.code == .shapeMismatch
    }
    let zero = try PowerIteration.dominantEigenvalue(dimension: 3, using: &rng) { _ in [0, 0, 0] }
    #expect(zero.eigenvalue == 0 && zero.converged)
  }

  /// [1, 2, 3, 4]: μ 2.5, m₂ = 1.25, m₄ = 2.5625, excess kurtosis 2.5625/1.5625 − 3 = −1.36 (scipy gives the same).
  @Test func weightStatisticsHandExample() throws {
    let s = try WeightStatistics(weights: [1, 2, 3, 4])
    #expect(s.variance == 1.25)
    #expect(s.absmax == 4)
    #expect(abs(s.kurtosis - -1.36) < 1e-12)
    let signed = try WeightStatistics(weights: [0.5, -7, 2])
    #expect(signed.absmax == 7)
    #expect(try WeightStatistics(weights: [3, 3, 3]).kurtosis.isNaN)
    #expect { try WeightStatistics(weights: [1, .infinity]) } throws: { ($0 as? SensitivityError)?.code == .nonFinite }
  }

  /// 60,000 uniform weights: excess kurtosis −1.2 with standard deviation ≈ √(0.46/n) ≈ 0.003; variance 1/3.
  @Test func weightStatisticsOfUniformSample() throws {
    let s = try WeightStatistics(weights: randomFloats(60_000, seed: 21))
    #expect(abs(s.kurtosis - -1.2) < 0.02)
    #expect(abs(s.variance - 1.0 / 3) < 0.01)
  }

  /// Shapes of captured inputs `(n, in)`: more rows than columns (`G` is formed) and fewer (the inputs are kept).
  static let gramShapes = [(64, 24), (16, 40)]

  /// sgemm accumulates n ≤ 64 products in Float: relative error ≤ n·ε_f ≈ 8e-6 of Σ|x_a x_b|/n ≤ max‖x‖²/n;
  /// 1e-5 of the largest |G| entry bounds it.
  @Test(arguments: gramShapes)
  func gramMatrixMatchesReference(n: Int, d: Int) throws {
    let x = randomFloats(n * d, seed: 3)
    let g = try GramMatrix(inputs: x, rows: n, columns: d)
    let ref = GramMatrix.reference(inputs: x, rows: n, columns: d)
    let scale = ref.map(abs).max()!
    let values = g.values
    for j in ref.indices { #expect(abs(Double(values[j]) - ref[j]) <= 1e-5 * scale) }
    let trace = GramMatrix.inputTrace(inputs: x, rows: n)
    #expect(abs(trace - (0..<d).reduce(0.0) { $0 + ref[$1 * d + $1] }) <= 1e-12 * trace)
  }

  /// tr(ΔW G ΔWᵀ) by sgemm vs the Double reference and vs ‖XΔWᵀ‖²/n computed directly. With `G` formed, two Float
  /// GEMMs of length ≤ 64 give ≤ 2·64·ε_f ≈ 1.5e-5 relative error on a positive sum; with the inputs kept, one GEMM
  /// of length in ≤ 40 whose results are squared gives ≤ 2·40·ε_f ≈ 5e-6.
  @Test(arguments: gramShapes)
  func outputErrorMatchesReference(n: Int, d: Int) throws {
    let out = 10
    let x = randomFloats(n * d, seed: 3)
    let delta = randomFloats(out * d, seed: 4, scale: 0.01)
    let g = try GramMatrix(inputs: x, rows: n, columns: d)
    let fast = try g.outputError(delta: delta, rows: out)
    let ref = GramMatrix.outputErrorReference(delta: delta, rows: out, inputs: x, inputRows: n, columns: d)
    var direct = 0.0
    for r in 0..<n {
      for o in 0..<out {
        var y = 0.0
        for c in 0..<d { y += Double(x[r * d + c]) * Double(delta[o * d + c]) }
        direct += y * y
      }
    }
    direct /= Double(n)
    #expect(abs(fast - ref) <= 2e-5 * ref)
    #expect(abs(direct - ref) <= 1e-12 * ref)
    #expect { try g.outputError(delta: delta, rows: out + 1) } throws: {
      ($0 as? SensitivityError)?.code == .invalidArgument
    }
  }

  /// The one-pass proxies equal the `LossProxy` functions bit for bit (same terms, same order), NaN where a vector
  /// is missing.
  @Test(arguments: tailLengths)
  func diagonalProxiesEqualLossProxies(n: Int) {
    let delta = randomFloats(n, seed: 31, scale: 0.01)
    let g = randomDoubles(n, seed: 32), h = randomDoubles(n, seed: 33)
    let both = LayerMeasurement.diagonalProxies(delta: delta, gradient: g, hessianDiagonal: h)
    #expect(both.weightError.bitPattern == LossProxy.weightError(delta: delta).bitPattern)
    #expect(both.fisherDiagonal.bitPattern == LossProxy.fisherDiagonal(gradient: g, delta: delta).bitPattern)
    #expect(both.taylorDiagonal.bitPattern == LossProxy.taylorDiagonal(hessianDiagonal: h, delta: delta).bitPattern)
    let neither = LayerMeasurement.diagonalProxies(delta: delta, gradient: nil, hessianDiagonal: nil)
    #expect(neither.weightError.bitPattern == both.weightError.bitPattern)
    #expect(neither.fisherDiagonal.isNaN && neither.taylorDiagonal.isNaN)
  }

  @Test func proxiesHandExample() {
    let delta: [Float] = [0.5, -1, 0.25, 2]
    #expect(LossProxy.weightError(delta: delta) == 0.25 + 1 + 0.0625 + 4)
    #expect(LossProxy.hawqTrace(hessianTrace: 8, parameterCount: 4, weightError: 5.3125) == 10.625)
    #expect(LossProxy.fisherDiagonal(gradient: [2, 0, -4, 1], delta: delta) == 4 * 0.25 + 16 * 0.0625 + 4)
    #expect(LossProxy.taylorDiagonal(hessianDiagonal: [2, 1, -4, 0.5], delta: delta) == 0.5 * (0.5 + 1 - 0.25 + 2))
    #expect(
      LossProxy.allCases.map(\.rawValue) == [
        "weight_error", "hawq_trace", "fisher_diag", "taylor_diag", "output_error",
      ])
  }

  @Test func averageRanksWithTies() {
    #expect(SpearmanCorrelation.ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4])
    #expect(SpearmanCorrelation.ranks([3, 1, 3, 3, 0]) == [4, 2, 4, 4, 1])
  }

  /// Values from `scipy.stats.spearmanr` (scipy 1.x): 0.8207826816681233 and 0.19885368120992467.
  @Test func spearmanMatchesScipy() throws {
    let a = try #require(SpearmanCorrelation.rho([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]))
    #expect(abs(a - 0.8207826816681233) < 1e-15)
    let b = try #require(SpearmanCorrelation.rho([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]))
    #expect(abs(b - 0.19885368120992467) < 1e-15)
    #expect(SpearmanCorrelation.rho([1, 2, 3], [30, 20, 10]) == -1)
    #expect(SpearmanCorrelation.rho([1, 2, .nan, 4], [1, 5, 0, 9]) == 1)
    #expect(SpearmanCorrelation.rho([1, 2, 3], [4, 4, 4]) == nil)
    #expect(SpearmanCorrelation.rho([1], [2]) == nil)
  }
}
