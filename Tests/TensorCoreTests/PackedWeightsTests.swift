import CKernels
import Testing
import TensorCore
import _TestSupport

/// The packed-weight GEMM (CKernels' sgemm_packed.c through `PackedWeights` and `BLAS.sgemm(m:a:lda:packed:…)`)
/// against its plain twin, bit for bit, and against the Double reference within rounding.
@Suite struct PackedWeightsTests {
  /// Every kernel this CPU can run, the AVX-512 texts compiled for AVX2 included (so their indexing is checked on a
  /// CPU without AVX-512; on an AVX-512 CPU `.avx512` and `.avx512N64` themselves run here too).
  static var kernels: [PackedWeights.Kernel] {
    let w: [Float] = [1]
    return [.avx2, .avx512, .wideOnAVX2, .avx512N64, .n64OnAVX2].filter {
      PackedWeights(w, rows: 1, columns: 1, layout: $0) != nil
    }
  }

  /// Shapes with ragged edges in every direction: m not a multiple of the tile's rows, n not of the panel width,
  /// k over one block (256) and not a multiple of the block count; m over one row block (256), once large enough
  /// that `BLAS.sgemm` splits it over the workers by rows (`BLAS.inParts`), the last with a partial tile after a
  /// full block of rows.
  static let shapes: [(m: Int, n: Int, k: Int)] = [
    (1, 1, 1), (3, 5, 7), (4, 24, 256), (5, 25, 257), (9, 47, 300), (17, 49, 513), (128, 192, 576), (300, 100, 40),
    (521, 50, 301), (260, 60, 1100),
  ]

  /// C as the twin computes it (W as stored), and as `BLAS.sgemm(packed:)` does (split over the workers).
  func both(_ kernel: PackedWeights.Kernel, m: Int, n: Int, k: Int, lda: Int, ldc: Int, accumulate: Bool, seed: UInt64)
    -> (packed: [Float], twin: [Float])
  {
    let a = randomFloats(m * lda, seed: seed), w = randomFloats(n * k, seed: seed + 1)
    var twin = randomFloats(m * ldc, seed: seed + 2), packed = twin
    bp_packed_sgemm_reference(m, n, k, 256, a, lda, w, k, accumulate ? 1 : 0, &twin, ldc)
    let weights = PackedWeights(w, rows: n, columns: k, layout: kernel)!
    packed.withUnsafeMutableBufferPointer { c in
      BLAS.sgemm(m: m, a: a, lda: lda, packed: weights, accumulate: accumulate, c: c.baseAddress!, ldc: ldc)
    }
    return (packed, twin)
  }

