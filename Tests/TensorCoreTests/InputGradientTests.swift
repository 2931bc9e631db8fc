import CKernels
import Testing
import TensorCore
import _TestSupport

/// The input-gradient GEMM C (+)= A · B (CKernels' `bp_sgemm_nn` through `BLAS.sgemmNN` and `BLAS.inputGradient`)
/// against its plain twin bit for bit, and against the Double reference within rounding.
@Suite struct InputGradientTests {
  /// Ragged in every direction: m not a multiple of the tile's rows and past one row block (256), n not of the panel
  /// width and past one block of NC columns, k past one k block (256), not a multiple of the block count, and long
  /// (the LM head's dX sums over the 49152-token vocabulary).
  static let shapes: [(m: Int, n: Int, k: Int)] = [
    (1, 1, 1), (3, 5, 7), (4, 24, 128), (5, 25, 257), (9, 47, 300), (300, 100, 40), (521, 50, 129), (6, 1600, 300),
    (7, 30, 3001),
  ]

  /// A [m, lda] (A = its first k columns), B [k, ldb], C [m, ldc] with seeded values.
  func operands(m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, seed: UInt64) -> ([Float], [Float], [Float]) {
    (randomFloats(m * lda, seed: seed), randomFloats(k * ldb, seed: seed + 1), randomFloats(m * ldc, seed: seed + 2))
  }

  @Test(arguments: [false, true])
  func equalsTheTwinBitForBit(accumulate: Bool) {
    for kernel in PackedWeightsTests.kernels {
      for (i, s) in Self.shapes.enumerated() {
        let (a, b, c0) = operands(m: s.m, n: s.n, k: s.k, lda: s.k, ldb: s.n, ldc: s.n, seed: UInt64(10 * i))
        var twin = c0, fast = c0
        bp_sgemm_nn_reference(s.m, s.n, s.k, 256, a, s.k, b, s.n, accumulate ? 1 : 0, &twin, s.n)
        let rc = bp_sgemm_nn(kernel.rawValue, s.m, s.n, s.k, a, s.k, b, s.n, accumulate ? 1 : 0, &fast, s.n, 0, s.n)
        let differing = zip(fast, twin).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(rc == 0 && differing == 0, "\(kernel) \(s): \(differing) of \(twin.count) differ")
      }
    }
  }

  /// `BLAS.sgemmNN` (the process's kernel, split over the workers by rows or by columns) gives the twin's bits, on
  /// sub-blocks of wider arrays too; without a packed kernel it says so and leaves C as it was.
  @Test func blasEntryPointEqualsTheTwinWithStridesAndSplits() {
    for (i, s) in [(m: 7, n: 30, k: 40), (m: 600, n: 70, k: 128), (m: 96, n: 200, k: 700)].enumerated() {
      let (lda, ldb, ldc) = (s.k + 3, s.n + 5, s.n + 2)
      let (a, b, c0) = operands(m: s.m, n: s.n, k: s.k, lda: lda, ldb: ldb, ldc: ldc, seed: UInt64(100 + i))
      var twin = c0, fast = c0
      bp_sgemm_nn_reference(s.m, s.n, s.k, 256, a, lda, b, ldb, 1, &twin, ldc)
      let ran = fast.withUnsafeMutableBufferPointer {
        BLAS.sgemmNN(m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb, accumulate: true, c: $0.baseAddress!, ldc: ldc)
      }
      if PackedWeights.kernel == .none {
        #expect(!ran && fast == c0, "\(s)")
      } else {
        #expect(ran && zip(fast, twin).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(s)")
      }
    }
  }

  /// Independent of the twin: `BLAS.inputGradient` against the Double three-loop reference, through the packed
  /// kernel (β ∈ {0, 1}, m ≤ 256) and through OpenBLAS (m past 256, or another β).
  @Test(arguments: [(m: 70, beta: Float(0)), (m: 200, beta: 1), (m: 300, beta: 0), (m: 64, beta: 0.25)])
  func inputGradientAgreesWithTheDoubleReference(m: Int, beta: Float) {
    let (n, k) = (33, 500)
    let (a, b, c0) = operands(m: m, n: n, k: k, lda: k, ldb: n, ldc: n, seed: 7)
    var want = c0, got = c0
    want.withUnsafeMutableBufferPointer {
      BLAS.gemmReference(m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: beta, c: $0.baseAddress!, ldc: n)
    }
    got.withUnsafeMutableBufferPointer {
      BLAS.inputGradient(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: beta, c: $0.baseAddress!, ldc: n)
    }
    for i in want.indices { #expect(abs(want[i] - got[i]) <= 1e-5 * Float(k), "i=\(i)") }
  }

  /// β = 0 ignores what C held (NaNs included), as BLAS does; k = 0 gives zeros, or leaves C when accumulating;
  /// columns that do not start at a panel edge, or run past n, are refused and C is left as it was.
  @Test func overwriteEmptySumsAndBadArguments() {
    let (a, b, _) = operands(m: 3, n: 5, k: 10, lda: 10, ldb: 5, ldc: 5, seed: 1)
    var c = [Float](repeating: .nan, count: 15)
    c.withUnsafeMutableBufferPointer {
      BLAS.inputGradient(m: 3, n: 5, k: 10, a: a, lda: 10, b: b, ldb: 5, beta: 0, c: $0.baseAddress!, ldc: 5)
    }
    #expect(c.allSatisfy { $0.isFinite })
    for kernel in PackedWeightsTests.kernels {
      var zeros = [Float](repeating: 2, count: 15), kept = zeros
      #expect(bp_sgemm_nn(kernel.rawValue, 3, 5, 0, a, 10, b, 5, 0, &zeros, 5, 0, 5) == 0)
      #expect(bp_sgemm_nn(kernel.rawValue, 3, 5, 0, a, 10, b, 5, 1, &kept, 5, 0, 5) == 0)
      #expect(zeros == [Float](repeating: 0, count: 15) && kept == [Float](repeating: 2, count: 15), "\(kernel)")
      let ones = [Float](repeating: 1, count: 2 * 60)
      var untouched = [Float](repeating: 7, count: 60)
      #expect(bp_sgemm_nn(kernel.rawValue, 1, 60, 2, ones, 2, ones, 60, 0, &untouched, 60, 1, 60) == -1)
      #expect(bp_sgemm_nn(kernel.rawValue, 1, 60, 2, ones, 2, ones, 60, 0, &untouched, 60, 0, 61) == -1)
      #expect(untouched.allSatisfy { $0 == 7 }, "\(kernel)")
    }
  }
}
