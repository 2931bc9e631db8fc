import CBLAS

/// GEMMs with explicit leading dimensions, in single and double precision, split over `Parallel.workers`.
///
/// Same convention as `BLAS.sgemm`: row-major, `C[m,n] = alpha·op(A)[m,k]·op(B)[k,n] + beta·C[m,n]`, but each matrix
/// may be a sub-block of a wider row-major array: row `i` of `A` starts at `a + i·lda` (for `A` as stored, i.e.
/// `[m,k]`, or `[k,m]` when `transposeA`). This lets attention read one head's `[T, headDim]` slice of a
/// `[T, heads·headDim]` activation in place, without copying it out.
extension BLAS {
  /// Single-precision GEMM on strided sub-blocks (OpenBLAS `cblas_sgemm`).
  /// - Precondition: `lda`, `ldb`, `ldc` are at least the stored row lengths.
  /// - Complexity: O(m·n·k).
  public static func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    let (ta, tb) = (transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans)
    forEachPanel(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc
    ) { rows, columns, a, b, c in
      cblas_sgemm(
        CblasRowMajor, ta, tb, rows, columns, Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
  }

  /// Double-precision GEMM on strided sub-blocks (OpenBLAS `cblas_dgemm`).
  /// - Complexity: O(m·n·k).
  public static func dgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Double = 1, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    let (ta, tb) = (transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans)
    forEachPanel(
      transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc
    ) { rows, columns, a, b, c in
      cblas_dgemm(
        CblasRowMajor, ta, tb, rows, columns, Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
  }

  /// Reference for both strided GEMMs: three loops, Double accumulation. Slow and obviously right.
  /// `beta == 0` overwrites `C` without reading it (BLAS semantics: NaNs in `C` do not propagate).
  public static func gemmReference<S: BinaryFloatingPoint>(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
    alpha: S = 1, a: UnsafePointer<S>, lda: Int, b: UnsafePointer<S>, ldb: Int,
    beta: S = 0, c: UnsafeMutablePointer<S>, ldc: Int
  ) {
    for i in 0..<m {
      for j in 0..<n {
        var sum = 0.0
        for p in 0..<k {
          // A: [m,k] with row stride lda, or [k,m] when transposed; B likewise with [k,n] / [n,k].
          let av = transposeA ? a[p * lda + i] : a[i * lda + p]
          let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
          sum += Double(av) * Double(bv)
        }
        let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
        c[i * ldc + j] = S(Double(alpha) * sum + old)
      }
    }
  }

  /// GEMMs of at least this many flops (2·m·n·k) are split over the workers: ~80 µs of one core, against ~10 µs
  /// to hand work to another thread.
  public static var minimumParallelFlops: Int { 1 << 23 }

  /// Checks the leading dimensions, then calls `gemm(rows, columns, A, B, C)` once per panel of C (`inPanels`) with
  /// the panel's sub-blocks of A, B and C (nothing for an empty C). The one place both precisions cut a product.
  static func forEachPanel<S>(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<S>, lda: Int,
    b: UnsafePointer<S>, ldb: Int, c: UnsafeMutablePointer<S>, ldc: Int,
    _ gemm: (Int32, Int32, UnsafePointer<S>, UnsafePointer<S>, UnsafeMutablePointer<S>) -> Void
  ) {
    if m == 0 || n == 0 { return }
    checkLeadingDimensions(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
    inPanels(m: m, n: n, k: k) { rows, columns in
      let (i, j) = (rows.lowerBound, columns.lowerBound)
      gemm(
        Int32(rows.count), Int32(columns.count), transposeA ? a + i : a + i * lda, transposeB ? b + j * ldb : b + j,
        c + i * ldc + j)
    }
  }

  /// Runs `part(rows, columns)` over panels that tile C[m, n]: one panel on the calling thread for a small product,
  /// a single worker or a call from inside a worker task (`Parallel.isInsideWorker`); otherwise the longer of m and n cut into `Parallel.workers` pieces at multiples of 16 (the
  /// OpenBLAS kernels' register tile), one concurrent single-threaded OpenBLAS call each.
  static func inPanels(m: Int, n: Int, k: Int, _ part: (Range<Int>, Range<Int>) -> Void) {
    _ = openBLASSingleThreaded
    let long = max(m, n)
    let pieces = min(Parallel.workers, long / 16)
    guard pieces > 1, 2 * m * n * k >= minimumParallelFlops, !Parallel.isInsideWorker else {
      part(0..<m, 0..<n)
      return
    }
    let bounds = (0...pieces).map { $0 == pieces ? long : ($0 * long / pieces) / 16 * 16 }
    Parallel.forEach(pieces) { p in
      let cut = bounds[p]..<bounds[p + 1]
      if n >= m { part(0..<m, cut) } else { part(cut, 0..<n) }
    }
  }

  /// OpenBLAS is told once, before the first product, to use one thread per call (see `Parallel`).
  static let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

  private static func checkLeadingDimensions(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
  ) {
    let (rowA, rowB) = (transposeA ? m : k, transposeB ? k : n)
    precondition(
      lda >= max(rowA, 1) && ldb >= max(rowB, 1) && ldc >= max(n, 1),
      "leading dimensions lda=\(lda) ldb=\(ldb) ldc=\(ldc) too small for m=\(m) n=\(n) k=\(k)")
    precondition(
      m < Int(Int32.max) && n < Int(Int32.max) && k < Int(Int32.max) && lda < Int(Int32.max)
        && ldb < Int(Int32.max) && ldc < Int(Int32.max), "GEMM dimension exceeds Int32 range")
  }
}
