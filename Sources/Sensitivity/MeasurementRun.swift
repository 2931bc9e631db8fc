import TensorCore

/// Runs a whole measurement against a `SensitivityModel` and stores it with `RunStore`, resuming a partial run.
///
/// Stages, in order (`MeasurementStage`): the Fisher gradient over the calibration windows; Hutchinson probes until
/// the stopping rule; optionally each layer's top eigenvalue; per layer the weight statistics, input trace and,
/// for every candidate, `‖ΔW‖²`, the output error, bytes, calibration and all `LossProxy` scores; optionally the
/// audit. Each unit of work (a window, a probe, a layer, an audited quantization) is checkpointed before the next
/// begins (with `checkpointInterval` set, windows, probes and layers are checkpointed at most that often, see there),
/// and every random number comes from `ProbeStream(seed, …)` keyed by the unit, so an interrupted run that is
/// started again with the same settings ends with numbers identical to an uninterrupted one.
public struct MeasurementRun<Model: SensitivityModel> {
  /// The model, calibration data and quantizer.
  public let model: Model
  /// The settings and checksums, stored as provenance.
  public let provenance: RunProvenance
  /// The final file, `RUN.h5`.
  public let path: String
  /// Called after each unit of work with the stage, the units done and the stage's total.
  public var onProgress: (MeasurementStage, Int, Int) -> Void
  /// Least seconds between checkpoints that rewrite a per-parameter side file (calibration windows; probes when
  /// the Hessian diagonal is kept); 0 checkpoints after every unit. Such a checkpoint writes 8 bytes per weight
  /// (850 MB for SmolLM2), which would cost about as much as the probe itself; with an interval, a kill loses at
  /// most that much work, and the resumed run recomputes the lost units bit for bit (each is seeded by its index).
  /// Saves are also spaced by at least nine times the last save's duration (`CheckpointSchedule`). The last probe
  /// is always checkpointed; the last window is not (see `gradientSum(_:checkpointing:)`).
  public var checkpointInterval: Double = 0
  /// Least seconds between checkpoints of the per-layer stage when `checkpointInterval` is set (the smaller of the
  /// two): a layer's record rewrites only the partial file, not a side file, so a kill there loses at most a second.
  public static var layerCheckpointInterval: Double { 1 }
  /// Keep the Fisher stage's gradient sum (one Double per weight) on disk instead of in memory: each window reads
  /// the previous generation of the side file a layer at a time, adds the layer's gradient and writes the next
  /// generation (`VectorCheckpoint.Writer`), and the per-layer stage reads its layer's sum back. Every window is then
  /// a checkpoint. The same numbers, bit for bit; the cost is reading and writing 16 bytes per weight per window.
  /// For models whose weights are streamed from their files (issue 18).
  public var streamsGradientSum = false
  /// Above this many bytes of quantized weights (the Float values of every candidate of one layer), the per-layer
  /// stage quantizes and measures a layer's candidates as many at a time as there are workers (`Parallel.workers`)
  /// instead of all at once: the same numbers, a fraction of the memory for a large table. 512 MiB unless the
  /// caller sets it (`measure`: an eighth of the memory the process may use).
  public var candidateBatchBytes = 512 << 20

  /// Power iteration stops when successive Rayleigh quotients differ by less than this relative amount: the
  /// eigenvalue is a diagnostic, and 1e-4 is far below the run-to-run spread of the traces it sits beside.
  public static var eigenvalueTolerance: Double { 1e-4 }

  /// A run of `model` with `provenance`, stored at `path`; `onProgress` sees each unit of work.
  public init(
    model: Model, provenance: RunProvenance, path: String,
    onProgress: @escaping (MeasurementStage, Int, Int) -> Void = { _, _, _ in }
  ) {
    self.model = model
    self.provenance = provenance
    self.path = path
    self.onProgress = onProgress
  }

