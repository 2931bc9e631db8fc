import TensorCore

/// Root-mean-square normalisation over the last dimension (Zhang & Sennrich 2019; HF `LlamaRMSNorm`).
///
/// Forward, per row t of x [rows, n]: r_t = 1/√(mean_i x_ti² + ε), y_ti = g_i · x_ti · r_t.
///
/// Backward, with upstream dy and a_i = g_i·dy_ti (derivation: ∂r/∂x_j = −r³ x_j / n, so
/// ∂y_i/∂x_j = g_i (δ_ij r − x_i x_j r³ / n)):
///   dx_tj = r_t a_j − (r_t³ / n) x_tj Σ_i a_i x_ti
///   dg_i  = Σ_t dy_ti x_ti r_t
/// Checked against central differences in `RMSNormTests`.
package enum RMSNorm {
  /// y = g ⊙ x · r per row; also stores r (needed by the backward pass).
  /// - Parameters: x, y: [rows, n]; gamma: [n]; inverseRMS: [rows] (out).
  package static func forward<S: EngineScalar>(
    x: UnsafePointer<S>, gamma: UnsafePointer<S>, rows: Int, n: Int, epsilon: Double,
    y: UnsafeMutablePointer<S>, inverseRMS: UnsafeMutablePointer<S>
  ) {
    // rows are independent: split over the workers
    Parallel.forEachChunk(rows, costPerItem: n) { range in
      for t in range {
        let xt = x + t * n, yt = y + t * n
        // mean of squares, accumulated in the working precision (as HF does in float32)
        var sum: S = 0
        for i in 0..<n { sum += xt[i] * xt[i] }
        let r = 1 / (sum / S(n) + S(epsilon)).squareRoot()
        inverseRMS[t] = r
        for i in 0..<n { yt[i] = gamma[i] * (xt[i] * r) }
      }
    }
  }

  /// dx += ∂L/∂x (accumulates: the residual stream's gradient is already in `dx`), and optionally
  /// dgamma = ∂L/∂g (overwritten).
  /// - Parameters: x, dy, dx: [rows, n]; gamma, dgamma: [n]; inverseRMS: [rows] from `forward`.
  package static func backward<S: EngineScalar>(
    x: UnsafePointer<S>, gamma: UnsafePointer<S>, inverseRMS: UnsafePointer<S>, dy: UnsafePointer<S>,
    rows: Int, n: Int, dx: UnsafeMutablePointer<S>, dgamma: UnsafeMutablePointer<S>?
  ) {
    // dx row by row, rows split over the workers; dg sums over the rows, so it is a second pass on this thread,
    // in row order (the same sums as one interleaved pass)
    Parallel.forEachChunk(rows, costPerItem: n) { range in
      for t in range {
        let xt = x + t * n, dyt = dy + t * n, dxt = dx + t * n
        let r = inverseRMS[t]
        // s = Σ_i g_i dy_i x_i
        var s: S = 0
        for i in 0..<n { s += gamma[i] * dyt[i] * xt[i] }
        let c = r * r * r * s / S(n)
        for i in 0..<n { dxt[i] += r * gamma[i] * dyt[i] - c * xt[i] }
      }
    }
    if let dgamma {
      dgamma.update(repeating: 0, count: n)
      for t in 0..<rows {
        let (xt, dyt, r) = (x + t * n, dy + t * n, inverseRMS[t])
        for i in 0..<n { dgamma[i] += dyt[i] * xt[i] * r }
      }
    }
  }
}
