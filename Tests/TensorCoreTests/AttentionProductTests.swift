import CKernels
import Testing
import TensorCore
import _TestSupport

/// Attention's products (`BLAS.attentionProduct`: A · Bᵀ and A · B on the calling thread) on every kernel this CPU
/// runs, against the plain twins bit for bit and the Double reference within rounding, on sub-blocks of wider arrays
/// as `CausalAttention` passes them (one head's columns of q, k, v; a block of P).
@Suite struct AttentionProductTests {
  /// (m, n, k): a 64-row block against 64 · b keys, the head dimension as n, k past one k block (256) and ragged
  /// shapes (m not a multiple of 6 or 8, n not of the panel width).
  static let shapes: [(m: Int, n: Int, k: Int)] = [
    (64, 64, 64), (64, 512, 64), (64, 64, 512), (64, 64, 320), (7, 130, 33), (1, 1, 1), (13, 70, 257),
  ]

  /// The twin of a form: A · Bᵀ is `bp_packed_sgemm_reference` with B as W, A · B `bp_sgemm_nn_reference`.
  func twin(
    _ tB: Bool, _ s: (m: Int, n: Int, k: Int), _ a: [Float], _ lda: Int, _ b: [Float], _ ldb: Int, _ add: Bool,
    _ c: inout [Float], _ ldc: Int
  ) {
    let acc: Int32 = add ? 1 : 0
    if tB {
      bp_packed_sgemm_reference(s.m, s.n, s.k, 256, a, lda, b, ldb, acc, &c, ldc)
    } else {
      bp_sgemm_nn_reference(s.m, s.n, s.k, 256, a, lda, b, ldb, acc, &c, ldc)
    }
  }

  @Test(arguments: [true, false])
  func equalsTheTwinAndTheReference(transposeB: Bool) {
    for kernel in PackedWeightsTests.kernels {
      for (i, s) in Self.shapes.enumerated() {
        for accumulate in [false, true] {
          // stored shapes: A [m, k]; B [n, k] or [k, n]; every row 3 to 7 floats wider than it needs
          let (aRows, aCols) = (s.m, s.k)
          let (bRows, bCols) = transposeB ? (s.n, s.k) : (s.k, s.n)
          let (lda, ldb, ldc) = (aCols + 3, bCols + 5, s.n + 7)
          let a = randomFloats(aRows * lda, seed: UInt64(100 * i + 1))
          let b = randomFloats(bRows * ldb, seed: UInt64(100 * i + 2))
          let c0 = randomFloats(s.m * ldc, seed: UInt64(100 * i + 3))
          var fast = c0, plain = c0, double = c0
          let ran = BLAS.attentionProduct(
            kernel: kernel, transposeB: transposeB, m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb,
            accumulate: accumulate, c: &fast, ldc: ldc)
          twin(transposeB, s, a, lda, b, ldb, accumulate, &plain, ldc)
          double.withUnsafeMutableBufferPointer {
            BLAS.gemmReference(
              transposeB: transposeB, m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb,
              beta: accumulate ? 1 : 0, c: $0.baseAddress!, ldc: ldc)
          }
          let differing = zip(fast, plain).filter { $0.bitPattern != $1.bitPattern }.count
          #expect(ran && differing == 0, "\(kernel) \(s) acc \(accumulate): \(differing) of \(fast.count) differ")
          let worst = zip(fast, double).map { abs($0 - $1) }.max() ?? 0
          #expect(worst <= 2e-6 * Float(s.k + 2), "\(kernel) \(s): \(worst)")
          // columns past n in each row of C are left alone
          for r in 0..<s.m { #expect(fast[(r * ldc + s.n)..<(r * ldc + ldc)] == c0[(r * ldc + s.n)..<(r * ldc + ldc)]) }
        }
      }
    }
  }

  /// The `.none` kernel is refused with C untouched (the caller then uses `sgemm`); the process's kernel is the
  /// 6 × 64 one exactly where the forward's kernel is AVX-512.
  @Test func refusesWithoutAKernelAndPicksByTheForwardKernel() {
    let a = randomFloats(16, seed: 1), b = randomFloats(16, seed: 2)
    var c = [Float](repeating: 7, count: 16)
    for transposeB in [false, true] {
      #expect(!BLAS.attentionProduct(
        kernel: .none, transposeB: transposeB, m: 4, n: 4, k: 4, a: a, lda: 4, b: b, ldb: 4, accumulate: false, c: &c,
        ldc: 4))
    }
    #expect(c == [Float](repeating: 7, count: 16))
    #expect(PackedWeights.attentionKernel == (PackedWeights.kernel == .avx512 ? .avx512N64 : .none))
  }
}
