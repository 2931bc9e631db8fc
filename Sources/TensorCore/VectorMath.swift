import CKernels

/// Element-wise Float maths of the engine (softmax rows, SwiGLU), vectorized in C (`vector_math.c`: exp within 1 ulp
/// of libm's expf) with AVX-512 F where the CPU has it, else AVX2 + FMA, else plain loops over libm. `path` selects
/// a version explicitly so that tests compare them: `.portable` is the plain twin, `.avx2` the AVX2 version (the
/// portable twin on a CPU without AVX2 + FMA; `avx2Available` says which). Each function works on one contiguous
/// run; callers split rows over `Parallel` themselves.
public enum VectorMath {
  /// Which version of a function runs.
  public enum Path: Sendable, CaseIterable { case best, avx2, portable }

  /// Whether this CPU runs the AVX2 + FMA versions (`.avx2` is then not the portable twin).
  public static var avx2Available: Bool { bp_vector_math_has_avx2() != 0 }

  /// max(x[0..<count]); count ≥ 1.
  public static func maximum(_ x: UnsafePointer<Float>, count: Int, path: Path = .best) -> Float {
    precondition(count >= 1, "maximum of an empty run")
    switch path {
    case .best: return bp_max(x, count)
    case .avx2: return bp_max_avx2(x, count)
    case .portable: return bp_max_portable(x, count)
    }
  }

  /// x[i] ← e^(x[i] − shift) in place; returns Σ of the new values, accumulated in Double.
  public static func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float, path: Path = .best) -> Double {
    switch path {
    case .best: return bp_exp_shifted(x, count, shift)
    case .avx2: return bp_exp_shifted_avx2(x, count, shift)
    case .portable: return bp_exp_shifted_portable(x, count, shift)
    }
  }

  /// Σ e^(x[i] − shift) in Double, x unchanged: `expShifted`'s return value bit for bit (the same values summed in
  /// the same order), without writing them.
  public static func expSum(_ x: UnsafePointer<Float>, count: Int, shift: Float, path: Path = .best) -> Double {
    switch path {
    case .best: return bp_exp_sum(x, count, shift)
    case .avx2: return bp_exp_sum_avx2(x, count, shift)
    case .portable: return bp_exp_sum_portable(x, count, shift)
    }
  }

  /// h = silu(g) ⊙ u.
  public static func swigluForward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>,
    path: Path = .best
  ) {
    switch path {
    case .best: bp_swiglu_forward(gate, up, count, output)
    case .avx2: bp_swiglu_forward_avx2(gate, up, count, output)
    case .portable: bp_swiglu_forward_portable(gate, up, count, output)
    }
  }

  /// du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))); `dGate` may alias `dh`.
  public static func swigluBackward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dh: UnsafePointer<Float>, count: Int,
    dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, path: Path = .best
  ) {
    switch path {
    case .best: bp_swiglu_backward(gate, up, dh, count, dGate, dUp)
    case .avx2: bp_swiglu_backward_avx2(gate, up, dh, count, dGate, dUp)
    case .portable: bp_swiglu_backward_portable(gate, up, dh, count, dGate, dUp)
    }
  }
}
