/// Recording units of work. Each call checks that it continues the run where it stands (the next window, probe,
/// layer or audit entry), stores the numbers, and checkpoints before returning.
extension RunStore {
  /// Stores the gradient sum after calibration window `window` (the next one).
  /// - Parameter gradientSum: `Σ_{w ≤ window} ∇NLL_w`, all layers concatenated (in one or several blocks).
  public func recordFisherWindow(_ window: Int, gradientSum: [[Double]]) throws(SensitivityError) {
    try expectNext(window, progress.fisherWindows, "calibration window")
    try recordFisherWindows(through: window, gradientSum: gradientSum)
  }

  /// Stores the gradient sum after several calibration windows at once: every window from the next one through
  /// `window` (one checkpoint for many units, when checkpoints are rationed by `MeasurementRun.checkpointInterval`).
  /// - Parameter gradientSum: `Σ_{w ≤ window} ∇NLL_w`, all layers concatenated (in one or several blocks).
  public func recordFisherWindows(through window: Int, gradientSum: [[Double]]) throws(SensitivityError) {
    if window < progress.fisherWindows {
      throw SensitivityError(
        .invalidArgument, "calibration window \(window) is already stored (next: \(progress.fisherWindows))", path: path)
    }
    try expectParameters(gradientSum, "gradient sum")
    try update(saving: gradientSum, as: SideVector.gradientSum.rawValue, generation: window + 1) { _, p in
      p.fisherWindows = window + 1
    }
  }

  /// The gradient sum over the windows recorded so far (zeros before any).
  public func gradientSum() throws(SensitivityError) -> [Double] {
    let n = run.layers.reduce(0) { $0 + $1.parameterCount }
    if progress.fisherWindows == 0 { return [Double](repeating: 0, count: n) }
    return Self.concatenated(try sideVector(SideVector.gradientSum.rawValue, generation: progress.fisherWindows, count: n))
  }

  /// Stores the final Fisher trace per layer and marks the Fisher stage done.
  public func recordFisherTrace(_ trace: [Double]) throws(SensitivityError) {
    try expectCount(trace.count, "Fisher trace")
    try update { r, p in
      r.fisherTrace = trace
      p.fisherDone = true
    }
  }

  /// Stores probe `index`'s per-layer values `vᵢᵀ(Hv)ᵢ` (the next probe) and, when the diagonal is kept, the
  /// diagonal sum including this probe (per layer, or concatenated: the blocks are written one after another).
  public func recordProbe(_ index: Int, values: [Double], diagonalSum: [[Double]]?) throws(SensitivityError) {
    try recordProbes(from: index, values: [values], diagonalSum: diagonalSum)
  }

  /// Stores consecutive probes `first, first + 1, …` (`first` the next probe) in one checkpoint, with the
  /// diagonal sum including the last of them.
  public func recordProbes(from first: Int, values: [[Double]], diagonalSum: [[Double]]?) throws(SensitivityError) {
    try expectNext(first, run.probeValues.count, "probe")
    for v in values { try expectCount(v.count, "probe values") }
    if let diagonalSum { try expectParameters(diagonalSum, "Hessian diagonal sum") }
    // Kept in memory when it is the last probe `--probes` allows (a tolerance may stop earlier: the per-layer stage
    // then reads the file).
    let generation = first + values.count
    let isLast = generation >= run.provenance.probes
    try update(saving: diagonalSum, as: SideVector.diagonalSum.rawValue, generation: generation, isLast: isLast) { r, _ in
      r.probeValues.append(contentsOf: values)
    }
  }

  /// The Hutchinson diagonal sum over the probes recorded so far, all layers concatenated.
  public func diagonalSum() throws(SensitivityError) -> [Double] { Self.concatenated(try diagonalSumBlocks()) }

  /// `diagonalSum()` as consecutive blocks, without concatenating what was saved in blocks.
  func diagonalSumBlocks() throws(SensitivityError) -> [[Double]] {
    let n = run.layers.reduce(0) { $0 + $1.parameterCount }
    if run.probeValues.isEmpty { return [[Double](repeating: 0, count: n)] }
    return try sideVector(SideVector.diagonalSum.rawValue, generation: run.probeValues.count, count: n)
  }

  /// The concatenation of `blocks` (the block itself when there is one).
  static func concatenated(_ blocks: [[Double]]) -> [Double] {
    blocks.count == 1 ? blocks[0] : Array(blocks.joined())
  }

  /// Stores the final trace estimates and marks the Hessian stage done.
  public func recordHessianTrace(_ estimates: [Estimate]) throws(SensitivityError) {
    try expectCount(estimates.count, "trace estimates")
    try update { r, p in
      r.hessianTrace = estimates.map(\.mean)
      r.hessianTraceStandardError = estimates.map(\.standardError)
      r.probesUsed = estimates.map(\.samples.count)
      p.hessianDone = true
    }
  }

  /// Stores the top eigenvalue of layer `layer` (the next one).
  public func recordTopEigenvalue(_ value: Double, layer: Int) throws(SensitivityError) {
    try expectNext(layer, progress.eigenLayers, "eigenvalue layer")
    try update { r, p in
      r.topEigenvalue[layer] = value
      p.eigenLayers = layer + 1
    }
  }