  /// Runs (or resumes) every stage and writes the final file.
  /// - Returns: the finished run, as `RunStore.read(path)` would return it.
  /// - Throws: `SensitivityError` (`.provenanceMismatch` for a partial run made with other settings), or what the
  ///   model throws; the partial file then holds everything finished before the failure.
  public func run() throws -> MeasuredRun {
    let layers = model.linearLayers
    // Bad settings must fail before a partial file records them.
    if model.calibrationWindowCount < 1 {
      throw SensitivityError(.invalidArgument, "no calibration windows for the Fisher gradient")
    }
    try provenance.hutchinsonSettings.validate()
    if provenance.eigenIterations < 0 || provenance.auditCount < 0 || provenance.kldTokens < 0 {
      throw SensitivityError(.invalidArgument, "eigenvalue iterations, audit count and KLD tokens must be ≥ 0")
    }
    let store = try RunStore(path: path, provenance: provenance, layers: layers, candidates: model.candidates)
    do {
      let gradientSum = try fisherStage(store)
      try hessianStage(store)
      if provenance.eigenIterations > 0 { try eigenvalueStage(store) }
      try layerStage(store, gradientSum: gradientSum)
      if provenance.kldTokens > 0 { try kldStage(store) }
      if provenance.auditCount > 0 { try auditStage(store) }
      store.recordAuditCorrelations()
      return try store.finish()
    } catch let error as SensitivityError where error.code == .nonFinite && !store.resumed {
      // A NaN or infinity from the model on this text comes back on every rerun: the partial run this process
      // started could never finish, so it is removed (no partial output). Any other error keeps it for a resume.
      store.discard()
      throw error
    }
  }

  /// When the next checkpoint that rewrites a per-parameter side file is due: `interval` after the last one
  /// ended, and never sooner than `costFactor` times as long as that save took, so saving costs at most
  /// 1/(1 + costFactor) of the stage's time. On a quiet machine SmolLM2's 850 MB save takes ~0.5 s and the
  /// 30 s interval rules; on a loaded one (a save measured at 6 s of the process's time, 17% of a default
  /// run's samples) the saves spread out. An interval of 0 saves after every unit, whatever a save costs.
  struct CheckpointSchedule {
    /// Least seconds between saves (`checkpointInterval`).
    let interval: Double
    /// Least multiple of the last save's duration between saves.
    static var costFactor: Double { 9 }
    private var lastEnd = ContinuousClock.now
    private var lastCost = 0.0

    init(interval: Double) { self.interval = interval }

    /// Whether a save is due now.
    var isDue: Bool {
      interval <= 0 || Self.seconds(ContinuousClock.now - lastEnd) >= max(interval, Self.costFactor * lastCost)
    }

    /// Runs a save and times it.
    mutating func save(_ body: () throws -> Void) rethrows {
      let start = ContinuousClock.now
      try body()
      lastEnd = .now
      lastCost = Self.seconds(lastEnd - start)
    }

    static func seconds(_ d: Duration) -> Double {
      Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
  }

  /// Splits a concatenated all-layer vector into per-layer blocks.
  func split<T>(_ flat: [T]) -> [[T]] {
    var offset = 0
    return model.linearLayers.map { l in
      defer { offset += l.parameterCount }
      return Array(flat[offset..<offset + l.parameterCount])
    }
  }

  /// Checks that `blocks` has one block of the right size per layer.
  func checkBlocks(_ blocks: [[Float]], _ what: String) throws(SensitivityError) {
    let layers = model.linearLayers
    guard blocks.count == layers.count, zip(blocks, layers).allSatisfy({ $0.count == $1.parameterCount }) else {
      throw SensitivityError(.shapeMismatch, "\(what): blocks do not match the \(layers.count) layers' shapes")
    }
  }

