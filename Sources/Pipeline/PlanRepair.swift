import Allocation
import Engine
import Foundation
import Quantization
import Sensitivity
import TensorCore
import Validation

/// `bitplan validate --repair N`: the plan's N closest calls (`ClosestCalls`) measured end to end, the problem
/// re-solved exactly with the measurements (`MeasuredRepair`), and the repaired plan scored beside the plan.
///
/// Measurements are on the calibration text (the run's `calib_path` or `--calib`, the windows GPTQ and AWQ take,
/// `PackedQuantizer.calibrationWindows`), never on the evaluation windows, which only score the result: choosing
/// on them would leak. Each swap's KLD is against the unquantized model (dense Float weights, scored before any
/// layer is packed) with the plan's packed layers installed and only the swapped layer re-quantized; the plan's
/// layer goes back after each swap.
public enum PlanRepair {
  /// The largest N `--repair` takes.
  public static let maximumSwaps = 64

  /// The allocation problem a plan was solved from, restricted to the plan's layers, and the plan's option index
  /// per layer.
  public struct Problem {
    public var problem: AllocationProblem
    public var choices: [Int]
    public var budgetBytes: Int
  }

  /// The problem of `plan` in the run file `runPath`: its score column, with the candidates and bytes of the plan's
  /// target (the run's own when the plan's target is the run's), restricted to the plan's layers.
  /// - Throws: `PlanValidationError.badSettings` when the plan names a layer or format the run lacks, or its bytes
  ///   there exceed its budget; the run file's and the allocation's errors.
  public static func problem(plan: PlanDocument, planPath: String, runPath: String, run: MeasuredRun) throws -> Problem {
    let target: Target?
    if let name = plan.target, name != run.provenance.target {
      guard let t = Target(name: name) else {
        throw PlanValidationError(.badSettings, "--repair: '\(planPath)' names an unknown target '\(name)'")
      }
      target = t
    } else {
      target = nil
    }
    var problem = try AllocationInput.load(from: runPath, score: plan.score, allowNoisyScores: true, target: target).problem
    let known = Set(problem.layers.map(\.name))
    if let missing = plan.layers.keys.sorted().first(where: { !known.contains($0) }) {
      throw PlanValidationError(
        .badSettings, "--repair: '\(planPath)' plans \(missing), which the problem of --run '\(runPath)' lacks; was the plan made from this run?")
    }
    // The run's layer order, so that plans list layers as allocate does.
    problem.layers = problem.layers.filter { plan.layers[$0.name] != nil }
    var ordered: [Int] = []
    for layer in problem.layers {
      let format = plan.layers[layer.name]!.format
      guard let c = layer.options.firstIndex(where: { $0.format == format }) else {
        throw PlanValidationError(
          .badSettings,
          "--repair: '\(planPath)' gives \(layer.name) \(format), not among its candidates in --run '\(runPath)' (score \(plan.score))")
      }
      ordered.append(c)
    }
    let bytes = zip(problem.layers, ordered).reduce(0) { $0 + $1.0.options[$1.1].bytes }
    guard bytes <= plan.budgetBytes else {
      throw PlanValidationError(
        .badSettings,
        "--repair: the plan's layers take \(bytes) bytes in --run '\(runPath)', over its budget \(plan.budgetBytes); was the plan made from this run?")
    }
    return Problem(problem: problem, choices: ordered, budgetBytes: plan.budgetBytes)
  }

  /// The calibration windows' reference distributions from the unquantized model (call before anything is packed).
  static func calibrationReference(_ model: LlamaModel<Float>, windows: [[Int]], vocabulary: Int) throws -> [ReferenceDistribution] {
    try windows.map { tokens in
      let rows = tokens.count - 1
      let logits = try model.logits(tokens: tokens).storage
      return ReferenceDistribution(logits: Array(logits[0..<(rows * vocabulary)]), rows: rows, vocabulary: vocabulary)
    }
  }

  /// Mean KLD over every scored position of the calibration windows, with the model as installed.
  static func calibrationKLD(
    _ model: LlamaModel<Float>, windows: [[Int]], references: [ReferenceDistribution], vocabulary: Int
  ) throws -> Double {
    var (sum, count) = (0.0, 0)
    for (tokens, reference) in zip(windows, references) {
      let rows = tokens.count - 1
      let logits = try model.logits(tokens: tokens).storage
      let scores = try TokenScoring.score(
        logits: Array(logits[0..<(rows * vocabulary)]), rows: rows, vocabulary: vocabulary, targets: Array(tokens.dropFirst()),
        reference: reference)
      sum += scores.kld.reduce(0, +)
      count += rows
    }
    return sum / Double(max(count, 1))
  }

  /// What the repair needs from the validation around it.
  struct Context {
    var packed: PackedModel
    var plan: PlanDocument
    var formats: [String: QuantFormat]
    var planLayers: [String: PackedLayer]
    var calibration: (String, QuantFormat) -> RangeCalibration?
    var quantizer: PackedQuantizer
    var calibrationText: String
    var calibrationWindows: [[Int]]
    var calibrationReference: [ReferenceDistribution]
    var shapes: [LayerShape]
    var byteModel: ByteModel
    var parameters: Int
  }

