import CBLAS

/// Matrix products through OpenBLAS, with a plain reference twin for tests.
///
/// All matrices are row-major. `C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n]`, where `op` transposes
/// when the flag says so. `A` is stored as `[m,k]` (or `[k,m]` when `transposeA`), `B` as `[k,n]` (or `[n,k]`).
public enum BLAS {
  /// Single-precision GEMM (OpenBLAS `cblas_sgemm`, split over `Parallel.workers` as the strided form).
  /// - Complexity: O(m·n·k).
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    beta: Float = 0, c: UnsafeMutablePointer<Float>
  ) {
    if m == 0 || n == 0 { return }
    sgemm(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
      lda: max(transposeA ? m : k, 1), b: b, ldb: max(transposeB ? k : n, 1), beta: beta, c: c, ldc: max(n, 1))
  }

  /// Reference GEMM: Double accumulation, three loops (`gemmReference` with packed leading dimensions).
  public static func sgemmReference(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    beta: Float = 0, c: UnsafeMutablePointer<Float>
  ) {
    gemmReference(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a,
      lda: transposeA ? m : k, b: b, ldb: transposeB ? k : n, beta: beta, c: c, ldc: n)
  }

  /// Single-precision matrix-vector product `y = alpha * op(A) x + beta * y` (OpenBLAS `cblas_sgemv`, one thread).
  /// `A` is stored row-major as `[rows, columns]`.
  public static func sgemv(
    transpose: Bool = false, rows: Int, columns: Int, alpha: Float = 1, a: UnsafePointer<Float>,
    x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
  ) {
    if rows == 0 || columns == 0 { return }
    _ = openBLASSingleThreaded
    cblas_sgemv(
      CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), alpha, a,
      Int32(columns), x, 1, beta, y, 1)
  }
}