  /// Σ_w ∇NLL_w over the calibration windows (`gradientSum`), then the Fisher trace. Returns the sum for the
  /// per-layer stage, or nil when the stage was done before.
  private func fisherStage(_ store: RunStore) throws -> [Double]? {
    if store.progress.fisherDone { return nil }
    if streamsGradientSum {
      let reader = try streamedGradientSum(store)
      let windows = Double(model.calibrationWindowCount)
      var offset = 0
      var trace: [Double] = []
      for layer in model.linearLayers {
        // in pieces (`sumPiece`), one running sum in order: the whole block's bits without its 8 bytes per weight
        var sum = 0.0
        for start in stride(from: 0, to: layer.parameterCount, by: Self.sumPiece) {
          let block = try Self.read(reader, offset + start, min(Self.sumPiece, layer.parameterCount - start))
          sum = block.reduce(sum) { acc, s in
            let g = s / windows
            return acc + g * g
          }
        }
        trace.append(sum)
        offset += layer.parameterCount
      }
      try store.recordFisherTrace(trace)
      return nil
    }
    let sum = try gradientSum(store, checkpointing: true)
    // Fisher trace Σ g² of the mean gradient g = sum / windows, per layer.
    let windows = Double(model.calibrationWindowCount)
    var offset = 0
    let trace = model.linearLayers.map { layer in
      defer { offset += layer.parameterCount }
      return sum[offset..<offset + layer.parameterCount].reduce(0.0) { acc, s in
        let g = s / windows
        return acc + g * g
      }
    }
    try store.recordFisherTrace(trace)
    return sum
  }

  /// Σ_w ∇NLL_w over all calibration windows, all layers concatenated: the saved sum of the first
  /// `store.progress.fisherWindows` windows (zeros before any) plus the later windows, computed here. Each window's
  /// gradient is the same bits every time, so the sum is too, however the run was interrupted.
  ///
  /// With `checkpointing` (the Fisher stage) the sum is saved whenever `checkpointInterval` has passed, but not
  /// forced after the last window: the stage ends by recording the Fisher trace, and hands the sum to the per-layer
  /// stage in memory. A run resumed after the stage calls this again without checkpointing and recomputes the
  /// windows after the last saved one: a few forward/backward passes on resume, against writing 850 MB (SmolLM2) in
  /// every run.
  func gradientSum(_ store: RunStore, checkpointing: Bool) throws -> [Double] {
    let windows = model.calibrationWindowCount
    var sum = store.progress.fisherWindows == 0 ? [] : try store.gradientSum()
    var schedule = CheckpointSchedule(interval: checkpointInterval)
    for w in store.progress.fisherWindows..<windows {
      try add(window: w, to: &sum)
      if checkpointing {
        if schedule.isDue {
          try schedule.save { try store.recordFisherWindows(through: w, gradientSum: [sum]) }
        }
        onProgress(.fisher, w + 1, windows)
      }
    }
    return sum
  }

  /// The streamed form of `gradientSum` (`streamsGradientSum`): every window after the recorded ones is added a
  /// layer at a time from the previous generation's file into the next one, which is then recorded. Returns the
  /// reader of the last generation.
  func streamedGradientSum(_ store: RunStore) throws -> VectorCheckpoint.Reader {
    let windows = model.calibrationWindowCount
    let layers = model.linearLayers
    let offsets = layers.reduce(into: [0]) { $0.append($0.last! + $1.parameterCount) }
    let name = RunStore.SideVector.gradientSum.rawValue
    let piece = Self.sumPiece
    var scratch = [Double](repeating: 0, count: min(layers.map(\.parameterCount).max() ?? 0, piece))
    for w in store.progress.fisherWindows..<windows {
      let previous = try store.gradientSumReader()
      let writer = try VectorCheckpoint.Writer(base: store.partialPath, name: name, generation: w + 1, count: offsets.last!)
      var seen = [Bool](repeating: false, count: layers.count)
      try model.gradient(window: w) { i, b in
        guard layers.indices.contains(i), !seen[i], b.count == layers[i].parameterCount else {
          throw SensitivityError(.shapeMismatch, "gradient of window \(w): block \(i) of \(b.count) values is out of place")
        }
        seen[i] = true
        try scratch.withUnsafeMutableBufferPointer { s throws(SensitivityError) in
          for start in stride(from: 0, to: b.count, by: piece) {
            let n = min(piece, b.count - start)
            let block = UnsafeMutableBufferPointer(rebasing: s[0..<n])
            if let previous { try previous.read(into: block, at: offsets[i] + start) }
            if Self.accumulate(block.baseAddress!, b.baseAddress! + start, n, fresh: previous == nil) == 0,
              let bad = block.first(where: { !$0.isFinite })
            {
              throw SensitivityError(.nonFinite, "gradient sum \(bad) after window \(w)")
            }
            try writer.write(UnsafeBufferPointer(block), at: offsets[i] + start)
          }
        }
      }
      if let i = seen.firstIndex(of: false) {
        throw SensitivityError(.shapeMismatch, "gradient of window \(w): block '\(layers[i].name)' was not handed over")
      }
      try writer.finish()
      try store.recordStreamedFisherWindows(through: w)
      onProgress(.fisher, w + 1, windows)
    }
    guard let reader = try store.gradientSumReader() else {
      throw SensitivityError(.invalidArgument, "no calibration windows for the Fisher gradient")
    }
    return reader
  }

