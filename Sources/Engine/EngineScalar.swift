#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// The scalar types the engine computes in: `Float` for real models, `Double` for gradient and Hessian checks on
/// tiny models.
///
/// The engine is generic over this protocol so that one hand-written forward/backward serves both precisions. The
/// heavy work dispatches here to OpenBLAS (`sgemm`/`dgemm`); element-wise maths of Float runs vectorized
/// (`VectorMath`: softmax rows, SwiGLU), of Double through libm — the Double path is the plain reference. The
/// public entry points of `LlamaModel` carry `@specialized(where Scalar == Float)` (SE-0460), so in a release
/// build the Float path is a fully specialized clone with no witness-table calls in the inner loops (measured:
/// the unspecialized generic loop is ~150x slower).
public protocol EngineScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
  /// Strided GEMM, row-major: `C[m,n] = alpha·op(A)·op(B) + beta·C`; see `BLAS.sgemm(...lda:...)`.
  static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
    b: UnsafePointer<Self>, ldb: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  /// A weight gradient, row-major: `C[m,n] = alpha·Aᵀ·B + beta·C` with A stored [k, m] and B [k, n] (dW = dYᵀ·X);
  /// Float: `BLAS.weightGradient` (the packed kernel for the short inner dimensions of probe windows). `streaming`:
  /// C is written once and not read soon (a gradient handed back to the caller), so it may bypass the cache; it
  /// changes no value.
  static func weightGradient(
    m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
    beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int, streaming: Bool)
  /// An input gradient, row-major: `C[m,n] = A·B + beta·C` with A [m, k] and B [k, n] (dX = dY·W, W [out, in] as it
  /// lies); Float: `BLAS.inputGradient` (the packed kernel for windows of up to 256 tokens).
  static func inputGradient(
    m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
    c: UnsafeMutablePointer<Self>, ldc: Int)
  /// One of attention's products on the calling thread, row-major: `C[m,n] = op(A)·op(B)` (+ C when
  /// `accumulate`); Float: `BLAS.attentionProduct` (the 6 × 64 kernel on AVX-512) for an untransposed A, else
  /// `gemm`.
  static func attentionProduct(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int,
    b: UnsafePointer<Self>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Self>, ldc: Int)
  /// eˣ (libm).
  static func exp(_ x: Self) -> Self
  /// Natural logarithm (libm).
  static func log(_ x: Self) -> Self
  /// sin and cos of `x` (libm).
  static func sinCos(_ x: Double) -> (sin: Self, cos: Self)
  /// max(x[0..<count]), count ≥ 1 (Float: vectorized, `VectorMath`).
  static func maximum(_ x: UnsafePointer<Self>, count: Int) -> Self
  /// x[i] ← e^(x[i] − shift) in place; returns the sum of the new values in Double (Float: vectorized).
  static func expShifted(_ x: UnsafeMutablePointer<Self>, count: Int, shift: Self) -> Double
  /// `expShifted`'s sum bit for bit, x unchanged (a forward that needs only the NLL).
  static func expSum(_ x: UnsafePointer<Self>, count: Int, shift: Self) -> Double
  /// h = silu(g) ⊙ u over `count` values (Float: vectorized).
  static func swigluForward(gate: UnsafePointer<Self>, up: UnsafePointer<Self>, count: Int, output: UnsafeMutablePointer<Self>)
  /// du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(1 + g(1 − σ)); `dGate` may alias `dh` (Float: vectorized).
  static func swigluBackward(
    gate: UnsafePointer<Self>, up: UnsafePointer<Self>, dh: UnsafePointer<Self>, count: Int,
    dGate: UnsafeMutablePointer<Self>, dUp: UnsafeMutablePointer<Self>)
  /// Unit roundoff u = ε/2 (2⁻²⁴ for Float, 2⁻⁵³ for Double); step sizes of finite differences derive from it.
  static var unitRoundoff: Double { get }
}

