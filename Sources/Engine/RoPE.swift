#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// Rotary position embedding in HF "rotate-half" order (Su et al. 2021; HF `apply_rotary_pos_emb`).
///
/// For a head vector x of width D (even) at position p, pair i < D/2 couples x_i and x_{i+D/2} with angle
/// p·θ^(−2i/D):  y_i = x_i cos − x_{i+D/2} sin,  y_{i+D/2} = x_{i+D/2} cos + x_i sin.
/// The map is a rotation R_p, so its backward pass is Rᵀ = R(−angle): the same code with sin negated.
/// GGUF stores Q/K rows permuted for interleaved pairs (2i, 2i+1); the loader undoes that before the engine sees
/// them (`w.reshape(nh, D/2, 2, in).swapaxes(1, 2)`).
package struct RoPE<S: EngineScalar> {
  /// cos and sin of p·θ^(−2i/D), [positions, D/2] row-major.
  package let cos: [S]
  package let sin: [S]
  package let positions: Int
  package let headDim: Int

  /// Tables for positions 0..<positions. Angles are formed in Double and rounded once.
  package init(positions: Int, headDim: Int, theta: Double) {
    let half = headDim / 2
    var c = [S](repeating: 0, count: positions * half), s = c
    for p in 0..<positions {
      for i in 0..<half {
        let frequency = 1 / pow(theta, Double(2 * i) / Double(headDim))
        let (sn, cs) = S.sinCos(Double(p) * frequency)
        c[p * half + i] = cs
        s[p * half + i] = sn
      }
    }
    self.cos = c
    self.sin = s
    self.positions = positions
    self.headDim = headDim
  }

  /// Rotates every head of x [rows, heads·D] in place (row t is position t); `inverse` applies Rᵀ (backward).
  package func apply(_ x: UnsafeMutablePointer<S>, rows: Int, heads: Int, inverse: Bool = false) {
    precondition(rows <= positions, "RoPE table has \(positions) positions, asked for \(rows)")
    let half = headDim / 2
    cos.withUnsafeBufferPointer { cosTable in
      sin.withUnsafeBufferPointer { sinTable in
        let (cosBase, sinBase) = (cosTable.baseAddress!, sinTable.baseAddress!)
        // rows are independent: split over the workers (each value computed as in one pass)
        Parallel.forEachChunk(rows, costPerItem: heads * headDim) { range in
          for t in range {
            let c = cosBase + t * half, s = sinBase + t * half
            for h in 0..<heads {
              // the pair's halves through two pointers: no overflow-checked index in the loop, which vectorises
              let low = x + (t * heads + h) * headDim, high = low + half
              for i in 0..<half {
                let sn = inverse ? -s[i] : s[i]
                let (a, b) = (low[i], high[i])
                low[i] = a * c[i] - b * sn
                high[i] = b * c[i] + a * sn
              }
            }
          }
        }
      }
    }
  }
}
