import CKernels

/// Element-wise Float maths of the engine (softmax rows, SwiGLU), vectorized in C with AVX-512 F where the CPU has
/// it (`vector_math.c`: exp within 1 ulp of libm's expf), otherwise plain loops over libm; `portable` selects the
/// plain twin explicitly (tests compare the two). Each function works on one contiguous run; callers split rows
/// over `Parallel` themselves.
public enum VectorMath {
  /// max(x[0..<count]); count ≥ 1.
  public static func maximum(_ x: UnsafePointer<Float>, count: Int, portable: Bool = false) -> Float {
    precondition(count >= 1, "maximum of an empty run")
    return portable ? bp_max_portable(x, count) : bp_max(x, count)
  }

  /// x[i] ← e^(x[i] − shift) in place; returns Σ of the new values, accumulated in Double.
  public static func expShifted(
    _ x: UnsafeMutablePointer<Float>, count: Int, shift: Float, portable: Bool = false
  ) -> Double {
    portable ? bp_exp_shifted_portable(x, count, shift) : bp_exp_shifted(x, count, shift)
  }

  /// h = silu(g) ⊙ u.
  public static func swigluForward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>,
    portable: Bool = false
  ) {
    if portable { bp_swiglu_forward_portable(gate, up, count, output) } else { bp_swiglu_forward(gate, up, count, output) }
  }

  /// du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))); `dGate` may alias `dh`.
  public static func swigluBackward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dh: UnsafePointer<Float>, count: Int,
    dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, portable: Bool = false
  ) {
    if portable {
      bp_swiglu_backward_portable(gate, up, dh, count, dGate, dUp)
    } else {
      bp_swiglu_backward(gate, up, dh, count, dGate, dUp)
    }
  }
}