  /// Doubles of the on-disk sum read, added or written at a time (8 MB; a 1B model's table block alone is 2 GB).
  static var sumPiece: Int { 1 << 20 }

  /// `count` values of the streamed sum from `offset`.
  static func read(_ reader: VectorCheckpoint.Reader, _ offset: Int, _ count: Int) throws(SensitivityError) -> [Double] {
    var block = [Double](repeating: 0, count: count)
    try block.withUnsafeMutableBufferPointer { b throws(SensitivityError) in try reader.read(into: b, at: offset) }
    return block
  }

  /// Adds window `w`'s gradient to the concatenated sum as the model hands its blocks over (an empty `sum` is the
  /// first window's: it becomes `0 + g`, bit for bit what adding to zeros gives, without first writing 850 MB of
  /// zeros), checking for non-finite sums in the same pass. No model-sized gradient is held beside the sum.
  /// - Throws: `.shapeMismatch` for a block out of place, given twice or missing (then `sum` is left empty: the
  ///   stage fails and a resumed run reads its checkpoint); `.nonFinite`; what the model throws.
  private func add(window w: Int, to sum: inout [Double]) throws {
    let layers = model.linearLayers
    let offsets = layers.reduce(into: [0]) { $0.append($0.last! + $1.parameterCount) }
    var check = UInt64.max
    var seen = [Bool](repeating: false, count: layers.count)
    func accumulate(_ s: UnsafeMutableBufferPointer<Double>, fresh: Bool) throws {
      try model.gradient(window: w) { i, b in
        guard layers.indices.contains(i), !seen[i], b.count == layers[i].parameterCount else {
          throw SensitivityError(.shapeMismatch, "gradient of window \(w): block \(i) of \(b.count) values is out of place")
        }
        seen[i] = true
        check = min(check, Self.accumulate(s.baseAddress! + offsets[i], b.baseAddress!, b.count, fresh: fresh))
      }
      if let i = seen.firstIndex(of: false) {
        throw SensitivityError(.shapeMismatch, "gradient of window \(w): block '\(layers[i].name)' was not handed over")
      }
    }
    do {
      if sum.isEmpty {
        let count = offsets.last!
        sum = try [Double](unsafeUninitializedCapacity: count) { s, initialized in
          try accumulate(s, fresh: true)
          initialized = count
        }
      } else {
        try sum.withUnsafeMutableBufferPointer { try accumulate($0, fresh: false) }
      }
    } catch {
      sum = []
      throw error
    }
    if check == 0, let bad = sum.first(where: { !$0.isFinite }) {
      throw SensitivityError(.nonFinite, "gradient sum \(bad) after window \(w)")
    }
  }

