import CBLAS

/// Matrix products through OpenBLAS, with a plain reference twin for tests.
///
/// All matrices are row-major. `C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n]`, where `op` transposes
/// when the flag says so. `A` is stored as `[m,k]` (or `[k,m]` when `transposeA`), `B` as `[k,n]` (or `[n,k]`).
public enum BLAS {
  /// Single-precision GEMM (OpenBLAS `cblas_sgemm`).
  /// - Complexity: O(m·n·k).
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    beta: Float = 0, c: UnsafeMutablePointer<Float>
  ) {
    if m == 0 || n == 0 { return }
    let lda = transposeA ? m : k
    let ldb = transposeB ? k : n
    cblas_sgemm(
      CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)), beta, c, Int32(max(n, 1)))
  }

  /// Reference GEMM: Double accumulation, three loops. Slow and obviously right.
  public static func sgemmReference(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    beta: Float = 0, c: UnsafeMutablePointer<Float>
  ) {
    for i in 0..<m {
      for j in 0..<n {
        var sum = 0.0
        for p in 0..<k {
          let av = transposeA ? a[p * m + i] : a[i * k + p]
          let bv = transposeB ? b[j * k + p] : b[p * n + j]
          sum += Double(av) * Double(bv)
        }
        let old = beta == 0 ? 0 : Double(beta) * Double(c[i * n + j])
        c[i * n + j] = Float(Double(alpha) * sum + old)
      }
    }
  }

  /// Single-precision matrix-vector product `y = alpha * op(A) x + beta * y` (OpenBLAS `cblas_sgemv`).
  /// `A` is stored row-major as `[rows, columns]`.
  public static func sgemv(
    transpose: Bool = false, rows: Int, columns: Int, alpha: Float = 1, a: UnsafePointer<Float>,
    x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
  ) {
    if rows == 0 || columns == 0 { return }
    cblas_sgemv(
      CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), alpha, a,
      Int32(columns), x, 1, beta, y, 1)
  }

  /// Sets the number of OpenBLAS threads (0 leaves OpenBLAS' own default).
  public static func setThreads(_ count: Int) {
    if count > 0 { openblas_set_num_threads(Int32(count)) }
  }

  /// The number of threads OpenBLAS uses for one call.
  public static var threads: Int { Int(openblas_get_num_threads()) }
}
