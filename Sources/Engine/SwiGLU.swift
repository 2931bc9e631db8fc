import TensorCore

/// The gated activation of the llama MLP (Shazeer 2020): h = silu(g) ⊙ u with silu(g) = g·σ(g).
///
/// Backward: with σ = σ(g), d silu/dg = σ (1 + g (1 − σ)), so dg = dh ⊙ u ⊙ σ(1 + g(1 − σ)) and
/// du = dh ⊙ silu(g). Checked against central differences in `SwiGLUTests`.
package enum SwiGLU {
  /// h = silu(g) ⊙ u, element-wise over `count` values.
  package static func forward<S: EngineScalar>(
    gate g: UnsafePointer<S>, up u: UnsafePointer<S>, count: Int, output h: UnsafeMutablePointer<S>
  ) {
    Parallel.forEachChunk(count) { range in
      for i in range {
        let sigma = 1 / (1 + S.exp(-g[i]))
        h[i] = g[i] * sigma * u[i]
      }
    }
  }

  /// dg and du (both overwritten) from the upstream gradient dh. `dGate` may alias `dh`.
  package static func backward<S: EngineScalar>(
    gate g: UnsafePointer<S>, up u: UnsafePointer<S>, dh: UnsafePointer<S>, count: Int,
    dGate: UnsafeMutablePointer<S>, dUp: UnsafeMutablePointer<S>
  ) {
    Parallel.forEachChunk(count) { range in
      for i in range {
        let sigma = 1 / (1 + S.exp(-g[i]))
        let upstream = dh[i]
        dUp[i] = upstream * g[i] * sigma
        dGate[i] = upstream * u[i] * sigma * (1 + g[i] * (1 - sigma))
      }
    }
  }
}
