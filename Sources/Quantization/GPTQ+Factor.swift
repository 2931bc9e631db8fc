/// The factor GPTQ runs on: the upper-triangular U with `H⁻¹ = UᵀU` (the GPTQ paper's "Cholesky of H⁻¹", torch's
/// `cholesky(cholesky_inverse(cholesky(H)), upper=True)`), in Double.
///
/// `factorReference` follows that recipe literally: L = chol(H), H⁻¹ = L⁻ᵀL⁻¹, then the upper Cholesky factor of
/// H⁻¹ (three O(n³) passes and an explicit inverse). `factor` gets the same U without forming H⁻¹: with
/// H = V·Vᵀ, V upper triangular (the Cholesky factorization run from the last column to the first), H⁻¹ = V⁻ᵀV⁻¹,
/// so U = V⁻¹, which is upper triangular with a positive diagonal, hence *the* upper Cholesky factor of H⁻¹.
/// Two passes of n³/6 multiply-adds, each an inner loop over contiguous Doubles.
extension GPTQ {
  /// U for `h` (n × n, row-major, symmetric positive definite; only the lower triangle is read), or the column
  /// at which a pivot was not positive.
  static func factor(_ h: [Double], n: Int) -> Result<[Double], FactorFailure> {
    // V upper with H = V·Vᵀ: for j = n−1 … 0, V[j,j]² = H[j,j] − Σ_{k>j} V[j,k]², V[i,j] = (H[j,i] − Σ_{k>j} V[i,k]·V[j,k]) / V[j,j].
    var v = [Double](repeating: 0, count: n * n)
    let failure: Int? = v.withUnsafeMutableBufferPointer { vb in
      h.withUnsafeBufferPointer { hb in
        let V = vb.baseAddress!, H = hb.baseAddress!
        for j in stride(from: n - 1, through: 0, by: -1) {
          let vj = V + j * n
          var s = H[j * n + j]
          for k in (j + 1)..<n { s -= vj[k] * vj[k] }
          guard s > 0, s.isFinite else { return j }
          let pivot = s.squareRoot()
          vj[j] = pivot
          for i in 0..<j {
            let vi = V + i * n
            var t = H[j * n + i]
            for k in (j + 1)..<n { t -= vi[k] * vj[k] }
            vi[j] = t / pivot
          }
        }
        return nil
      }
    }
    if let column = failure { return .failure(FactorFailure(column: column)) }
    // U = V⁻¹ row by row from the bottom: U[i,i] = 1/V[i,i], U[i, i+1...] = −U[i,i]·Σ_{k>i} V[i,k]·U[k, ...].
    var u = [Double](repeating: 0, count: n * n)
    u.withUnsafeMutableBufferPointer { ub in
      v.withUnsafeBufferPointer { vb in
        let U = ub.baseAddress!, V = vb.baseAddress!
        for i in stride(from: n - 1, through: 0, by: -1) {
          let ui = U + i * n
          let inverse = 1 / V[i * n + i]
          for k in (i + 1)..<n {
            let c = V[i * n + k]
            if c == 0 { continue }
            let uk = U + k * n
            for j in k..<n { ui[j] -= c * uk[j] }
          }
          for j in (i + 1)..<n { ui[j] *= inverse }
          ui[i] = inverse
        }
      }
    }
    return .success(u)
  }

  /// The literal recipe: L = chol(H), H⁻¹ = L⁻ᵀL⁻¹, U = the upper Cholesky factor of H⁻¹. Slow and obviously right.
  static func factorReference(_ h: [Double], n: Int) -> Result<[Double], FactorFailure> {
    // L lower with H = L·Lᵀ.
    var l = [Double](repeating: 0, count: n * n)
    for j in 0..<n {
      var s = h[j * n + j]
      for k in 0..<j { s -= l[j * n + k] * l[j * n + k] }
      guard s > 0, s.isFinite else { return .failure(FactorFailure(column: j)) }
      l[j * n + j] = s.squareRoot()
      for i in (j + 1)..<n {
        var t = h[i * n + j]
        for k in 0..<j { t -= l[i * n + k] * l[j * n + k] }
        l[i * n + j] = t / l[j * n + j]
      }
    }
    // M = L⁻¹ (lower), column by column by forward substitution.
    var m = [Double](repeating: 0, count: n * n)
    for c in 0..<n {
      for i in c..<n {
        var t = i == c ? 1.0 : 0.0
        for k in c..<i { t -= l[i * n + k] * m[k * n + c] }
        m[i * n + c] = t / l[i * n + i]
      }
    }
    // H⁻¹ = Mᵀ·M.
    var inverse = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0..<n {
        var t = 0.0
        for k in max(i, j)..<n { t += m[k * n + i] * m[k * n + j] }
        inverse[i * n + j] = t
      }
    }
    // U upper with H⁻¹ = Uᵀ·U: row i of U from the rows above it.
    var u = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      var s = inverse[i * n + i]
      for k in 0..<i { s -= u[k * n + i] * u[k * n + i] }
      guard s > 0, s.isFinite else { return .failure(FactorFailure(column: i)) }
      u[i * n + i] = s.squareRoot()
      for j in (i + 1)..<n {
        var t = inverse[i * n + j]
        for k in 0..<i { t -= u[k * n + i] * u[k * n + j] }
        u[i * n + j] = t / u[i * n + i]
      }
    }
    return .success(u)
  }

  /// A Cholesky pivot that was not positive: H is not positive definite even after damping.
  struct FactorFailure: Error {
    /// The column (in GPTQ's processing order) of the first bad pivot.
    var column: Int
  }
}
