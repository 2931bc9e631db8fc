import Sensitivity
import Testing
import _TestSupport

@Suite struct HutchinsonTraceTests {
  let sizes = [5, 12, 30, 7, 20]

  func settings(tol: Double = 0, minimum: Int = 4, maximum: Int, diagonal: Bool = false) -> HutchinsonTrace.Settings {
    .init(relativeTolerance: tol, minimumProbes: minimum, maximumProbes: maximum, keepsDiagonal: diagonal)
  }

  /// Coverage: 40 seeds × 5 blocks, 32 probes each. The studentized error of a mean of 32 samples with a sample
  /// standard error is t-distributed with 31 degrees of freedom, P(|t| > 3) ≈ 0.5 %, so ≥ 95 % must lie within
  /// 3 SE; a biased estimator or a too small standard error fails by a wide margin. A too large standard error
  /// would pass that, so the fraction within 1 SE must also be near P(|t₃₁| < 1) ≈ 0.675: within ±0.13, four
  /// binomial standard deviations √(0.675·0.325/200) ≈ 0.033.
  @Test func coverageAcrossSeeds() throws {
    let form = QuadraticForm(sizes: sizes, seed: 7)
    let exact = form.exactTraces
    var inside = 0
    var insideOne = 0
    var total = 0
    for seed in UInt64(1)...40 {
      var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 32), seed: seed)
      try h.run(hessianVectorProduct: form.product)
      for (e, t) in zip(h.estimates, exact) {
        total += 1
        if abs(e.mean - t) <= 3 * e.standardError { inside += 1 }
        if abs(e.mean - t) <= e.standardError { insideOne += 1 }
      }
    }
    #expect(Double(inside) >= 0.95 * Double(total), "\(inside) of \(total) within 3 SE")
    #expect(abs(Double(insideOne) / Double(total) - 0.675) <= 0.13, "\(insideOne) of \(total) within 1 SE")
  }

  /// Convergence: with 2000 probes the mean is within 4 theoretical standard errors √(Var/K) of the exact trace
  /// (a 4σ band fails by chance with probability 6e-5 per block), and the sample variance of the probe values is
  /// within 15 % of the exact probe variance (its relative standard deviation at K = 2000 is about √(2/K)·√κ ≈ 5 %).
  @Test func meanConvergesToExactTrace() throws {
    let form = QuadraticForm(sizes: sizes, seed: 11)
    let probes = 2000
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: probes), seed: 3)
    try h.run(hessianVectorProduct: form.product)
    for (i, (e, t)) in zip(h.estimates, form.exactTraces).enumerated() {
      let sigma = (form.probeVariances[i] / Double(probes)).squareRoot()
      #expect(abs(e.mean - t) <= 4 * sigma, "block \(i): \(e.mean) vs \(t), σ \(sigma)")
      let sampleVariance = e.standardError * e.standardError * Double(probes)
      #expect(abs(sampleVariance / form.probeVariances[i] - 1) < 0.15, "block \(i) variance")
    }
  }

  /// Welford's running mean and standard error agree with the two-pass reference; reassociation costs a few ulps.
  @Test func runningMomentsMatchReference() throws {
    let form = QuadraticForm(sizes: sizes, seed: 5)
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 50), seed: 9)
    try h.run(hessianVectorProduct: form.product)
    for e in h.estimates {
      let (mean, se) = RunningMoments.reference(e.samples)
      let scale = e.samples.map(abs).max()!
      #expect(abs(mean - e.mean) <= 1e-12 * scale)
      #expect(abs(se - e.standardError) <= 1e-12 * scale)
    }
  }

  @Test func stopsAtToleranceAfterMinimumProbes() throws {
    let form = QuadraticForm(sizes: sizes, seed: 7, diagonalShift: 3)
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(tol: 0.1, minimum: 6, maximum: 500), seed: 1)
    try h.run(hessianVectorProduct: form.product)
    #expect(h.probesDone >= 6 && h.probesDone < 500)
    #expect(h.estimates.allSatisfy { $0.converged && $0.relativeStandardError < 0.1 })
    // One probe fewer did not meet the rule: the run stopped at the first probe count that did.
    var shorter = try HutchinsonTrace(
      blocks: form.blocks, settings: settings(tol: 0.1, minimum: 6, maximum: 500), seed: 1)
    for values in h.samples.dropLast() { try shorter.replay(values: values) }
    #expect(!shorter.isFinished || h.probesDone == 6)
  }

  @Test func runsExactlyMaximumProbesWithZeroTolerance() throws {
    let form = QuadraticForm(sizes: sizes, seed: 7)
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 9), seed: 1)
    try h.run(hessianVectorProduct: form.product)
    #expect(h.probesDone == 9)
    #expect(h.estimates.allSatisfy { !$0.converged })
  }

  /// Probe k depends only on (seed, k); replaying stored values reproduces the estimates bit for bit.
  @Test func probesRegenerateAndReplayIsExact() throws {
    let form = QuadraticForm(sizes: sizes, seed: 7)
    var a = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 12), seed: 42)
    try a.run(hessianVectorProduct: form.product)
    let b = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 12), seed: 42)
    #expect(a.probe(7) == b.probe(7))
    #expect(a.probe(7) != a.probe(8))
    #expect(a.probe(7).allSatisfy { $0.allSatisfy { $0 == 1 || $0 == -1 } })
    var c = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: 12), seed: 42)
    for values in a.samples.prefix(5) { try c.replay(values: values) }
    try c.run(hessianVectorProduct: form.product)
    #expect(c.estimates == a.estimates)
  }

  /// The diagonal estimate mean(v ⊙ Av) converges to diag(A): each element's error has standard deviation
  /// √(Σ_{k≠j} A_jk² / K); with K = 1500 all 74 elements lie within 4.5 of those (chance failure < 1e-3).
  @Test func diagonalConverges() throws {
    let form = QuadraticForm(sizes: sizes, seed: 13)
    let probes = 1500
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(maximum: probes, diagonal: true), seed: 2)
    try h.run(hessianVectorProduct: form.product)
    let diagonal = h.diagonal!.flatMap { $0 }
    for j in 0..<form.size {
      var offSquares = 0.0
      for k in 0..<form.size where k != j { offSquares += form.a[j * form.size + k] * form.a[j * form.size + k] }
      let sigma = (offSquares / Double(probes)).squareRoot()
      #expect(abs(diagonal[j] - form.a[j * form.size + j]) <= 4.5 * sigma, "element \(j)")
    }
  }

  /// `probe(k)` fills words in parallel from SplitMix64's counter; it must equal drawing the stream in order, one
  /// fresh word per block (`ProbeStream.fillRademacher(_:)`, the reference), for blocks that are not multiples of
  /// 64 and large enough to be split over the workers.
  @Test func probeEqualsSequentialStream() throws {
    let blocks = [5, 70_000, 130, 200_001].enumerated().map { HutchinsonTrace.Block(name: "b\($0.offset)", count: $0.element) }
    let h = try HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3), seed: 9)
    var stream = ProbeStream(seed: 9, domain: .hutchinson, index: 2)
    let want = blocks.map { b in
      var v = [Float](repeating: 0, count: b.count)
      stream.fillRademacher(&v)
      return v
    }
    #expect(h.probe(2) == want)
    var reused = h.probe(1)
    h.streamedProbe(2).dense(into: &reused)
    #expect(reused == want)
  }

  /// A block regenerated alone (`streamedProbe(k).fill`), or any range of it, is the probe's block, and `probeDot` of a vector with it is bit for
  /// bit `accumulate` of the written signs with that vector (the same additions in the same order), for blocks that
  /// end inside a draw, span several 2¹⁶ chunks, or are shorter than one group of 8.
  @Test func regeneratedBlocksAndDotsEqualTheProbe() throws {
    let blocks = [5, 70_000, 130, 200_001, 64, 8].enumerated().map { HutchinsonTrace.Block(name: "b\($0.offset)", count: $0.element) }
    let h = try HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3), seed: 9)
    let words = h.firstWords
    for k in [0, 2] {
      let v = h.probe(k), probe = h.streamedProbe(k)
      for b in blocks.indices {
        var alone = [Float](repeating: 0, count: blocks[b].count)
        alone.withUnsafeMutableBufferPointer { probe.fill(block: b, into: $0) }
        #expect(alone == v[b], "probe \(k) block \(b)")
        // any range of it alone, starting on a draw or inside one (the table's rows, a chunk at a time)
        for (offset, count) in [(0, blocks[b].count), (64, 3), (7, 1), (63, 130), (blocks[b].count - 1, 1), (blocks[b].count / 3, blocks[b].count / 2)]
        where offset + count <= blocks[b].count && count > 0 {
          var part = [Float](repeating: 0, count: count)
          part.withUnsafeMutableBufferPointer { probe.fill(block: b, offset: offset, into: $0) }
          #expect(part[...] == v[b][offset..<offset + count], "probe \(k) block \(b) values \(offset)+\(count)")
        }
        let x = randomFloats(blocks[b].count, seed: UInt64(30 + b))
        let dot = x.withUnsafeBufferPointer { h.probeDot(k, block: b, firstWord: words[b], with: $0) }
        let want = v[b].withUnsafeBufferPointer { v in
          x.withUnsafeBufferPointer { HutchinsonTrace.accumulate(v, $0, into: nil) }
        }
        #expect(dot.bitPattern == want.bitPattern, "probe \(k) block \(b): \(dot) vs \(want)")
      }
    }
  }

  /// Per-block values recorded directly count like a streamed product's; a diagonal-keeping trace, a wrong count
  /// and a non-finite value are refused and record nothing.
  @Test func recordedValues() throws {
    let blocks = [3, 5].enumerated().map { HutchinsonTrace.Block(name: "b\($0.offset)", count: $0.element) }
    var h = try HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3), seed: 5)
    try h.record(values: [1, 2])
    try h.record(values: [3, 4])
    #expect(h.probesDone == 2)
    #expect(h.estimates.map(\.mean) == [2, 3])
    #expect(throws: SensitivityError.self) { try h.record(values: [1]) }
    #expect(throws: SensitivityError.self) { try h.record(values: [1, .nan]) }
    #expect(h.probesDone == 2)
    var d = try HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3, diagonal: true), seed: 5)
    #expect(throws: SensitivityError.self) { try d.record(values: [1, 2]) }
  }

  /// A product handed over block by block, in reverse order, records what a plain Double loop gives: the block
  /// sums to rounding (they are summed in a different order) and the diagonal sums exactly (the same additions).
  @Test func streamedRecordMatchesReference() throws {
    let blocks = [3, 100_003, 64].enumerated().map { HutchinsonTrace.Block(name: "b\($0.offset)", count: $0.element) }
    var h = try HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3, diagonal: true), seed: 5)
    let v = h.probe(0)
    let hv = blocks.indices.map { randomFloats(blocks[$0].count, seed: UInt64(20 + $0)) }
    let values = try h.record(probe: v) { consume in
      for i in hv.indices.reversed() { try hv[i].withUnsafeBufferPointer { try consume(i, $0) } }
    }
    for i in blocks.indices {
      var sum = 0.0
      for j in v[i].indices { sum += Double(v[i][j]) * Double(hv[i][j]) }
      #expect(abs(values[i] - sum) <= 1e-12 * Double(blocks[i].count), "block \(i)")
      #expect(h.diagonalSum![i] == zip(v[i], hv[i]).map { Double($0) * Double($1) }, "block \(i)")
    }
    let v1 = h.probe(1)
    #expect { try h.record(probe: v1) { consume in try hv[0].withUnsafeBufferPointer { try consume(0, $0) } } } throws: {
      ($0 as? SensitivityError)?.code == .shapeMismatch
    }
    #expect {
      try h.record(probe: v1) { consume in
        for i in [0, 1, 2, 1] { try hv[i].withUnsafeBufferPointer { try consume(i, $0) } }
      }
    } throws: { ($0 as? SensitivityError)?.code == .shapeMismatch }
    #expect(h.probesDone == 1)
  }

  /// A product handed over with v's blocks beside it (`record(streaming:)`, v regenerated by `streamedProbe`)
  /// records the same bits as `record(probe:streaming:)` (values and diagonal sums); a block of v of the wrong size
  /// is refused.
  @Test func pairedRecordMatchesProbeRecord() throws {
    let blocks = [3, 100_003, 64].enumerated().map { HutchinsonTrace.Block(name: "b\($0.offset)", count: $0.element) }
    var (a, b) = try (
      HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3, diagonal: true), seed: 9),
      HutchinsonTrace(blocks: blocks, settings: settings(minimum: 1, maximum: 3, diagonal: true), seed: 9))
    for k in 0..<2 {
      let v = a.probe(k), probe = b.streamedProbe(k)
      let hv = blocks.indices.map { randomFloats(blocks[$0].count, seed: UInt64(30 + 3 * k + $0)) }
      let want = try a.record(probe: v) { consume in
        for i in hv.indices.reversed() { try hv[i].withUnsafeBufferPointer { try consume(i, $0) } }
      }
      let got = try b.record { consume in
        for i in hv.indices.reversed() {
          var block = [Float](repeating: 0, count: blocks[i].count)
          block.withUnsafeMutableBufferPointer { probe.fill(block: i, into: $0) }
          try block.withUnsafeBufferPointer { v in try hv[i].withUnsafeBufferPointer { try consume(i, v, $0) } }
        }
      }
      #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
      #expect(b.diagonalSum!.map { $0.map(\.bitPattern) } == a.diagonalSum!.map { $0.map(\.bitPattern) })
    }
    let short = [Float](repeating: 1, count: 2)
    #expect {
      try b.record { consume in
        try short.withUnsafeBufferPointer { v in try [Float](repeating: 1, count: 3).withUnsafeBufferPointer { try consume(0, v, $0) } }
      }
    } throws: { ($0 as? SensitivityError)?.code == .shapeMismatch }
    #expect(b.probesDone == 2)
  }

  @Test func rejectsMalformedProducts() throws {
    let form = QuadraticForm(sizes: sizes, seed: 7)
    var h = try HutchinsonTrace(blocks: form.blocks, settings: settings(minimum: 1, maximum: 3), seed: 1)
    let v = h.probe(0)
    #expect(throws: SensitivityError(.shapeMismatch, "Hessian-vector product has 4 blocks, the layout 5")) {
      try h.record(probe: v, product: Array(form.product(v).dropLast()))
    }
    var bad = form.product(v)
    bad[2][3] = .nan
    #expect { try h.record(probe: v, product: bad) } throws: { ($0 as? SensitivityError)?.code == .nonFinite }
    #expect(h.probesDone == 0)
    #expect { try HutchinsonTrace(blocks: [], settings: settings(minimum: 1, maximum: 3), seed: 1) } throws: {
      ($0 as? SensitivityError)?.code == .invalidArgument
    }
  }
}