  /// Stores layer `layer`'s statistics, errors, bytes, calibration and proxies (the next layer).
  /// - Parameter checkpoint: false keeps the layer in memory only, until a later checkpoint (the per-layer stage
  ///   rations them by time, `MeasurementRun.layerCheckpointInterval`); a kill before then loses the layer, and the
  ///   resumed run measures it again, bit for bit.
  public func recordLayer(_ layer: Int, _ m: LayerMeasurement, checkpoint: Bool = true) throws(SensitivityError) {
    try expectNext(layer, progress.layersDone, "layer")
    if m.candidates.count != run.candidates.count {
      throw SensitivityError(.invalidArgument, "\(m.candidates.count) candidate results for \(run.candidates.count)")
    }
    try update(checkpointing: checkpoint) { r, p in
      r.weightVariance[layer] = m.statistics.variance
      r.weightAbsmax[layer] = m.statistics.absmax
      r.weightKurtosis[layer] = m.statistics.kurtosis
      r.inputTrace[layer] = m.inputTrace
      r.inputSquareMeans[layer] = m.inputSquareMeans
      for (c, result) in m.candidates.enumerated() {
        guard let result else { continue }
        r.weightError[layer][c] = result.weightError
        r.outputError[layer][c] = result.outputError
        r.bytes[layer][c] = result.bytes
        r.calibrationMethod[layer][c] = result.calibration
        r.quantizer[layer][c] = result.quantizer
        for (name, value) in result.proxies {
          if r.proxies[name] == nil { r.proxies[name] = r.weightError.map { $0.map { _ in .nan } } }
          r.proxies[name]![layer][c] = value
        }
      }
      p.layersDone = layer + 1
    }
  }

  /// Starts the audit with the unquantized model's mean NLL.
  public func recordAuditBaseline(meanNLL: Double) throws(SensitivityError) {
    if run.audit != nil { throw SensitivityError(.invalidArgument, "the audit baseline is already stored", path: path) }
    try update { r, _ in
      var a = MeasuredRun.Audit()
      a.baselineNLL = meanNLL
      r.audit = a
    }
  }

  /// Appends one audited single-layer quantization.
  public func recordAudit(layer: Int, candidate: Int, deltaNLL: Double, deltaKLD: Double) throws(SensitivityError) {
    guard run.audit != nil else { throw SensitivityError(.invalidArgument, "audit entry before its baseline") }
    try update { r, _ in
      r.audit!.layer.append(layer)
      r.audit!.candidate.append(candidate)
      r.audit!.deltaNLL.append(deltaNLL)
      r.audit!.deltaKLD.append(deltaKLD)
    }
  }

  /// Starts the measured scores (`/measured`) with the unquantized model's mean NLL on `tokens` calibration tokens.
  public func recordMeasuredBaseline(meanNLL: Double, tokens: Int) throws(SensitivityError) {
    if run.measured != nil { throw SensitivityError(.invalidArgument, "the measured baseline is already stored", path: path) }
    try update { r, _ in
      r.measured = MeasuredScores(layers: r.layers.count, candidates: r.candidates.count, tokens: tokens, baselineNLL: meanNLL)
    }
  }

  /// Stores layer `layer`'s measured KLD and ΔNLL per candidate (NaN for a candidate not offered): the next layer.
  public func recordMeasuredLayer(_ layer: Int, kld: [Double], deltaNLL: [Double]) throws(SensitivityError) {
    guard let m = run.measured else { throw SensitivityError(.invalidArgument, "measured scores before their baseline") }
    try expectNext(layer, m.layersDone(bytes: run.bytes), "measured layer")
    if kld.count != run.candidates.count || deltaNLL.count != run.candidates.count {
      throw SensitivityError(.invalidArgument, "\(kld.count) measured scores for \(run.candidates.count) candidates")
    }
    for c in kld.indices where run.bytes[layer][c] >= 0 && !(kld[c].isFinite && deltaNLL[c].isFinite) {
      throw SensitivityError(
        .nonFinite, "measured KLD \(kld[c]) / ΔNLL \(deltaNLL[c]) of '\(run.layers[layer].name)' in \(run.candidates[c].name)")
    }
    try update { r, _ in
      r.measured!.kld[layer] = kld
      r.measured!.deltaNLL[layer] = deltaNLL
    }
  }

  /// Stores Spearman's ρ of every score (the proxies, and `kld` when measured) against the audited ΔNLL and ΔKLD (no
  /// checkpoint: `finish()` follows).
  public func recordAuditCorrelations() {
    guard var a = run.audit else { return }
    for (name, grid) in run.scoreGrids {
      let predicted = zip(a.layer, a.candidate).map { grid[$0][$1] }
      a.spearmanNLL[name] = SpearmanCorrelation.rho(predicted, a.deltaNLL) ?? .nan
      a.spearmanKLD[name] = SpearmanCorrelation.rho(predicted, a.deltaKLD) ?? .nan
    }
    setAudit(a)
  }

  private func expectNext(_ index: Int, _ next: Int, _ what: String) throws(SensitivityError) {
    if index != next {
      throw SensitivityError(
        .invalidArgument, "\(what) \(index) recorded out of order; the next is \(next)", path: path)
    }
  }

  private func expectParameters(_ blocks: [[Double]], _ what: String) throws(SensitivityError) {
    let n = run.layers.reduce(0) { $0 + $1.parameterCount }
    let got = blocks.reduce(0) { $0 + $1.count }
    if got != n { throw SensitivityError(.invalidArgument, "\(what): \(got) values for \(n) parameters", path: path) }
  }

  private func expectCount(_ count: Int, _ what: String) throws(SensitivityError) {
    if count != run.layers.count {
      throw SensitivityError(.invalidArgument, "\(what): \(count) values for \(run.layers.count) layers", path: path)
    }
  }
}