  @Test func someKernelRunsWhereTheCPUHasAVX2() {
    let features = CPUFeatures.current
    if features.contains([.avx2, .fma, .avx]) {
      #expect(Self.kernels.contains(.avx2) && Self.kernels.contains(.wideOnAVX2) && Self.kernels.contains(.n64OnAVX2))
      #expect(PackedWeights.kernel == (features.contains([.avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl]) ? .avx512 : .avx2)
        || PackedWeights.kernelDescription.contains("BITPLAN_GEMM"))
    } else {
      #expect(Self.kernels.isEmpty)
      #expect(PackedWeights.kernel == .none)
    }
  }

  @Test(arguments: [false, true])
  func equalsTheTwinBitForBit(accumulate: Bool) {
    for kernel in Self.kernels {
      for (i, s) in Self.shapes.enumerated() {
        let (packed, twin) = both(kernel, m: s.m, n: s.n, k: s.k, lda: s.k, ldc: s.n, accumulate: accumulate, seed: UInt64(10 * i))
        let differing = zip(packed, twin).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(kernel) \(s): \(differing) of \(twin.count) differ")
      }
    }
  }

  /// Sub-blocks of wider arrays (the engine passes exact widths, but the API takes strides).
  @Test func stridesAreHonoured() {
    for kernel in Self.kernels {
      let (packed, twin) = both(kernel, m: 7, n: 30, k: 40, lda: 53, ldc: 41, accumulate: true, seed: 99)
      #expect(zip(packed, twin).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(kernel)")
    }
  }

  /// Splitting C's columns differently (as 1, 2 or 3 threads would), or its rows, gives the same bits.
  @Test func theSplitDoesNotChangeTheResult() {
    for kernel in Self.kernels {
      let (m, n, k) = (19, kernel.panelWidth * 5 + 3, 333)
      let a = randomFloats(m * k, seed: 5), w = randomFloats(n * k, seed: 6)
      let weights = PackedWeights(w, rows: n, columns: k, layout: kernel)!
      // each split a list of pieces (rows i0..<i1, columns j0..<j1): columns cut at panel edges as 1, 2 or 3
      // workers would, or rows cut at multiples of 8 (as `BLAS.inParts` cuts them), each with all columns
      let panels = (n + kernel.panelWidth - 1) / kernel.panelWidth
      let columnSplits = (1...3).map { pieces in
        (0..<pieces).map { p in
          (0, m, p * panels / pieces * kernel.panelWidth, min(n, (p + 1) * panels / pieces * kernel.panelWidth))
        }
      }
      let rowSplits = [[0, 8, m], [0, 16, m], [0, 8, 16, m]].map { cuts in zip(cuts, cuts.dropFirst()).map { ($0, $1, 0, n) } }
      var results: [[Float]] = []
      for split in columnSplits + rowSplits {
        var c = [Float](repeating: .nan, count: m * n)
        for (i0, i1, j0, j1) in split {
          let rc = c.withUnsafeMutableBufferPointer { c in
            a.withUnsafeBufferPointer { a in
              weights.withUnsafePanels {
                bp_packed_sgemm(kernel.rawValue, i1 - i0, n, k, a.baseAddress! + i0 * k, k, $0, 0, c.baseAddress! + i0 * n, n, j0, j1)
              }
            }
          }
          #expect(rc == 0)
        }
        results.append(c)
      }
      for r in results.dropFirst() { #expect(zip(r, results[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(kernel)") }
    }
  }

  /// Independent of the twin: the Double three-loop reference, within Float rounding of a k-term sum.
  @Test func agreesWithTheDoubleReference() {
    for kernel in Self.kernels {
      let (m, n, k) = (33, 70, 600)
      let a = randomFloats(m * k, seed: 11), w = randomFloats(n * k, seed: 12)
      var want = [Float](repeating: 0, count: m * n), got = want
      want.withUnsafeMutableBufferPointer {
        BLAS.gemmReference(transposeB: true, m: m, n: n, k: k, a: a, lda: k, b: w, ldb: k, c: $0.baseAddress!, ldc: n)
      }
      let weights = PackedWeights(w, rows: n, columns: k, layout: kernel)!
      got.withUnsafeMutableBufferPointer { BLAS.sgemm(m: m, a: a, lda: k, packed: weights, accumulate: false, c: $0.baseAddress!, ldc: n) }
      for i in want.indices { #expect(abs(want[i] - got[i]) <= 1e-5 * Float(k), "\(kernel) i=\(i)") }
    }
  }

  /// Overwriting ignores what C held (NaNs included), as BLAS's beta = 0 does; k = 0 gives zeros or leaves C.
  @Test func overwriteIgnoresOldValuesAndEmptySumsAreZero() {
    for kernel in Self.kernels {
      let a = randomFloats(3 * 10, seed: 1), w = randomFloats(5 * 10, seed: 2)
      let weights = PackedWeights(w, rows: 5, columns: 10, layout: kernel)!
      var c = [Float](repeating: .nan, count: 15)
      c.withUnsafeMutableBufferPointer { BLAS.sgemm(m: 3, a: a, lda: 10, packed: weights, accumulate: false, c: $0.baseAddress!, ldc: 5) }
      #expect(c.allSatisfy { $0.isFinite })
      let empty = PackedWeights([Float](), rows: 5, columns: 0, layout: kernel)!
      var d = [Float](repeating: 2, count: 15), e = d
      d.withUnsafeMutableBufferPointer { BLAS.sgemm(m: 3, a: a, lda: 0, packed: empty, accumulate: false, c: $0.baseAddress!, ldc: 5) }
      e.withUnsafeMutableBufferPointer { BLAS.sgemm(m: 3, a: a, lda: 0, packed: empty, accumulate: true, c: $0.baseAddress!, ldc: 5) }
      #expect(d == [Float](repeating: 0, count: 15) && e == [Float](repeating: 2, count: 15))
    }
  }

  @Test func badArgumentsAreRefusedNotRun() {
    for kernel in Self.kernels {
      let a: [Float] = [1, 2], w: [Float] = [Float](repeating: 1, count: 2 * 60)
      let weights = PackedWeights(w, rows: 60, columns: 2, layout: kernel)!
      var c = [Float](repeating: 7, count: 60)
      let misaligned = c.withUnsafeMutableBufferPointer { c in
        weights.withUnsafePanels { bp_packed_sgemm(kernel.rawValue, 1, 60, 2, a, 2, $0, 0, c.baseAddress!, 60, 1, 60) }
      }
      let pastEnd = c.withUnsafeMutableBufferPointer { c in
        weights.withUnsafePanels { bp_packed_sgemm(kernel.rawValue, 1, 60, 2, a, 2, $0, 0, c.baseAddress!, 60, 0, 61) }
      }
      #expect(misaligned == -1 && pastEnd == -1 && c == [Float](repeating: 7, count: 60))
    }
    #expect(bp_packed_sgemm(Int32(BP_PACKED_NONE), 1, 1, 1, [1], 1, [1], 0, nil, 1, 0, 1) == -1)
  }

  @Test func sizeIsWholePanels() {
    for kernel in Self.kernels {
      let w = [Float](repeating: 1, count: 50 * 3)
      let packed = PackedWeights(w, rows: 50, columns: 3, layout: kernel)!
      let panels = (50 + kernel.panelWidth - 1) / kernel.panelWidth
      #expect(packed.byteCount == panels * kernel.panelWidth * 3 * 4)
    }
  }
}

extension PackedWeightsTests {
  /// W as stored, each panel packed just before its sweep (`BLAS.sgemm(…weights:…)`): the bits of packing first.
  @Test func panelAtATimeEqualsPackedFirst() {
    guard PackedWeights.kernel != .none else {
      var c: [Float] = [3]
      #expect(!BLAS.sgemm(m: 1, a: [1], lda: 1, weights: [2], rows: 1, columns: 1, ldw: 1, accumulate: false, c: &c, ldc: 1))
      #expect(c == [3])
      return
    }
    for (i, s) in Self.shapes.enumerated() {
      for accumulate in [false, true] {
        let a = randomFloats(s.m * s.k, seed: UInt64(i)), w = randomFloats(s.n * (s.k + 3), seed: UInt64(i) + 50)
        var rows = randomFloats(s.m * s.n, seed: 7), first = rows
        // W with a row stride of k + 3: the product reads its first k columns
        #expect(BLAS.sgemm(m: s.m, a: a, lda: s.k, weights: w, rows: s.n, columns: s.k, ldw: s.k + 3, accumulate: accumulate, c: &rows, ldc: s.n))
        let dense = (0..<s.n).flatMap { r in w[(r * (s.k + 3))..<(r * (s.k + 3) + s.k)] }
        let packed = PackedWeights(dense, rows: s.n, columns: s.k)!
        first.withUnsafeMutableBufferPointer { BLAS.sgemm(m: s.m, a: a, lda: s.k, packed: packed, accumulate: accumulate, c: $0.baseAddress!, ldc: s.n) }
        #expect(zip(rows, first).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(s) accumulate \(accumulate)")
      }
    }
  }

  /// A k so long that the panel-at-a-time variant cannot pack a partial tile's k blocks first (8 · k floats past its
  /// buffer), so it runs k block by k block: still the twin's bits.
  @Test func panelAtATimeWithTooManyKBlocksForItsBuffer() {
    let (m, n, k) = (9, 50, 40_000)
    let a = randomFloats(m * k, seed: 3), w = randomFloats(n * k, seed: 4)
    for accumulate in [false, true] {
      var fast = randomFloats(m * n, seed: 5), twin = fast
      let ran = BLAS.sgemm(m: m, a: a, lda: k, weights: w, rows: n, columns: k, ldw: k, accumulate: accumulate, c: &fast, ldc: n)
      bp_packed_sgemm_reference(m, n, k, Int(BP_PACKED_KC), a, k, w, k, accumulate ? 1 : 0, &twin, n)
      #expect(!ran || zip(fast, twin).allSatisfy { $0.bitPattern == $1.bitPattern }, "accumulate \(accumulate)")
    }
  }
}
