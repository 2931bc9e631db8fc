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
/// heavy work dispatches here to OpenBLAS (`sgemm`/`dgemm`); element-wise maths goes to libm (`expf`/`exp`). The
/// public entry points of `LlamaModel` carry `@specialized(where Scalar == Float)` (SE-0460), so in a release
/// build the Float path is a fully specialized clone with no witness-table calls in the inner loops (measured:
/// the unspecialized generic loop is ~150x slower).
public protocol EngineScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
  /// Strided GEMM, row-major: `C[m,n] = alpha·op(A)·op(B) + beta·C`; see `BLAS.sgemm(...lda:...)`.
  static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
    b: UnsafePointer<Self>, ldb: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  /// eˣ (libm).
  static func exp(_ x: Self) -> Self
  /// Natural logarithm (libm).
  static func log(_ x: Self) -> Self
  /// sin and cos of `x` (libm).
  static func sinCos(_ x: Double) -> (sin: Self, cos: Self)
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
  @inlinable public static func exp(_ x: Float) -> Float { expf(x) }
  @inlinable public static func log(_ x: Float) -> Float { logf(x) }
  @inlinable public static func sinCos(_ x: Double) -> (sin: Float, cos: Float) { (Float(sin(x)), Float(cos(x))) }
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
  @inlinable public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
  @inlinable public static func log(_ x: Double) -> Double { Glibc.log(x) }
  @inlinable public static func sinCos(_ x: Double) -> (sin: Double, cos: Double) { (sin(x), cos(x)) }
  public static var unitRoundoff: Double { 0x1p-53 }
}
