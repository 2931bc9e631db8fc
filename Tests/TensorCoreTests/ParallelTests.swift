import Testing
import TensorCore
import _TestSupport

@Suite struct ParallelTests {
  @Test func forEachChunkCoversEveryIndexOnce() {
    for count in [0, 1, 7, 1 << 17] {
      var hits = [Int](repeating: 0, count: count)
      hits.withUnsafeMutableBufferPointer { h in
        Parallel.forEachChunk(count, minimumWork: 1) { range in for i in range { h[i] += 1 } }
      }
      #expect(hits.allSatisfy { $0 == 1 }, "count \(count)")
    }
  }

  @Test func forEachRunsEveryTaskOnce() {
    var hits = [Int](repeating: 0, count: 37)
    hits.withUnsafeMutableBufferPointer { h in Parallel.forEach(37) { h[$0] += 1 } }
    #expect(hits.allSatisfy { $0 == 1 })
  }

  /// Many short jobs back to back, of varying task counts (the pool's hand-off: each job's tasks are claimed by
  /// the caller and the pool's threads): every task of every job runs exactly once, with its own job's closure.
  @Test func backToBackJobsRunEveryTaskOnceWithTheirOwnBody() {
    var wrong = 0
    var hits = [Int32](repeating: 0, count: 64)
    for job in 0..<20_000 {
      let tasks = 1 + (job &* 2_654_435_761 >> 7) % 37
      hits.withUnsafeMutableBufferPointer { h in
        for i in 0..<h.count { h[i] = 0 }
        Parallel.forEach(tasks) { i in
          h[i] += Int32(job % 5 + 1)  // each task touches its own element
        }
      }
      if !hits.enumerated().allSatisfy({ $1 == ($0 < tasks ? Int32(job % 5 + 1) : 0) }) { wrong += 1 }
    }
    #expect(wrong == 0)
  }

  /// Two threads splitting work at once: one gets the pool, the other splits through libdispatch; both finish with
  /// every index covered once.
  @Test func concurrentCallersBothFinish() async {
    func run() -> Bool {
      var ok = true
      for _ in 0..<2_000 {
        var hits = [UInt8](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { h in
          Parallel.forEachChunk(1000, minimumWork: 1) { range in for i in range { h[i] &+= 1 } }
        }
        ok = ok && hits.allSatisfy { $0 == 1 }
      }
      return ok
    }
    async let first = Task.detached { run() }.value
    async let second = Task.detached { run() }.value
    let (a, b) = await (first, second)
    #expect(a && b)
  }

  /// Only meaningful with more than one worker (with one, nothing is ever split).
  @Test(.enabled(if: Parallel.workers > 1)) func nestedWorkRunsSeriallyInsideATask() {
    #expect(!Parallel.isInsideWorker)
    var inner = [Bool](repeating: false, count: 8)
    inner.withUnsafeMutableBufferPointer { inner in
      Parallel.forEach(8) { i in
        // a nested split runs on this task's own thread, as one chunk
        var chunks = 0
        Parallel.forEachChunk(1 << 20, minimumWork: 1) { _ in chunks += 1 }
        inner[i] = Parallel.isInsideWorker && chunks == 1
      }
    }
    #expect(inner.allSatisfy { $0 })
    #expect(!Parallel.isInsideWorker)
    #expect(Parallel.asWorker { Parallel.isInsideWorker })
    #expect(!Parallel.isInsideWorker)
  }

  /// Each of the two runs once; with exactly two workers each runs as a worker task (its own splits then serial),
  /// otherwise one after the other on the caller, free to split; inside a worker task, one after the other.
  @Test func sideBySideRunsEachOnceAsAWorkerTaskWhenThereAreTwoWorkers() {
    // each piece writes its own element, through a pointer (two threads must not mutate one array value)
    var (runs, inside) = ([0, 0], [false, false])
    runs.withUnsafeMutableBufferPointer { runs in
      inside.withUnsafeMutableBufferPointer { inside in
        Parallel.sideBySide(
          { runs[0] += 1; inside[0] = Parallel.isInsideWorker }, { runs[1] += 1; inside[1] = Parallel.isInsideWorker })
      }
    }
    #expect(runs == [1, 1])
    #expect(inside == [Parallel.workers == 2, Parallel.workers == 2])
    #expect(!Parallel.isInsideWorker)
    var order: [Int] = []
    Parallel.asWorker { Parallel.sideBySide({ order.append(0) }, { order.append(1) }) }
    #expect(order == [0, 1])
  }

  /// Products above `BLAS.minimumParallelFlops` are cut into panels (columns when n ≥ m, rows otherwise, at
  /// multiples of 16); each panel must see the right sub-blocks of A, B and C for every transpose, with leading
  /// dimensions wider than the matrices and sizes that are not multiples of 16. In Double against the three-loop
  /// reference: the only difference is summation order, ~k·2⁻⁵³ relative.
  @Test(arguments: [false, true], [false, true])
  func splitGEMMMatchesReference(transposeA: Bool, transposeB: Bool) {
    for (m, n, k) in [(40, 203, 600), (301, 35, 450), (97, 97, 1001)] {
      #expect(2 * m * n * k >= BLAS.minimumParallelFlops)
      let pad = 3
      let (rowsA, colsA) = transposeA ? (k, m) : (m, k)
      let (rowsB, colsB) = transposeB ? (n, k) : (k, n)
      let (lda, ldb, ldc) = (colsA + pad, colsB + pad, n + pad)
      let a = randomFloats(rowsA * lda, seed: 4).map(Double.init), b = randomFloats(rowsB * ldb, seed: 5).map(Double.init)
      var want = randomFloats(m * ldc, seed: 6).map(Double.init), got = want
      want.withUnsafeMutableBufferPointer { w in
        BLAS.gemmReference(
          transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b,
          ldb: ldb, beta: 2, c: w.baseAddress!, ldc: ldc)
      }
      got.withUnsafeMutableBufferPointer { g in
        BLAS.dgemm(
          transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b,
          ldb: ldb, beta: 2, c: g.baseAddress!, ldc: ldc)
      }
      let worst = zip(want, got).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-13 * Double(k), "m=\(m) n=\(n) k=\(k): \(worst)")
    }
  }

  /// Same shapes in Float: the split path against the reference within the Float bound of `BLASTests`.
  @Test func splitSGEMMMatchesReference() {
    let (m, n, k) = (33, 250, 700)
    let a = randomFloats(m * k, seed: 7), b = randomFloats(n * k, seed: 8)
    var want = [Float](repeating: 0, count: m * n), got = want
    want.withUnsafeMutableBufferPointer { w in
      BLAS.sgemmReference(transposeB: true, m: m, n: n, k: k, a: a, b: b, c: w.baseAddress!)
    }
    got.withUnsafeMutableBufferPointer { g in BLAS.sgemm(transposeB: true, m: m, n: n, k: k, a: a, b: b, c: g.baseAddress!) }
    for i in want.indices { #expect(abs(want[i] - got[i]) <= 1e-5 * Float(k), "i=\(i)") }
  }
}
