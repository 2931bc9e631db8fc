import CKernels
import Testing
import TensorCore
import _TestSupport

/// The weight-gradient GEMM C (+)= Aᵀ · B (CKernels' `bp_sgemm_tn` through `BLAS.sgemmTN` and
/// `BLAS.weightGradient`) against its plain twin bit for bit, and against the Double reference within rounding.
@Suite struct WeightGradientTests {
  /// Ragged in every direction: m not a multiple of the tile's rows and past one row block (256), n not of the panel
  /// width and past one block of NC = 1536 columns, k past one k block (256) and not a multiple of the block count.
  static let shapes: [(m: Int, n: Int, k: Int)] = [
    (1, 1, 1), (3, 5, 7), (4, 24, 128), (5, 25, 257), (9, 47, 300), (300, 100, 40), (521, 50, 129), (6, 1600, 300),
  ]

  /// A [k, lda] (A = its first m columns), B [k, ldb], C [m, ldc] with seeded values.
  func operands(m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, seed: UInt64) -> ([Float], [Float], [Float]) {
    (randomFloats(k * lda, seed: seed), randomFloats(k * ldb, seed: seed + 1), randomFloats(m * ldc, seed: seed + 2))
  }

  @Test(arguments: [false, true])
  func equalsTheTwinBitForBit(accumulate: Bool) {
    for kernel in PackedWeightsTests.kernels {
      for (i, s) in Self.shapes.enumerated() {
        let (a, b, c0) = operands(m: s.m, n: s.n, k: s.k, lda: s.m, ldb: s.n, ldc: s.n, seed: UInt64(10 * i))
        var twin = c0, fast = c0
        bp_sgemm_tn_reference(s.m, s.n, s.k, 256, a, s.m, b, s.n, accumulate ? 1 : 0, &twin, s.n)
        let rc = bp_sgemm_tn(kernel.rawValue, s.m, s.n, s.k, a, s.m, b, s.n, accumulate ? 1 : 0, &fast, s.n, 0, s.n)
        let differing = zip(fast, twin).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(rc == 0 && differing == 0, "\(kernel) \(s): \(differing) of \(twin.count) differ")
      }
    }
  }