extension Float: EngineScalar {
  @inlinable public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    BLAS.sgemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
      ldb: ldb, beta: beta, c: c, ldc: ldc)
  }
  @inlinable public static func weightGradient(
    m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, streaming: Bool
  ) {
    BLAS.weightGradient(
      m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, streaming: streaming)
  }
  @inlinable public static func inputGradient(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    BLAS.inputGradient(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
  }
  @inlinable public static func attentionProduct(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if !transposeA, BLAS.attentionProduct(
      transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: accumulate, c: c, ldc: ldc)
    {
      return
    }
    BLAS.sgemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
      beta: accumulate ? 1 : 0, c: c, ldc: ldc)
  }
  @inlinable public static func exp(_ x: Float) -> Float { expf(x) }
  @inlinable public static func log(_ x: Float) -> Float { logf(x) }
  @inlinable public static func sinCos(_ x: Double) -> (sin: Float, cos: Float) { (Float(sin(x)), Float(cos(x))) }
  @inlinable public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    VectorMath.maximum(x, count: count)
  }
  @inlinable public static func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Double {
    VectorMath.expShifted(x, count: count, shift: shift)
  }
  @inlinable public static func expSum(_ x: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
    VectorMath.expSum(x, count: count, shift: shift)
  }
  @inlinable public static func swigluForward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>
  ) {
    VectorMath.swigluForward(gate: gate, up: up, count: count, output: output)
  }
  @inlinable public static func swigluBackward(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dh: UnsafePointer<Float>, count: Int,
    dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>
  ) {
    VectorMath.swigluBackward(gate: gate, up: up, dh: dh, count: count, dGate: dGate, dUp: dUp)
  }
  public static var unitRoundoff: Double { 0x1p-24 }
}

extension Double: EngineScalar {
  @inlinable public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>,
    lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    BLAS.dgemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
      ldb: ldb, beta: beta, c: c, ldc: ldc)
  }
  @inlinable public static func weightGradient(
    m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int, streaming: Bool
  ) {
    BLAS.dgemm(
      transposeA: true, transposeB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
      c: c, ldc: ldc)
  }
  @inlinable public static func inputGradient(
    m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
    c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    BLAS.dgemm(
      transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
      c: c, ldc: ldc)
  }
  @inlinable public static func attentionProduct(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
    b: UnsafePointer<Double>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    BLAS.dgemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
      beta: accumulate ? 1 : 0, c: c, ldc: ldc)
  }
  @inlinable public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
  @inlinable public static func log(_ x: Double) -> Double { Glibc.log(x) }
  @inlinable public static func sinCos(_ x: Double) -> (sin: Double, cos: Double) { (sin(x), cos(x)) }
  public static func maximum(_ x: UnsafePointer<Double>, count: Int) -> Double {
    var m = x[0]
    for j in 1..<count where x[j] > m { m = x[j] }
    return m
  }
  public static func expShifted(_ x: UnsafeMutablePointer<Double>, count: Int, shift: Double) -> Double {
    var sum = 0.0
    for j in 0..<count {
      x[j] = Glibc.exp(x[j] - shift)
      sum += x[j]
    }
    return sum
  }
  public static func expSum(_ x: UnsafePointer<Double>, count: Int, shift: Double) -> Double {
    var sum = 0.0
    for j in 0..<count { sum += Glibc.exp(x[j] - shift) }
    return sum
  }
  public static func swigluForward(
    gate g: UnsafePointer<Double>, up u: UnsafePointer<Double>, count: Int, output h: UnsafeMutablePointer<Double>
  ) {
    for i in 0..<count { h[i] = g[i] / (1 + Glibc.exp(-g[i])) * u[i] }
  }
  public static func swigluBackward(
    gate g: UnsafePointer<Double>, up u: UnsafePointer<Double>, dh: UnsafePointer<Double>, count: Int,
    dGate: UnsafeMutablePointer<Double>, dUp: UnsafeMutablePointer<Double>
  ) {
    for i in 0..<count {
      let sigma = 1 / (1 + Glibc.exp(-g[i])), upstream = dh[i]
      dUp[i] = upstream * g[i] * sigma
      dGate[i] = upstream * u[i] * sigma * (1 + g[i] * (1 - sigma))
    }
  }
  public static var unitRoundoff: Double { 0x1p-53 }
}
