import Foundation
import Sensitivity
import Testing
import _TestSupport

@Suite struct MeasurementRunTests {
  func measure(_ folder: String, model: ToyModel = ToyModel(), provenance: RunProvenance = toyProvenance()) throws
    -> MeasuredRun
  {
    try MeasurementRun(model: model, provenance: provenance, path: folder + "/RUN.h5").run()
  }

  @Test func uninterruptedRunMeasuresTheToyModel() throws {
    let folder = temporaryFolder("full")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var stages: [MeasurementStage] = []
    let model = ToyModel()
    let run = try MeasurementRun(model: model, provenance: toyProvenance(), path: folder + "/RUN.h5") { s, _, _ in
      if stages.last != s { stages.append(s) }
    }.run()
    #expect(stages == [.fisher, .hessian, .eigenvalues, .layers, .audit])
    #expect(try canonicalJSON(RunStore.read(folder + "/RUN.h5")) == canonicalJSON(run))
    #expect(try RunStore.read(folder + "/RUN.h5") == run, "bitwise ==, NaN included")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["RUN.h5"])
    // Traces: within 4 standard errors of the exact block traces (24 probes, t with 23 df: P(|t| > 4) ≈ 6e-4).
    for (i, exact) in model.form.exactTraces.enumerated() {
      #expect(abs(run.hessianTrace[i] - exact) <= 4 * run.hessianTraceStandardError[i], "layer \(i)")
      #expect(run.probesUsed[i] == 24)
    }
    #expect(run.probeValues.count == 24)
    // Fisher trace: Σ g² of the mean of the three window gradients, recomputed here.
    let grads = try (0..<3).map { try model.gradient(window: $0) }
    for i in 0..<3 {
      let g = grads[0][i].indices.map { j in grads.reduce(0.0) { $0 + Double($1[i][j]) } / 3 }
      let want = g.reduce(0) { $0 + $1 * $1 }
      #expect(abs(run.fisherTrace[i] - want) <= 1e-12 * want)
    }
    // int2-g6 does not fit the 3-wide layer: bytes −1 and NaN errors; everything else is measured.
    #expect(run.bytes[2][2] == -1 && run.weightError[2][2].isNaN && run.calibrationMethod[2][2] == "")
    #expect(run.bytes[0] == [26, 14, 14])
    for i in 0..<3 {
      #expect(run.weightError[i][0] < run.weightError[i][1])
      #expect(run.topEigenvalue[i] > 0 && run.weightVariance[i] > 0 && run.inputTrace[i] > 0)
      for name in LossProxy.allCases.map(\.rawValue) { #expect(run.proxies[name]![i][0].isFinite, "\(name)") }
    }
    #expect(bits(run.proxies["weight_error"]!) == bits(run.weightError))
    #expect(bits(run.proxies["output_error"]!) == bits(run.outputError))
    let audit = try #require(run.audit)
    #expect(audit.deltaNLL.count == 5 && Set(zip(audit.layer, audit.candidate).map { "\($0)-\($1)" }).count == 5)
    #expect(audit.deltaKLD.allSatisfy { $0 > 0 })
    #expect(Set(audit.spearmanNLL.keys) == Set(LossProxy.allCases.map(\.rawValue)))
    #expect(audit.spearmanKLD.values.allSatisfy { $0.isNaN || abs($0) <= 1 })
  }

  /// Top eigenvalue of each layer's diagonal block: bit-identical to power iteration on that block alone from the
  /// same stream and stopping rule (zero-padding the probe adds only zeros to each sum), and within 2 % of the
  /// converged value. The run stops at a relative change of 1e-4 per step; with a convergence ratio r of the
  /// Rayleigh quotient the remaining error is about change·r/(1−r), ≈ 1.6e-3 here for the slowest block.
  @Test func topEigenvalueMatchesBlockPowerIteration() throws {
    let folder = temporaryFolder("eigen")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = ToyModel()
    let run = try measure(folder, provenance: toyProvenance(probes: 4, audit: 0, eigen: 500))
    for (b, block) in model.form.blocks.enumerated() {
      var rng = SplitMix64(seed: 1)
      let exact = try PowerIteration.dominantEigenvalue(
        dimension: block.count, maximumIterations: 5000, relativeTolerance: 1e-10, using: &rng
      ) { model.form.blockProduct(b, $0) }
      #expect(abs(run.topEigenvalue[b] - exact.eigenvalue) <= 0.02 * exact.eigenvalue, "layer \(b)")
      var stream = ProbeStream(seed: 7, domain: .powerIteration, index: b)
      let same = try PowerIteration.dominantEigenvalue(
        dimension: block.count, maximumIterations: 500,
        relativeTolerance: MeasurementRun<ToyModel>.eigenvalueTolerance, using: &stream
      ) { model.form.blockProduct(b, $0) }
      #expect(run.topEigenvalue[b].bitPattern == same.eigenvalue.bitPattern, "layer \(b)")
    }
  }

  /// A gradient that comes back NaN (a model overflowing on the text) is a one-line `.nonFinite` error, and the
  /// partial run it started is removed with its side files: rerunning would only meet the NaN again.
  @Test func aNonFiniteGradientLeavesNoPartialRun() throws {
    let folder = temporaryFolder("nan-gradient")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var model = ToyModel()
    model.poisonedWindow = 1
    var run = MeasurementRun(model: model, provenance: toyProvenance(), path: folder + "/RUN.h5")
    run.checkpointInterval = 0  // the first window's gradient sum is saved before the second's NaN
    #expect { try run.run() } throws: { ($0 as? SensitivityError)?.code == .nonFinite }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
  }

  /// Interrupt at every stage (and twice in a row), rerun the same command, and get the uninterrupted numbers bit
  /// for bit, with no partial or side file left behind.
  @Test(arguments: [
    ["gradient": 1], ["hvp": 0], ["hvp": 3], ["hvp": 30], ["quantize": 4], ["evaluate": 2], ["inputs": 1],
  ])
  func interruptedRunResumesToIdenticalNumbers(budget: [String: Int]) throws {
    let reference = temporaryFolder("ref-\(budget.keys.first!)\(budget.values.first!)")
    let folder = temporaryFolder("kill-\(budget.keys.first!)\(budget.values.first!)")
    defer {
      try? FileManager.default.removeItem(atPath: reference)
      try? FileManager.default.removeItem(atPath: folder)
    }
    let uninterrupted = try measure(reference)
    #expect(throws: ToyInterrupt.self) { try measure(folder, model: ToyModel(budget: CallBudget(budget))) }
    #expect(FileManager.default.fileExists(atPath: folder + "/RUN.h5.partial"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/RUN.h5"))
    // A second interruption a few calls later, then the rest.
    let again = Dictionary(uniqueKeysWithValues: budget.map { ($0.key, $0.value + 2) })
    _ = try? measure(folder, model: ToyModel(budget: CallBudget(again)))
    let counting = CallBudget()
    let resumed = try measure(folder, model: ToyModel(budget: counting))
    #expect(try canonicalJSON(resumed) == canonicalJSON(uninterrupted))
    #expect(resumed == uninterrupted)
    #expect(try canonicalJSON(RunStore.read(folder + "/RUN.h5")) == canonicalJSON(uninterrupted))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["RUN.h5"])
    if budget["hvp"] == 30 { #expect(counting.calls["gradient", default: 0] == 0, "finished stages are not redone") }
  }

  /// With a checkpoint interval the last window's gradient sum is not saved: the per-layer stage of the same process
  /// gets it in memory, and a run interrupted after the Fisher stage recomputes the unsaved windows (3) when the
  /// per-layer stage has work left, to the same bits.
  @Test(arguments: zip([["hvp": 3], ["quantize": 4], ["quantize": 12]], [3, 3, 0]))
  func unsavedGradientSumIsRecomputedOnResume(budget: [String: Int], recomputed: Int) throws {
    let name = "\(budget.keys.first!)\(budget.values.first!)"
    let (reference, again, folder) = (
      temporaryFolder("interval-ref-\(name)"), temporaryFolder("interval-again-\(name)"), temporaryFolder("interval-\(name)")
    )
    defer { for f in [reference, again, folder] { try? FileManager.default.removeItem(atPath: f) } }
    func run(_ folder: String, _ model: ToyModel) throws -> MeasuredRun {
      var run = MeasurementRun(model: model, provenance: toyProvenance(), path: folder + "/RUN.h5")
      run.checkpointInterval = 1e9
      return try run.run()
    }
    let uninterrupted = try measure(reference)
    let counting = CallBudget()
    #expect(try run(again, ToyModel(budget: counting)) == uninterrupted)
    let windows = ToyModel().calibrationWindowCount
    #expect(counting.calls["gradient", default: 0] == windows, "each window once in an uninterrupted run")
    #expect(throws: ToyInterrupt.self) { try run(folder, ToyModel(budget: CallBudget(budget))) }
    let resumed = CallBudget()
    #expect(try run(folder, ToyModel(budget: resumed)) == uninterrupted)
    #expect(resumed.calls["gradient", default: 0] == recomputed, "the unsaved windows are recomputed once")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["RUN.h5"])
  }

  /// Each checkpoint renames a newly written partial file into place (a new inode while the old one still exists).
  /// Without an interval the per-layer stage saves after every layer; with one, at most once a
  /// `layerCheckpointInterval` and always after the last layer: the toy's three layers take milliseconds, so only the
  /// last is saved. The run is the same either way.
  @Test(arguments: [0, 1e9]) func layerRecordsAreRationedByTheInterval(interval: Double) throws {
    let (reference, folder) = (temporaryFolder("layers-ref-\(interval)"), temporaryFolder("layers-\(interval)"))
    defer { for f in [reference, folder] { try? FileManager.default.removeItem(atPath: f) } }
    let partial = folder + "/RUN.h5.partial"
    func inode() -> UInt64? { (try? FileManager.default.attributesOfItem(atPath: partial))?[.systemFileNumber] as? UInt64 }
    var seen: [(stage: MeasurementStage, inode: UInt64?)] = []
    var run = MeasurementRun(model: ToyModel(), provenance: toyProvenance(), path: folder + "/RUN.h5") { stage, _, _ in
      seen.append((stage, inode()))
    }
    run.checkpointInterval = interval
    #expect(try run.run() == measure(reference))
    let before = try #require(seen.last { $0.stage == .eigenvalues }?.inode)
    let layers = seen.filter { $0.stage == .layers }.map(\.inode)
    #expect(layers.count == 3)
    if interval == 0 {
      for (previous, next) in zip([before] + layers.dropLast(), layers) { #expect(next != previous, "saved after every layer") }
    } else {
      #expect(layers.dropLast().allSatisfy { $0 == before }, "no save before the last layer")
      #expect(layers.last! != before, "the last layer is saved")
    }
  }

  /// The gradient sum kept on disk (`streamsGradientSum`, issue 18) measures the same numbers bit for bit, resumes
  /// from an interruption in any stage, and a run begun with the sum in memory resumes with it on disk (the same
  /// side files); nothing but RUN.h5 is left.
  @Test(arguments: [[:], ["gradient": 1], ["gradient": 2], ["hvp": 3], ["quantize": 4]] as [[String: Int]])
  func streamedGradientSumGivesTheSameRun(budget: [String: Int]) throws {
    let name = budget.isEmpty ? "none" : "\(budget.keys.first!)\(budget.values.first!)"
    let (reference, folder, mixed) = (
      temporaryFolder("stream-ref-\(name)"), temporaryFolder("stream-\(name)"), temporaryFolder("stream-mixed-\(name)")
    )
    defer { for f in [reference, folder, mixed] { try? FileManager.default.removeItem(atPath: f) } }
    func run(_ folder: String, _ model: ToyModel, streamed: Bool) throws -> MeasuredRun {
      var run = MeasurementRun(model: model, provenance: toyProvenance(), path: folder + "/RUN.h5")
      run.streamsGradientSum = streamed
      return try run.run()
    }
    let uninterrupted = try measure(reference)
    if budget.isEmpty {
      #expect(try run(folder, ToyModel(), streamed: true) == uninterrupted)
    } else {
      #expect(throws: ToyInterrupt.self) { try run(folder, ToyModel(budget: CallBudget(budget)), streamed: true) }
      #expect(try run(folder, ToyModel(), streamed: true) == uninterrupted)
      #expect(throws: ToyInterrupt.self) { try run(mixed, ToyModel(budget: CallBudget(budget)), streamed: false) }
      #expect(try run(mixed, ToyModel(), streamed: true) == uninterrupted)
      #expect(try FileManager.default.contentsOfDirectory(atPath: mixed) == ["RUN.h5"])
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["RUN.h5"])
  }

  /// A layer's candidates quantized and measured a few at a time (`candidateBatchBytes` exceeded) give the run that
  /// all at once gives.
  @Test func candidatesInBatchesGiveTheSameRun() throws {
    let (reference, folder) = (temporaryFolder("batch-ref"), temporaryFolder("batch"))
    defer { for f in [reference, folder] { try? FileManager.default.removeItem(atPath: f) } }
    let whole = try measure(reference)
    var run = MeasurementRun(model: ToyModel(), provenance: toyProvenance(), path: folder + "/RUN.h5")
    run.candidateBatchBytes = 0
    #expect(try run.run() == whole)
  }

  /// A resumed run checks the checksum of the on-disk sum that another process wrote: one flipped bit in a value is
  /// a `.badRunFile` error, not a different Fisher figure.
  @Test func damagedStreamedSumIsRefusedOnResume() throws {
    let folder = temporaryFolder("stream-damage")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var run = MeasurementRun(model: ToyModel(budget: CallBudget(["gradient": 1])), provenance: toyProvenance(), path: folder + "/RUN.h5")
    run.streamsGradientSum = true
    #expect(throws: ToyInterrupt.self) { try run.run() }
    let side = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.hasPrefix("RUN.h5.partial.gradient.") })
    let url = URL(fileURLWithPath: folder + "/" + side)
    var bytes = try Data(contentsOf: url)
    bytes[30] ^= 1  // a bit of the first value (values start at byte 24)
    try bytes.write(to: url)
    var again = MeasurementRun(model: ToyModel(), provenance: toyProvenance(), path: folder + "/RUN.h5")
    again.streamsGradientSum = true
    let error = try #require(throws: SensitivityError.self) { try again.run() }
    #expect(error.code == .badRunFile)
  }

  /// With a tolerance the run stops before `--probes`; a run interrupted mid-way stops at the same probe.
  @Test func toleranceStopsEarlyAndResumesToTheSameProbe() throws {
    let (a, b) = (temporaryFolder("tolA"), temporaryFolder("tolB"))
    defer { for f in [a, b] { try? FileManager.default.removeItem(atPath: f) } }
    var settings = toyProvenance(probes: 400, audit: 0, eigen: 0)
    settings.tolerance = 0.03
    let full = try measure(a, provenance: settings)
    let k = full.probeValues.count
    #expect(k >= 4 && k < 400)
    #expect(zip(full.hessianTrace, full.hessianTraceStandardError).allSatisfy { $1 / abs($0) < 0.03 })
    #expect(throws: ToyInterrupt.self) {
      try measure(b, model: ToyModel(budget: CallBudget(["hvp": k - 2])), provenance: settings)
    }
    #expect(try canonicalJSON(measure(b, provenance: settings)) == canonicalJSON(full))
  }