  /// With `BP_GEMM_STREAM` (non-temporal stores of whole tiles) the twin's bits at every offset of C from a cache
  /// line, with row strides that keep each row's offset or move it, and nothing outside C[m, n] written; past one k
  /// block, and with `BP_GEMM_ACCUMULATE`, the flag is ignored.
  @Test func streamedStoresGiveTheTwinsBitsAtEveryAlignment() {
    let shapes: [(m: Int, n: Int, k: Int, ldc: Int)] = [
      (16, 96, 128, 96), (19, 100, 64, 100), (8, 64, 256, 80), (24, 144, 40, 147), (10, 48, 300, 48),
    ]
    for kernel in PackedWeightsTests.kernels {
      for (i, s) in shapes.enumerated() {
        let (a, b, _) = operands(m: s.m, n: s.n, k: s.k, lda: s.m, ldb: s.n, ldc: s.ldc, seed: UInt64(300 + i))
        for accumulate in [false, true] {
          for offset in 0..<16 {
            let count = s.m * s.ldc + 32
            let c0 = randomFloats(count, seed: UInt64(400 + offset))
            var twin = c0
            twin.withUnsafeMutableBufferPointer {
              bp_sgemm_tn_reference(
                s.m, s.n, s.k, 256, a, s.m, b, s.n, accumulate ? 1 : 0, $0.baseAddress! + offset, s.ldc)
            }
            // C at `offset` floats past a 64-byte boundary
            let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
            defer { raw.deallocate() }
            let fast = raw.bindMemory(to: Float.self, capacity: count)
            fast.initialize(from: c0, count: count)
            let flags = Int32(BP_GEMM_STREAM | (accumulate ? BP_GEMM_ACCUMULATE : 0))
            let rc = bp_sgemm_tn(kernel.rawValue, s.m, s.n, s.k, a, s.m, b, s.n, flags, fast + offset, s.ldc, 0, s.n)
            let differing = (0..<count).filter { fast[$0].bitPattern != twin[$0].bitPattern }.count
            #expect(
              rc == 0 && differing == 0, "\(kernel) \(s) offset \(offset) accumulate \(accumulate): \(differing) differ")
          }
        }
      }
    }
  }

  /// `BLAS.sgemmTN` (the process's kernel, split over the workers by rows or by columns) gives the twin's bits, on
  /// sub-blocks of wider arrays too; without a packed kernel it says so and leaves C as it was.
  @Test func blasEntryPointEqualsTheTwinWithStridesAndSplits() {
    for (i, s) in [(m: 7, n: 30, k: 40), (m: 600, n: 70, k: 128), (m: 96, n: 200, k: 256)].enumerated() {
      let (lda, ldb, ldc) = (s.m + 3, s.n + 5, s.n + 2)
      let (a, b, c0) = operands(m: s.m, n: s.n, k: s.k, lda: lda, ldb: ldb, ldc: ldc, seed: UInt64(100 + i))
      var twin = c0, fast = c0
      bp_sgemm_tn_reference(s.m, s.n, s.k, 256, a, lda, b, ldb, 1, &twin, ldc)
      let ran = fast.withUnsafeMutableBufferPointer {
        BLAS.sgemmTN(m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb, accumulate: true, c: $0.baseAddress!, ldc: ldc)
      }
      if PackedWeights.kernel == .none {
        #expect(!ran && fast == c0, "\(s)")
      } else {
        #expect(ran && zip(fast, twin).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(s)")
      }
      // overwriting, streamed: the twin's bits of an overwrite
      var overwritten = c0, streamed = c0
      bp_sgemm_tn_reference(s.m, s.n, s.k, 256, a, lda, b, ldb, 0, &overwritten, ldc)
      let streamedRan = streamed.withUnsafeMutableBufferPointer {
        BLAS.sgemmTN(
          m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb, accumulate: false, c: $0.baseAddress!, ldc: ldc,
          streaming: true)
      }
      let streamedBits = zip(streamed, overwritten).allSatisfy { $0.bitPattern == $1.bitPattern }
      #expect(streamedRan == (PackedWeights.kernel != .none) && (!streamedRan || streamedBits), "\(s) streamed")
    }
  }

  /// Independent of the twin: `BLAS.weightGradient` against the Double three-loop reference, through the packed
  /// kernel (α = 1, β ∈ {0, 1}, k ≤ 256) and through OpenBLAS (k past 256, or another α or β).
  @Test(arguments: [(k: 128, alpha: Float(1), beta: Float(0)), (k: 200, alpha: 1, beta: 1), (k: 300, alpha: 1, beta: 0),
                    (k: 64, alpha: 0.5, beta: 0.25)])
  func weightGradientAgreesWithTheDoubleReference(k: Int, alpha: Float, beta: Float) {
    let (m, n) = (70, 33)
    let (a, b, c0) = operands(m: m, n: n, k: k, lda: m, ldb: n, ldc: n, seed: 7)
    var want = c0, got = c0
    want.withUnsafeMutableBufferPointer {
      BLAS.gemmReference(
        transposeA: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: m, b: b, ldb: n, beta: beta, c: $0.baseAddress!,
        ldc: n)
    }
    got.withUnsafeMutableBufferPointer {
      BLAS.weightGradient(m: m, n: n, k: k, alpha: alpha, a: a, lda: m, b: b, ldb: n, beta: beta, c: $0.baseAddress!, ldc: n)
    }
    for i in want.indices { #expect(abs(want[i] - got[i]) <= 1e-5 * Float(k), "i=\(i)") }
  }

  /// β = 0 ignores what C held (NaNs included), as BLAS does; k = 0 gives zeros, or leaves C when accumulating.
  @Test func overwriteIgnoresOldValuesAndEmptySumsAreZero() {
    let (a, b, _) = operands(m: 3, n: 5, k: 10, lda: 3, ldb: 5, ldc: 5, seed: 1)
    var c = [Float](repeating: .nan, count: 15)
    c.withUnsafeMutableBufferPointer {
      BLAS.weightGradient(m: 3, n: 5, k: 10, alpha: 1, a: a, lda: 3, b: b, ldb: 5, beta: 0, c: $0.baseAddress!, ldc: 5)
    }
    #expect(c.allSatisfy { $0.isFinite })
    for kernel in PackedWeightsTests.kernels {
      var zeros = [Float](repeating: 2, count: 15), kept = zeros
      #expect(bp_sgemm_tn(kernel.rawValue, 3, 5, 0, a, 3, b, 5, 0, &zeros, 5, 0, 5) == 0)
      #expect(bp_sgemm_tn(kernel.rawValue, 3, 5, 0, a, 3, b, 5, 1, &kept, 5, 0, 5) == 0)
      #expect(zeros == [Float](repeating: 0, count: 15) && kept == [Float](repeating: 2, count: 15), "\(kernel)")
    }
  }

  /// Columns that do not start at a panel edge, or run past n, are refused and C is left as it was.
  @Test func badArgumentsAreRefusedNotRun() {
    for kernel in PackedWeightsTests.kernels {
      let a = [Float](repeating: 1, count: 2), b = [Float](repeating: 1, count: 2 * 60)
      var c = [Float](repeating: 7, count: 60)
      #expect(bp_sgemm_tn(kernel.rawValue, 1, 60, 2, a, 1, b, 60, 0, &c, 60, 1, 60) == -1)
      #expect(bp_sgemm_tn(kernel.rawValue, 1, 60, 2, a, 1, b, 60, 0, &c, 60, 0, 61) == -1)
      #expect(c.allSatisfy { $0 == 7 }, "\(kernel)")
    }
  }
}