  /// `s[k] = (fresh ? 0 : s[k]) + Double(b[k])` for `k < n`. Returns 0 when some new `s[k]` is NaN or infinite: a
  /// non-finite Double has every exponent bit set, so the least of the cleared exponent bits is 0 exactly then,
  /// checked in the same (vectorized) pass as the additions. Element-wise, so split over the workers in pieces of
  /// at least 2¹⁶ values (the backward pass hands its blocks over on the calling thread, and the other core idled).
  static func accumulate(_ s: UnsafeMutablePointer<Double>, _ b: UnsafePointer<Float>, _ n: Int, fresh: Bool) -> UInt64 {
    let pieces = max(1, min(Parallel.workers, n >> 16))
    if pieces == 1 { return accumulate(s, b, 0..<n, fresh: fresh) }
    var checks = [UInt64](repeating: 0, count: pieces)
    checks.withUnsafeMutableBufferPointer { checks in
      nonisolated(unsafe) let (out, sum) = (checks, s)  // each piece writes its own slot and range
      Parallel.forEach(pieces) { p in
        out[p] = accumulate(sum, b, p * n / pieces..<(p + 1) * n / pieces, fresh: fresh)
      }
    }
    return checks.min()!
  }

  /// `accumulate` over the indices `range` on this thread.
  static func accumulate(
    _ s: UnsafeMutablePointer<Double>, _ b: UnsafePointer<Float>, _ range: Range<Int>, fresh: Bool
  ) -> UInt64 {
    let exponent: UInt64 = 0x7FF0_0000_0000_0000
    var check = exponent
    if fresh {
      for k in range {
        let v = 0 + Double(b[k])
        s[k] = v
        check = min(check, ~v.bitPattern & exponent)
      }
    } else {
      for k in range {
        let v = s[k] + Double(b[k])
        s[k] = v
        check = min(check, ~v.bitPattern & exponent)
      }
    }
    return check
  }

  private func hessianStage(_ store: RunStore) throws {
    if store.progress.hessianDone { return }
    let blocks = model.linearLayers.map { HutchinsonTrace.Block(name: $0.name, count: $0.parameterCount) }
    var h = try HutchinsonTrace(blocks: blocks, settings: provenance.hutchinsonSettings, seed: provenance.seed)
    for values in store.run.probeValues { try h.replay(values: values) }
    if provenance.keepsHessianDiagonal && h.probesDone > 0 { try h.restoreDiagonal(sum: split(store.diagonalSum())) }
    var pending: [[Double]] = []
    var schedule = CheckpointSchedule(interval: checkpointInterval)
    var v: [[Float]] = []
    while !h.isFinished {
      let k = h.probesDone
      if provenance.keepsHessianDiagonal {
        // v ⊙ Hv per parameter: every block of the probe beside the product's (regenerated block by block by the
        // engine-backed model; `v` is the default's workspace)
        let probe = h.streamedProbe(k)
        pending.append(try h.record { consume in try model.hessianVectorProduct(probe: probe, workspace: &v, consume: consume) })
      } else {
        // per-layer values only: the model may regenerate the probe block by block
        let values = try model.hutchinsonSample(of: h, probe: k)
        try h.record(values: values)
        pending.append(values)
      }
      // Without the diagonal a checkpoint is a small file, so every probe is saved.
      if h.isFinished || !provenance.keepsHessianDiagonal || schedule.isDue {
        try schedule.save {
          try store.recordProbes(from: k + 1 - pending.count, values: pending, diagonalSum: h.diagonalSum)
        }
        pending = []
      }
      onProgress(.hessian, k + 1, provenance.probes)
    }
    try store.recordHessianTrace(h.estimates)
  }

  private func eigenvalueStage(_ store: RunStore) throws {
    let layers = model.linearLayers
    for i in store.progress.eigenLayers..<layers.count {
      var stream = ProbeStream(seed: provenance.seed, domain: .powerIteration, index: i)
      let result = try PowerIteration.dominantEigenvalue(
        dimension: layers[i].parameterCount, maximumIterations: provenance.eigenIterations,
        relativeTolerance: Self.eigenvalueTolerance, using: &stream
      ) { x in
        // H restricted to layer i: probe zero outside the layer, keep the layer's block of Hv.
        var v = layers.map { [Float](repeating: 0, count: $0.parameterCount) }
        v[i] = x
        let hv = try model.hessianVectorProduct(v)
        try checkBlocks(hv, "Hessian-vector product")
        return hv[i]
      }
      try store.recordTopEigenvalue(result.eigenvalue, layer: i)
      onProgress(.eigenvalues, i + 1, layers.count)
    }
  }
}
