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
      S.swigluForward(gate: g + range.lowerBound, up: u + range.lowerBound, count: range.count, output: h + range.lowerBound)
    }
  }

  /// dg and du (both overwritten) from the upstream gradient dh. `dGate` may alias `dh`.
  package static func backward<S: EngineScalar>(
    gate g: UnsafePointer<S>, up u: UnsafePointer<S>, dh: UnsafePointer<S>, count: Int,
    dGate: UnsafeMutablePointer<S>, dUp: UnsafeMutablePointer<S>
  ) {
    Parallel.forEachChunk(count) { range in
      let i = range.lowerBound
      S.swigluBackward(gate: g + i, up: u + i, dh: dh + i, count: range.count, dGate: dGate + i, dUp: dUp + i)
    }
  }
}
