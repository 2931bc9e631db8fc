import TensorCore

/// Hutchinson estimator of the Hessian trace of every parameter block at once, with a stopping rule.
///
/// For a Rademacher probe `v` (independent ±1 entries) over all blocks and the Hessian-vector product `Hv`, the
/// block estimate `vᵢᵀ(Hv)ᵢ` has expectation `tr(Hᵢᵢ)`, the trace of block `i`'s diagonal block of `H`; coupling
/// between blocks only adds variance. Its variance is `2 Σ_{j≠k in i} H_jk²` (off-diagonal entries that touch block
/// `i`, including the coupling to other blocks), so the standard error falls as `1/√probes`. The mean of `v ⊙ Hv`
/// over probes estimates `diag(H)` element by element (Bekas, Kokiopoulou, Saad 2007), kept when asked for because
/// it costs one `Double` per parameter.
///
/// Probe `k` is drawn from `ProbeStream(seed:domain:.hutchinson,index:k)`, so probes can be regenerated one by one
/// (a resumed run continues at probe `k` with the same vector). Stopping rule: stop after `maximumProbes`, or
/// as soon as at least `minimumProbes` have been taken and every block's relative standard error is below
/// `relativeTolerance`.
///
/// Reference: Hutchinson (1990), "A stochastic estimator of the trace of the influence matrix"; PyHessian
/// `trace()` (Yao et al. 2020) and HAWQ-V2 (Dong et al. 2020), which use it per layer.
public struct HutchinsonTrace: Sendable {
  /// One parameter block (a linear layer's weight matrix), by name and number of parameters.
  public struct Block: Sendable, Codable, Equatable {
    /// Hugging Face module path.
    public var name: String
    /// Number of parameters (`out · in`).
    public var count: Int

    /// A block of `count` parameters named `name`.
    public init(name: String, count: Int) {
      self.name = name
      self.count = count
    }
  }

  /// When to stop and what to keep.
  public struct Settings: Sendable, Codable, Equatable {
    /// Stop when every block's `standardError / |mean|` is below this (`--tol`); 0 means "run all probes".
    public var relativeTolerance: Double
    /// Never stop before this many probes (the standard error of 2 samples is itself too noisy to trust).
    public var minimumProbes: Int
    /// Stop after this many probes (`--probes`).
    public var maximumProbes: Int
    /// Whether to accumulate `Σ v ⊙ Hv` per parameter for the diagonal estimate (one `Double` per parameter).
    public var keepsDiagonal: Bool

    /// Checks `1 ≤ minimumProbes ≤ maximumProbes` and `relativeTolerance ≥ 0`.
    /// - Throws: `.invalidArgument` naming the bad setting.
    public func validate() throws(SensitivityError) {
      if maximumProbes < 1 || minimumProbes > maximumProbes || minimumProbes < 1 {
        throw SensitivityError(
          .invalidArgument, "probes: need 1 ≤ minimum (\(minimumProbes)) ≤ maximum (\(maximumProbes))")
      }
      if !(relativeTolerance >= 0) {
        throw SensitivityError(.invalidArgument, "relative tolerance \(relativeTolerance) must be ≥ 0")
      }
    }

    /// A stopping rule; see the properties.
    public init(relativeTolerance: Double, minimumProbes: Int = 4, maximumProbes: Int, keepsDiagonal: Bool) {
      self.relativeTolerance = relativeTolerance
      self.minimumProbes = minimumProbes
      self.maximumProbes = maximumProbes
      self.keepsDiagonal = keepsDiagonal
    }
  }

  /// The blocks, in the order of the probe vector.
  public let blocks: [Block]
  /// The stopping rule.
  public let settings: Settings
  /// The seed every probe stream is derived from.
  public let seed: UInt64
  /// Running moments of `vᵢᵀ(Hv)ᵢ`, one per block.
  public internal(set) var moments: [RunningMoments]
  /// `samples[k][i]`: probe `k`'s value `vᵢᵀ(Hv)ᵢ` for block `i`.
  public internal(set) var samples: [[Double]] = []
  /// `Σ_k v_k ⊙ (Hv_k)` per block and parameter, when `settings.keepsDiagonal`.
  public internal(set) var diagonalSum: [[Double]]?

  /// Starts an estimate with no probes.
  /// - Throws: `.invalidArgument` for no blocks, a negative block size, `maximumProbes < 1`,
  ///   `minimumProbes > maximumProbes` or a negative or NaN tolerance.
  public init(blocks: [Block], settings: Settings, seed: UInt64) throws(SensitivityError) {
    if blocks.isEmpty { throw SensitivityError(.invalidArgument, "Hutchinson trace of no blocks") }
    if let b = blocks.first(where: { $0.count < 0 }) {
      throw SensitivityError(.invalidArgument, "block '\(b.name)' has \(b.count) parameters")
    }
    try settings.validate()
    self.blocks = blocks
    self.settings = settings
    self.seed = seed
    moments = Array(repeating: RunningMoments(), count: blocks.count)
    diagonalSum = settings.keepsDiagonal ? blocks.map { [Double](repeating: 0, count: $0.count) } : nil
  }