  /// Measures the closest calls, re-solves, and (when the plan changed) installs the repaired plan, leaving it
  /// installed for the caller to score on the evaluation windows.
  /// - Returns: the summary so far (no evaluation KLDs yet), the repaired formats when the plan changed, and the
  ///   repaired PLAN.json (the plan's own when nothing was re-solved).
  static func measureAndSolve(
    _ s: ValidateSettings, repair: Problem, context c: Context, status: (String) -> Void, progress: (Int, Int) -> Void
  ) throws -> (RepairSummary, repaired: [String: QuantFormat]?, document: PlanDocument) {
    let start = Date()
    let vocabulary = c.packed.loaded.config.vocabSize
    let model = c.packed.loaded.model
    let problem = repair.problem
    let selection = try ClosestCalls.select(problem, choices: repair.choices, budget: repair.budgetBytes, count: s.repair)
    let planBytes = zip(problem.layers, repair.choices).reduce(0) { $0 + $1.0.options[$1.1].bytes }
    var summary = RepairSummary(
      requested: s.repair, score: problem.score, multiplier: selection.multiplier, calibrationText: c.calibrationText,
      budgetBytes: repair.budgetBytes, planBytes: planBytes)
    summary.calibrationWindows = c.calibrationWindows.count
    summary.calibrationScoredTokens = c.calibrationWindows.first.map { $0.count - 1 } ?? 0

    // The plan as validated, back in place (the baselines ran after it).
    status("validate: repair: the plan on \(c.calibrationText)…")
    try c.packed.install(c.formats, calibration: c.calibration, quantizer: c.quantizer, prebuilt: c.planLayers)
    let planKLD = try calibrationKLD(model, windows: c.calibrationWindows, references: c.calibrationReference, vocabulary: vocabulary)
    summary.planCalibrationKLD = planKLD
    var measured: [Double] = []
    progress(0, selection.swaps.count)
    for (j, swap) in selection.swaps.enumerated() {
      let layer = problem.layers[swap.layer]
      let from = layer.options[swap.from].format
      let to = layer.options[swap.to].format
      guard let toFormat = QuantFormat(to) else {
        throw PlanValidationError(.unknownFormat, "--repair: \(layer.name)'s candidate '\(to)' is not a format of the grammar")
      }
      try c.packed.install([layer.name: toFormat], calibration: c.calibration, quantizer: c.quantizer)
      let kld = try calibrationKLD(model, windows: c.calibrationWindows, references: c.calibrationReference, vocabulary: vocabulary)
      try c.packed.install([layer.name: c.formats[layer.name]!], prebuilt: [layer.name: c.planLayers[layer.name]!])
      measured.append(kld - planKLD)
      summary.swaps.append(
        RepairSummary.Swap(
          layer: layer.name, direction: swap.direction.rawValue, from: from, to: to, deltaBytes: swap.deltaBytes,
          predictedDelta: swap.predictedDelta, rate: swap.rate, distance: swap.distance, calibrationKLD: kld,
          measuredDelta: kld - planKLD))
      progress(j + 1, selection.swaps.count)
    }

    // The re-solve.
    let baseline = try problem.solve(budget: repair.budgetBytes, using: .exact)
    summary.planIsExactOptimum = baseline.choices.map(\.optionIndex) == repair.choices
    guard !selection.swaps.isEmpty else {
      summary.note = selection.multiplier > 0 ? "no swap to measure" : "the budget buys every upgrade (λ* = 0): no closest calls"
      summary.elapsedSeconds = Date().timeIntervalSince(start)
      return (summary, nil, c.plan)
    }
    guard let (scale, rule) = MeasuredRepair.scale(predicted: selection.swaps.map(\.predictedDelta), measured: measured) else {
      summary.note = "no change was measured: nothing to re-solve with"
      summary.elapsedSeconds = Date().timeIntervalSince(start)
      return (summary, nil, c.plan)
    }
    summary.scale = scale
    summary.scaleRule = rule.rawValue
    let adjusted = MeasuredRepair.adjusted(problem, swaps: selection.swaps, measured: measured, scale: scale)
    let solved = try adjusted.solve(budget: repair.budgetBytes, using: .exact)
    let choices = solved.choices.map(\.optionIndex)
    summary.repairedBytes = solved.totalBytes
    var repaired = c.formats
    for (i, layer) in problem.layers.enumerated() where choices[i] != repair.choices[i] {
      let (a, b) = (layer.options[repair.choices[i]], layer.options[choices[i]])
      summary.changes.append(RepairSummary.Change(layer: layer.name, from: a.format, to: b.format, deltaBytes: b.bytes - a.bytes))
      guard let f = QuantFormat(b.format) else {
        throw PlanValidationError(.unknownFormat, "--repair: \(layer.name)'s candidate '\(b.format)' is not a format of the grammar")
      }
      repaired[layer.name] = f
    }
    // The repaired PLAN.json: the original predictions per layer (the measured ones are in VALIDATION.json).
    var unadjusted = solved
    unadjusted.choices = solved.choices.map { choice in
      var c = choice
      c.loss = problem.layers.first { $0.name == choice.layer }!.options[choice.optionIndex].loss
      return c
    }
    unadjusted.predictedLoss = unadjusted.choices.reduce(0) { $0 + $1.loss }
    var document = PlanDocument(plan: unadjusted, problem: problem, target: c.plan.target ?? Target.any.rawValue)
    document.model = c.plan.model
    document.modelSHA256 = c.plan.modelSHA256
    summary.elapsedSeconds = Date().timeIntervalSince(start)
    if summary.changes.isEmpty { return (summary, nil, document) }
    status("validate: repair: installing the repaired plan…")
    try c.packed.install(
      repaired, calibration: c.calibration, quantizer: c.quantizer,
      prebuilt: c.planLayers.filter { repaired[$0.key] == c.formats[$0.key] })
    return (summary, repaired, document)
  }
}