  @Test func otherSettingsRefuseToResume() throws {
    let folder = temporaryFolder("mismatch")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(throws: ToyInterrupt.self) { try measure(folder, model: ToyModel(budget: CallBudget(["hvp": 2]))) }
    #expect { try measure(folder, provenance: toyProvenance(seed: 8)) } throws: { error in
      let e = error as? SensitivityError
      return e?.code == .provenanceMismatch && e!.message.contains("seed 7 → 8") && e!.message.contains("delete")
    }
    var other = toyProvenance()
    other.modelSHA256 = String(repeating: "c", count: 64)
    #expect { try measure(folder, provenance: other) } throws: {
      ($0 as? SensitivityError)?.code == .provenanceMismatch
    }
    var later = toyProvenance()
    later.created = "2030-01-01T00:00:00Z"
    let run = try measure(folder, provenance: later)
    #expect(run.provenance.created == "2026-11-24T00:00:00Z", "a resumed run keeps its start time")
  }

  @Test func badSettingsFailBeforeAnyFileIsWritten() throws {
    let folder = temporaryFolder("badsettings")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var bad = toyProvenance()
    bad.minimumProbes = 30
    #expect { try measure(folder, provenance: bad) } throws: { ($0 as? SensitivityError)?.code == .invalidArgument }
    bad = toyProvenance()
    bad.candidates = ["int8"]
    #expect { try measure(folder, provenance: bad) } throws: { ($0 as? SensitivityError)?.code == .invalidArgument }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
  }

  @Test func sameSeedSameNumbersOtherSeedOtherProbes() throws {
    let (a, b, c) = (temporaryFolder("seedA"), temporaryFolder("seedB"), temporaryFolder("seedC"))
    defer { for f in [a, b, c] { try? FileManager.default.removeItem(atPath: f) } }
    let ra = try measure(a)
    let rb = try measure(b)
    let rc = try measure(c, provenance: toyProvenance(seed: 99))
    #expect(try canonicalJSON(ra) == canonicalJSON(rb))
    #expect(ra.probeValues != rc.probeValues && ra != rc)
    #expect(bits(ra.weightError) == bits(rc.weightError), "quantization errors do not depend on the seed")
  }

  @Test func problemColumnsSkipUnofferedCandidates() throws {
    let folder = temporaryFolder("columns")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let run = try measure(folder, provenance: toyProvenance(probes: 6, audit: 0, eigen: 0))
    let columns = try run.problemColumns(score: "hawq_trace")
    #expect(columns.map(\.formats) == [["int8", "int4", "int2-g6"], ["int8", "int4", "int2-g6"], ["int8", "int4"]])
    #expect(columns[2].bytes == [run.bytes[2][0], run.bytes[2][1]])
    #expect(columns[1].loss == Array(run.proxies["hawq_trace"]![1]))
    #expect(columns[0].hessianTracePerWeight == run.hessianTrace[0] / 24)
    #expect(run.topEigenvalue.allSatisfy(\.isNaN) && run.audit == nil)
    #expect { try run.problemColumns(score: "nope") } throws: { ($0 as? SensitivityError)?.code == .invalidArgument }
  }
}

/// Bit patterns, so that NaN compares equal to the same NaN.
func bits(_ grid: [[Double]]) -> [[UInt64]] { grid.map { $0.map(\.bitPattern) } }

/// The per-layer stage's slices of the blocked per-parameter vectors (gradient and diagonal sums).
@Suite struct VectorSliceTests {
  /// Every range over blocks of uneven sizes (within one block, across several, empty) equals the reference:
  /// the concatenation, cut and divided value by value.
  @Test func sliceEqualsConcatenatedReference() {
    var rng = SplitMix64(seed: 21)
    let blocks = [7, 1, 0, 300, 64].map { n in (0..<n).map { _ in Double(rng.next() % 10_000) / 7 - 700 } }
    let flat = blocks.flatMap { $0 }
    for lower in stride(from: 0, through: flat.count, by: 5) {
      for upper in [lower, lower + 1, lower + 6, lower + 80, flat.count] where upper <= flat.count && upper >= lower {
        let want = flat[lower..<upper].map { $0 / 3.5 }
        let got = MeasurementRun<ToyModel>.slice(blocks, lower..<upper, dividedBy: 3.5)
        #expect(got == want, "\(lower)..<\(upper)")
      }
    }
  }
}