  /// Number of probes recorded so far; the next probe's index.
  public var probesDone: Int { samples.count }

  /// Whether the stopping rule is met.
  public var isFinished: Bool {
    probesDone >= settings.maximumProbes
      || (probesDone >= settings.minimumProbes && estimates.allSatisfy(\.converged))
  }

  /// The per-block estimates of `tr(Hᵢᵢ)` so far.
  public var estimates: [Estimate] {
    moments.indices.map { i in
      let m = moments[i]
      let e = Estimate(
        mean: m.mean, standardError: m.standardError, samples: samples.map { $0[i] }, converged: false)
      let converged = m.count >= settings.minimumProbes && e.relativeStandardError < settings.relativeTolerance
      return Estimate(mean: e.mean, standardError: e.standardError, samples: e.samples, converged: converged)
    }
  }

  /// The diagonal estimate `mean_k (v_k ⊙ Hv_k)` per block, or `nil` when not kept or before any probe.
  public var diagonal: [[Double]]? {
    guard let sum = diagonalSum, probesDone > 0 else { return nil }
    let n = Double(probesDone)
    return sum.map { $0.map { $0 / n } }
  }

  /// Probe `index`: Rademacher signs for every block, in block order, from the stream `(seed, .hutchinson, index)`
  /// (each block starts at a fresh 64-bit draw).
  public func probe(_ index: Int) -> [[Float]] {
    var v: [[Float]] = []
    streamedProbe(index).dense(into: &v)
    return v
  }

  /// The first 64-bit draw of each block in a probe's stream (each block starts at a fresh draw).
  public var firstWords: [Int] {
    var (words, word) = ([Int](), 0)
    for b in blocks {
      words.append(word)
      word += (b.count + 63) / 64
    }
    return words
  }

  /// ⟨v, x⟩ in Double for block `block` of probe `index` and a vector `x` of the block's size, without writing v:
  /// the same bits as `accumulate` of `probe(index)[block]` with `x`.
  public func probeDot(_ index: Int, block: Int, firstWord: Int, with x: UnsafeBufferPointer<Float>) -> Double {
    precondition(x.count == blocks[block].count, "block \(block) has \(blocks[block].count) values, not \(x.count)")
    return ProbeStream(seed: seed, domain: .hutchinson, index: index).rademacherDot(x, firstWord: firstWord)
  }

  /// Probe `index` as a value that regenerates any of its blocks: the seed and the layout, not the estimate's sums,
  /// so a product that forms the probe a block at a time can hold it while the estimate records (a copy of the
  /// trace would share the diagonal sums and copy them on the first write).
  public func streamedProbe(_ index: Int) -> Probe {
    Probe(seed: seed, index: index, blocks: blocks, firstWords: firstWords)
  }

  /// One probe's signs, block by block (`streamedProbe(_:)`): the same values as `probe(index)`.
  public struct Probe: Sendable, Equatable {
    /// The trace's seed.
    public let seed: UInt64
    /// Which probe.
    public let index: Int
    /// The trace's blocks, in the probe's order.
    public let blocks: [Block]
    /// The first 64-bit draw of each block (`HutchinsonTrace.firstWords`).
    public let firstWords: [Int]

    /// Block `block` written into `values` (`blocks[block].count` of them), for a product that regenerates the
    /// probe a block at a time.
    public func fill(block: Int, into values: UnsafeMutableBufferPointer<Float>) {
      precondition(values.count == blocks[block].count, "block \(block) has \(blocks[block].count) values, not \(values.count)")
      ProbeStream(seed: seed, domain: .hutchinson, index: index).fillRademacher(values, firstWord: firstWords[block])
    }

    /// Values `offset ..< offset + values.count` of block `block` (rows of the embedding table, regenerated a chunk
    /// at a time).
    public func fill(block: Int, offset: Int, into values: UnsafeMutableBufferPointer<Float>) {
      precondition(
        offset >= 0 && offset + values.count <= blocks[block].count,
        "values \(offset)..<\(offset + values.count) outside block \(block) of \(blocks[block].count)")
      let stream = ProbeStream(seed: seed, domain: .hutchinson, index: index), skip = offset % 64
      if skip == 0 { return stream.fillRademacher(values, firstWord: firstWords[block] + offset / 64) }
      // a range that starts inside a draw: that draw's values from its start, then the ones asked for
      let words = UnsafeMutableBufferPointer<Float>.allocate(capacity: skip + values.count)
      defer { words.deallocate() }
      stream.fillRademacher(words, firstWord: firstWords[block] + offset / 64)
      _ = values.initialize(from: words[skip...])
    }

    /// The whole probe written into `v`, reusing its arrays when they already have the blocks' sizes (a whole
    /// probe is 425 MB on SmolLM2).
    public func dense(into v: inout [[Float]]) {
      if v.count != blocks.count || !zip(v, blocks).allSatisfy({ $0.count == $1.count }) {
        v = blocks.map { [Float](repeating: 0, count: $0.count) }
      }
      for b in blocks.indices { v[b].withUnsafeMutableBufferPointer { fill(block: b, into: $0) } }
    }
  }
}
