import Allocation
import Engine
import Foundation
import ModelIO
import Quantization
import Sensitivity
import TensorCore
import Validation

/// What `bitplan validate` is asked to do.
public struct ValidateSettings: Sendable {
  public var model: String
  public var plan: String
  public var evalText: String
  public var run: String?
  /// Tokens per window, BOS included.
  public var tokens = 512
  public var windows = 8
  public var scoringProtocol = EvaluationWindows.ScoringProtocol.bitplan
  public var activations = ActivationMode.int8
  public var baselines: [Baselines.Kind] = Baselines.Kind.allCases
  public var bootstrapReplicates = 2000
  public var seed: UInt64 = 0
  /// Where the base model's scores are cached; nil: no cache.
  public var cacheDirectory: String?
  /// The quantizer of every layer, plan and baselines alike (`--quantizer`); nil: as recorded — the plan's layer
  /// `quantizer` for its formats, the run's `/calibration/quantizer` for the baselines' (a `best` run's winners),
  /// else the plan's own when all its layers agree, else round to nearest. `best` needs the run's record.
  public var quantizer: QuantizerChoice?
  /// The calibration text GPTQ and AWQ take their layer inputs from (`--calib`); nil: the run's `calib_path`.
  public var calibrationText: String?
  /// Calibration tokens, BOS included; nil: the run's `tokens`, else 512 (measure's default).
  public var calibrationTokens: Int?
  /// Adam steps of scale tuning after the plan (`--tune-steps`; 0: no `plan-tuned` row).
  public var tuneSteps = 0
  /// Adam's step size on the log-scales (`--tune-lr`).
  public var tuneLearningRate = ScaleTuner.Options.defaultLearningRate
  /// Tokens per tuning window, BOS included.
  public var tuneWindowTokens = 128
  /// What tuning descends (`--tune-loss`): KL from the unquantized model (default) or the text's NLL.
  public var tuneLoss = ScaleTuner.Loss.kld
  /// Calibration tokens tuning cycles through, BOS included (`--tune-tokens`); nil: as many as GPTQ and AWQ take
  /// (`calibrationTokens`, else the run's, else 512).
  public var tuneTokens: Int?
  /// The closest calls to measure end to end and re-solve with (`--repair N`, `PlanRepair`); 0: off. Needs `run`.
  public var repair = 0
  /// Where to write the repaired PLAN.json (`--repair-out`); nil: nowhere.
  public var repairOutput: String?

  public init(model: String, plan: String, evalText: String) {
    self.model = model
    self.plan = plan
    self.evalText = evalText
  }
}

/// The stages of a validation, for progress.
public enum ValidationStage: String, CaseIterable, Sendable {
  case base, quantize, tune, score, repair
}

/// `bitplan validate`: the plan and its same-size baselines run packed on evaluation windows and scored against
/// the base model, with bootstrap intervals over windows.
///
/// Base: under the `bitplan` protocol, the model's Float weights (dequantized from the file); under
/// `llama-perplexity`, the file's own stored types run packed with the same activations (what llama.cpp's
/// `--kl-divergence-base` run computes). Its per-position NLL and log-probabilities (`ReferenceDistribution`,
/// log-softmax in 16 bits per entry) are computed once per (model, text, protocol, windows) and cached
/// (`ReferenceCache`); every KLD is computed from the stored form, so cached and fresh runs agree exactly.
public enum PlanValidation {
  /// Runs the validation. `progress(stage, done, total)`; `status(text)` for steps without a count.
  public static func run(
    _ s: ValidateSettings, status: (String) -> Void = { _ in },
    progress: (ValidationStage, Int, Int) -> Void = { _, _, _ in }
  ) throws -> ValidationReport {
    let start = Date()
    status("validate: reading \(s.model), checksums, tokenizing…")
    let plan = try PlanFile.read(s.plan)
    // a model whose Float weights would take more than an eighth of the memory is read from its file a weight at a
    // time (the base reference and the layers to quantize; the same numbers)
    let loaded = try LoadedModel.load(
      path: s.model, deferring: { _ in [] }, streaming: try Preflight.streamsWeights(model: s.model))
    let modelSHA = try Measurement.modelSHA256(path: s.model)
    let formats = try PlanFile.formats(of: plan, path: s.plan, modelSHA256: modelSHA, layers: loaded.model.plannableLayers)
    let run = try s.run.map { try RunStore.read($0) }
    if let run, let path = s.run, !run.provenance.modelSHA256.isEmpty, run.provenance.modelSHA256 != modelSHA {
      throw PlanValidationError(
        .modelMismatch,
        "--run '\(path)' was measured on the model with sha256 \(run.provenance.modelSHA256.prefix(12))…, this model's is \(modelSHA.prefix(12))…")
    }
    if let run, let path = s.run { try checkPlanCameFrom(run, path: path, plan: plan, planPath: s.plan) }
    let text = try TokenWindow.readText(s.evalText, option: "--eval")
    let textSHA = SHA256.hexDigest(Array(text.utf8))
    let windows = try EvaluationWindows(
      ids: loaded.tokenizer.encode(text), bos: bos(loaded.tokenizer, s.scoringProtocol), length: s.tokens, count: s.windows,
      protocol: s.scoringProtocol, source: "--eval '\(s.evalText)'")
    if s.tokens > loaded.config.maxPositionEmbeddings {
      throw PlanValidationError(.badSettings, "--tokens \(s.tokens) exceeds the model's context length \(loaded.config.maxPositionEmbeddings)")
    }

    // Layers, calibration and scores of the plan's layers.
    let planned = loaded.model.plannableLayers.filter { formats[$0.name] != nil }
    let shapes = planned.map { LayerShape(name: $0.name, rows: $0.outFeatures, columns: $0.inFeatures) }
    let parameters = planned.reduce(0) { $0 + $1.parameterCount }
    let calibration = calibrationLookup(run)
    let predicted = try predictedLossLookup(run, score: plan.score, layers: planned)
    let target = try planTarget(plan, path: s.plan, formats: formats, shapes: shapes)
    let byteModel = ByteModel.target(target)
    var candidates = run?.candidates.compactMap { QuantFormat($0.name) } ?? defaultCandidates(target, shapes: shapes)
    for f in formats.values.sorted(by: { $0.name < $1.name }) where !candidates.contains(f) { candidates.append(f) }
    let quantizerOf = try quantizerLookup(s.quantizer, plan: plan, run: run, runPath: s.run)
    let inputAware = s.quantizer.map { $0 != .method(.rtn) }
      ?? (plan.layers.values.contains { ($0.quantizer ?? "rtn") != "rtn" }
        || (run?.quantizer.contains { $0.contains { $0 == "gptq" || $0 == "awq" || $0 == "imatrix" } } ?? false))
      // SmoothQuant's s comes from the calibration inputs, whatever the quantizer (the plan's or a baseline's).
      || candidates.contains(where: \.isW8A8)
    var quantizer = PackedQuantizer.roundToNearest
    // GPTQ, AWQ and scale tuning take the calibration text of `--calib`, else the run's.
    let calibrationPath = s.calibrationText
      ?? run.map(\.provenance.calibrationPath).flatMap({ $0.isEmpty || !FileManager.default.fileExists(atPath: $0) ? nil : $0 })
    let calibrationCount = s.calibrationTokens ?? run?.provenance.tokens ?? 512
    if s.tuneSteps > 0 && calibrationPath == nil {
      throw PlanValidationError(
        .badSettings,
        "--tune-steps tunes the scales on the calibration loss: give --calib FILE (or --run RUN.h5 whose recorded "
          + "calib_path still exists)")
    }
    // --repair: the problem the plan came from, and the calibration text its swaps are measured on.
    var repairProblem: PlanRepair.Problem?
    if s.repair > 0 {
      guard let run, let runPath = s.run else {
        throw PlanValidationError(
          .badSettings, "--repair measures the plan's closest calls in the allocation problem of its run: give --run RUN.h5")
      }
      guard calibrationPath != nil else {
        throw PlanValidationError(
          .badSettings,
          "--repair measures its swaps on the calibration text, never on --eval: give --calib FILE (the --run file's "
            + "calib_path '\(run.provenance.calibrationPath)' does not exist)")
      }
      repairProblem = try PlanRepair.problem(plan: plan, planPath: s.plan, runPath: runPath, run: run)
    }
    if inputAware {
      guard let calib = calibrationPath else {
        throw PlanValidationError(
          .badSettings,
          "GPTQ, AWQ, imatrix and w8a8 need the calibration text their layer inputs come from: give --calib FILE (or --run RUN.h5 "
            + "whose recorded calib_path still exists)")
      }
      status("validate: capturing the layer inputs on \(calib)…")
      let count = calibrationCount
      let windowLength = min(count, PackedQuantizer.calibrationWindowLength)
      if windowLength > loaded.config.maxPositionEmbeddings {
        throw PlanValidationError(
          .badSettings,
          "--calib-tokens: windows of \(windowLength) exceed the model's context length \(loaded.config.maxPositionEmbeddings)")
      }
      // The captured inputs: every planned layer's X [count, in] in Float, beside the model.
      let inputFloats = planned.reduce(0.0) { $0 + Double($1.inFeatures) } * Double(count)
      try Preflight.checkMemory(4 * inputFloats + 8 * Double(parameters))
      let windows = try PackedQuantizer.calibrationWindows(path: calib, tokenizer: loaded.tokenizer, count: count)
      let embedding = loaded.model.embeddingLayer.name
      var inputs = try PackedQuantizer.capture(
        loaded.model, windows: windows, layers: planned.map(\.name).filter { $0 != embedding })
      // A tied embedding quantized with an importance matrix takes the LM head's inputs, as `measure` and
      // `bitplan export --imatrix` do; GPTQ and AWQ never see it (no inputs under its name).
      if loaded.model.configuration.tied, let f = formats[embedding], quantizerOf(embedding, f) == .imatrix {
        let head = try PackedQuantizer.capture(loaded.model, windows: windows, layers: [LlamaModel<Float>.lmHeadSlot])
        inputs[embedding] = head[LlamaModel<Float>.lmHeadSlot]
      }
      quantizer = PackedQuantizer(method: quantizerOf, inputs: inputs)
    }

    // The base.
    let packed = PackedModel(loaded, activations: s.activations)
    let baseKey = [
      "model \(modelSHA)", "text \(textSHA)", "protocol \(s.scoringProtocol.rawValue)", "tokens \(s.tokens)",
      "starts \(windows.starts.map(String.init).joined(separator: ","))", "first \(windows.firstScored)",
      "ids \(SHA256.hexDigest(windows.windows.flatMap { $0 }.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }))",
      s.scoringProtocol == .llamaPerplexity ? "activations \(s.activations.rawValue)" : "f32",
    ].joined(separator: "; ")
    let cache = s.cacheDirectory.map { ReferenceCache(directory: $0) }
    // The repair's reference: the unquantized model on the calibration windows, before any layer is packed.
    var repairWindows: [[Int]] = []
    var repairReference: [ReferenceDistribution] = []
    if repairProblem != nil, let calib = calibrationPath {
      status("validate: repair: the unquantized model on \(calib)…")
      repairWindows = try PackedQuantizer.calibrationWindows(path: calib, tokenizer: loaded.tokenizer, count: calibrationCount)
      if let longest = repairWindows.map(\.count).max(), longest > loaded.config.maxPositionEmbeddings {
        throw PlanValidationError(
          .badSettings, "--calib-tokens: windows of \(longest) exceed the model's context length \(loaded.config.maxPositionEmbeddings)")
      }
      repairReference = try PlanRepair.calibrationReference(
        loaded.model, windows: repairWindows, vocabulary: loaded.config.vocabSize)
    }
    if s.scoringProtocol == .llamaPerplexity { try packed.installFileTypes() }
    let base: [ReferenceCache.Window]
    if let cached = cache?.load(key: baseKey), cached.count == windows.windows.count {
      base = cached
      progress(.base, windows.windows.count, windows.windows.count)
    } else {
      var computed: [ReferenceCache.Window] = []
      for (w, tokens) in windows.windows.enumerated() {
        let logits = try scoredLogits(loaded.model, tokens: tokens, firstScored: windows.firstScored)
        let nll = TokenScoring.nll(
          logits: logits, rows: windows.scoredPerWindow, vocabulary: loaded.config.vocabSize, targets: windows.targets(window: w))
        computed.append(
          ReferenceCache.Window(
            nll: nll, reference: ReferenceDistribution(logits: logits, rows: windows.scoredPerWindow, vocabulary: loaded.config.vocabSize)))
        progress(.base, w + 1, windows.windows.count)
      }
      base = computed
      cache?.store(base, key: baseKey)
    }

    // The plan and the baselines.
    var variants: [(name: String, label: String, formats: [String: QuantFormat])] = [
      ("plan", "plan (\(plan.solver), \(plan.score))", formats)
    ]
    if s.tuneSteps > 0 {
      variants.append(("plan-tuned", "plan + tuned scales (\(s.tuneSteps) steps)", formats))
    }
    for kind in s.baselines {
      switch Baselines.make(
        kind, layers: shapes, candidates: candidates,
        budgetBytes: Assignment(formats: formats, layers: shapes, byteModel: byteModel).totalBytes, predictedLoss: predicted,
        tiedEmbedding: loaded.config.tieWordEmbeddings, byteModel: byteModel)
      {
      case .success(let b): variants.append((kind.rawValue, b.label, b.assignment.formats))
      case .failure(let e): status("validate: no \(kind.rawValue) baseline: \(e.message)\n")
      }
    }
    let bootstrap = WindowBootstrap(windows: windows.windows.count, replicates: s.bootstrapReplicates, seed: s.seed)
    var scored: [ScoredModel] = []
    let totalLayers = variants.count * planned.count
    let totalWindows = variants.count * windows.windows.count
    var planLayers: [String: PackedLayer] = [:]
    var tuned: [String: PackedLayer] = [:]
    var tuning: ScaleTuningSummary?
    for (v, variant) in variants.enumerated() {
      if variant.name == "plan-tuned" {
        (tuned, tuning) = try tuneScales(
          s, planLayers: planLayers, calibrationPath: calibrationPath!, calibrationCount: s.tuneTokens ?? calibrationCount,
          status: status
        ) { done, total in progress(.tune, done, total) }
      }
      let used = try packed.install(
        variant.formats, calibration: calibration, quantizer: quantizer, prebuilt: variant.name == "plan-tuned" ? tuned : [:],
        installed: { name, layer in if v == 0 && (s.tuneSteps > 0 || s.repair > 0) { planLayers[name] = layer } }
      ) { done, _ in
        progress(.quantize, v * planned.count + done, totalLayers)
      }
      var positions: [WindowScores] = []
      for (w, tokens) in windows.windows.enumerated() {
        let logits = try scoredLogits(loaded.model, tokens: tokens, firstScored: windows.firstScored)
        positions.append(
          try TokenScoring.score(
            logits: logits, rows: windows.scoredPerWindow, vocabulary: loaded.config.vocabSize,
            targets: windows.targets(window: w), reference: base[w].reference))
        progress(.score, v * windows.windows.count + w + 1, totalWindows)
      }
      let assignment = Assignment(formats: variant.formats, layers: shapes, byteModel: byteModel)
      var counts: [String: Int] = [:]
      for f in variant.formats.values { counts[f.name, default: 0] += 1 }
      var byQuantizer: [String: Int] = [:]
      for m in used.values { byQuantizer[m.rawValue, default: 0] += 1 }
      var model =
        ScoreSummary.summarize(
          name: variant.name, label: variant.label, bytes: assignment.totalBytes, parameters: parameters,
          formatCounts: counts,
          positions: positions,
          baseNLL: base.map(\.nll), starts: windows.starts, bootstrap: bootstrap,
          planKLD: v == 0 ? nil : scored[0].windows.map(\.kld))
      model.quantizerCounts = byQuantizer
      if variant.name == "plan-tuned" { model.tuning = tuning }
      if byQuantizer.keys.contains(where: { $0 != "rtn" }) { model.label += " · " + quantizerLabel(byQuantizer) }
      scored.append(model)
    }
    var repairSummary: RepairSummary?
    if let repairProblem, let calib = calibrationPath {
      let context = PlanRepair.Context(
        packed: packed, plan: plan, formats: formats, planLayers: planLayers, calibration: calibration, quantizer: quantizer,
        calibrationText: calib, calibrationWindows: repairWindows, calibrationReference: repairReference, shapes: shapes,
        byteModel: byteModel, parameters: parameters)
      let result = try PlanRepair.measureAndSolve(
        s, repair: repairProblem, context: context, status: status
      ) { done, total in progress(.repair, done, total) }
      var summary = result.0
      let (repaired, document) = (result.repaired, result.document)
      if let repaired {
        let start = Date()
        var positions: [WindowScores] = []
        for (w, tokens) in windows.windows.enumerated() {
          let logits = try scoredLogits(loaded.model, tokens: tokens, firstScored: windows.firstScored)
          positions.append(
            try TokenScoring.score(
              logits: logits, rows: windows.scoredPerWindow, vocabulary: loaded.config.vocabSize,
              targets: windows.targets(window: w), reference: base[w].reference))
          progress(.score, w + 1, windows.windows.count)
        }
        var counts: [String: Int] = [:]
        for f in repaired.values { counts[f.name, default: 0] += 1 }
        let model = ScoreSummary.summarize(
          name: "plan-repaired", label: "plan repaired (\(summary.changes.count) layers changed, \(summary.swaps.count) swaps measured)",
          bytes: Assignment(formats: repaired, layers: shapes, byteModel: byteModel).totalBytes, parameters: parameters,
          formatCounts: counts, positions: positions, baseNLL: base.map(\.nll), starts: windows.starts, bootstrap: bootstrap,
          planKLD: scored[0].windows.map(\.kld))
        summary.planKLD = scored[0].kld
        summary.repairedKLD = model.kld
        summary.kldMinusPlan = model.kldMinusPlan
        summary.improved = model.kldMinusPlan.map { $0.value < 0 && $0.high < 0 }
        summary.elapsedSeconds += Date().timeIntervalSince(start)
        scored.append(model)
      }
      if let out = s.repairOutput {
        try FileChecks.write(document.jsonData(), to: out, option: "--repair-out")
        summary.repairedPlan = out
      }
      repairSummary = summary
    }
    var report = ValidationReport(
      model: s.model, modelSHA256: modelSHA, plan: s.plan, evalText: s.evalText, evalSHA256: textSHA,
      scoringProtocol: s.scoringProtocol.rawValue, activations: s.activations.rawValue, tokens: s.tokens,
      windowStarts: windows.starts, scoredPerWindow: windows.scoredPerWindow, bootstrapReplicates: s.bootstrapReplicates,
      bootstrapSeed: s.seed, basePerplexity: ScoreSummary.basePerplexity(base.map(\.nll), bootstrap: bootstrap),
      baseDescription: s.scoringProtocol == .llamaPerplexity
        ? "the file's stored types, packed, \(s.activations.rawValue) activations" : "f32 (weights dequantized from the file)",
      models: scored, elapsedSeconds: Date().timeIntervalSince(start))
    report.repair = repairSummary
    return report
  }

  /// The plan's layers with tuned scales (`ScaleTuner`) on a model of its own, loaded again from `s.model` (the
  /// validated one runs packed layers, whose dense weights are released), and what tuning did.
  /// - Returns: every layer of `planLayers`, tuned ones with their new scales, others as they were.
  static func tuneScales(
    _ s: ValidateSettings, planLayers: [String: PackedLayer], calibrationPath: String, calibrationCount: Int,
    status: (String) -> Void, progress: (Int, Int) -> Void
  ) throws -> ([String: PackedLayer], ScaleTuningSummary) {
    status("validate: tuning the plan's scales on \(calibrationPath)…")
    let dense = try LoadedModel.load(path: s.model)
    let tokens = try PackedQuantizer.calibrationTokens(path: calibrationPath, tokenizer: dense.tokenizer, count: calibrationCount)
    let names = Dictionary(uniqueKeysWithValues: dense.model.plannableLayers.map { ($0.name, $0.weightName) })
    let order = planLayers.keys.sorted()
    let layers = order.map { ScaleTuner.Layer(weightName: names[$0]!, packed: planLayers[$0]!.packed, inputScales: planLayers[$0]!.inputScales) }
    let options = ScaleTuner.Options(
      steps: s.tuneSteps, learningRate: s.tuneLearningRate, windowTokens: s.tuneWindowTokens, loss: s.tuneLoss)
    let result = try ScaleTuner.tune(dense.model, layers: layers, tokens: tokens, bos: dense.tokenizer.bosTokenId, options: options) {
      done, total, _ in progress(done, total)
    }
    var tuned = planLayers
    for name in order {
      if let t = result.tuned[names[name]!] { tuned[name]!.packed = t }
    }
    let summary = ScaleTuningSummary(
      steps: s.tuneSteps, learningRate: s.tuneLearningRate, loss: s.tuneLoss.rawValue, windows: result.windows, windowTokens: result.windowTokens,
      tunedLayers: result.tunedLayers, tunedGroups: result.tunedGroups, calibrationLossBefore: result.lossBefore,
      calibrationLossAfter: result.lossAfter, elapsedSeconds: result.elapsedSeconds)
    return (tuned, summary)
  }

  /// The runtime the plan's bytes are counted for (its `target`; `any` when absent), after checking that the
  /// target stores every format the plan gives (a hand-edited plan could name one it cannot).
  /// - Throws: `PlanValidationError.badSettings` for an unknown target, `.unknownFormat` for a format it cannot store.
  static func planTarget(
    _ plan: PlanDocument, path: String, formats: [String: QuantFormat], shapes: [LayerShape]
  ) throws(PlanValidationError) -> Target {
    guard let name = plan.target else { return .any }
    guard let target = Target(name: name) else {
      throw PlanValidationError(
        .badSettings, "'\(path)': unknown target '\(name)' (one of \(Target.names))")
    }
    for l in shapes {
      guard let f = formats[l.name] else { continue }
      if !target.canStore(f, rows: l.rows, columns: l.columns, isEmbedding: l.isEmbedding) {
        throw PlanValidationError(
          .unknownFormat, "'\(path)': \(l.name) [\(l.rows), \(l.columns)] is \(f.name), which target \(name) cannot store")
      }
    }
    return target
  }

  /// The candidates of the baselines when no run is given: the grammar's default list, or for a target every
  /// format it stores for some planned layer (its list, in order, deduplicated).
  static func defaultCandidates(_ target: Target, shapes: [LayerShape]) -> [QuantFormat] {
    if target == .any { return QuantFormat.defaultCandidates }
    var list: [QuantFormat] = []
    for l in shapes {
      for f in target.candidates(rows: l.rows, columns: l.columns, isEmbedding: l.isEmbedding) where !list.contains(f) {
        list.append(f)
      }
    }
    return list
  }

  /// Stores the validation in the run file at `runPath`: the table as `/validation`, `document` (the
  /// VALIDATION.json bytes written) as `/validation/document`, and the SHA-256 of the plan file validated as its
  /// `plan_sha256`, so that a report can tell whether it ran the plan the run file holds (`/plan`).
  /// - Throws: `FileCheckError` when the plan cannot be read, `SensitivityError` for the run file.
  /// Refuses a `--run` the plan cannot have been allocated from: a planned layer the run did not measure, or a format
  /// the run did not offer that layer. The validation is stored in the run and read beside its plan, so a plan of
  /// another run (of the same model) would be reported against the wrong measurements.
  /// - Throws: `PlanValidationError.badSettings` naming both files, the layer and the format.
  static func checkPlanCameFrom(
    _ run: MeasuredRun, path: String, plan: PlanDocument, planPath: String
  ) throws(PlanValidationError) {
    let index = Dictionary(run.layers.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    for (name, layer) in plan.layers.sorted(by: { $0.key < $1.key }) {
      guard let l = index[name] else {
        throw PlanValidationError(
          .badSettings,
          "'\(planPath)' plans \(PlanDocument.excerpt(name)), which --run '\(path)' did not measure: the plan comes from "
            + "another run; give that run, or none")
      }
      let offered = run.candidates.indices.contains { run.candidates[$0].name == layer.format && run.bytes[l][$0] >= 0 }
      guard offered else {
        throw PlanValidationError(
          .badSettings,
          "'\(planPath)' gives \(name) \(PlanDocument.excerpt(layer.format)), which --run '\(path)' did not offer it: "
            + "the plan comes from another run; give that run, or none")
      }
    }
  }

  public static func store(_ report: ValidationReport, document: Data, planPath: String, in runPath: String) throws {
    guard let plan = FileManager.default.contents(atPath: planPath) else {
      throw FileCheckError(.missingInput, option: "PLAN.json", path: planPath, "cannot be read")
    }
    try RunStore.attachValidation(
      runTable(report), document: document, planSHA256: SHA256.hexDigest([UInt8](plan)), to: runPath)
  }

  /// The report's table in the run file's terms (`/validation`).
  public static func runTable(_ r: ValidationReport) -> MeasuredRun.ValidationTable {
    var t = MeasuredRun.ValidationTable()
    t.name = r.models.map(\.name)
    t.label = r.models.map(\.label)
    t.bytes = r.models.map(\.bytes)
    t.bitsPerWeight = r.models.map(\.bitsPerWeight)
    t.kld = r.models.map(\.kld.value)
    t.kldLow = r.models.map(\.kld.low)
    t.kldHigh = r.models.map(\.kld.high)
    t.perplexity = r.models.map(\.perplexity.value)
    t.perplexityLow = r.models.map(\.perplexity.low)
    t.perplexityHigh = r.models.map(\.perplexity.high)
    t.top1 = r.models.map(\.top1.value)
    t.scoringProtocol = r.scoringProtocol
    t.activations = r.activations
    t.evalSHA256 = r.evalSHA256
    t.plan = r.plan
    t.tokens = r.tokens
    t.windows = r.windowStarts.count
    return t
  }

  /// The BOS the windows start with: always under `bitplan` (DESIGN.md's window protocol), and under
  /// `llama-perplexity` only when the model asks for one (`tokenizer.ggml.add_bos_token`), as llama.cpp's
  /// tokenizer does: SmolLM2's GGUF says false, so llama-perplexity's chunks are plain slices of the text.
  static func bos(_ tokenizer: BPETokenizer, _ scoringProtocol: EvaluationWindows.ScoringProtocol) -> Int? {
    scoringProtocol == .llamaPerplexity && !tokenizer.addBOS ? nil : tokenizer.bosTokenId
  }

  /// The logits of the scored predictions of one window: rows `firstScored ..< T − 1`, `[rows, V]`.
  static func scoredLogits(_ model: LlamaModel<Float>, tokens: [Int], firstScored: Int) throws -> [Float] {
    let logits = try model.logits(tokens: tokens)
    if firstScored == 0 { return logits.storage }
    return Array(logits.storage[(firstScored * logits.columns)...])
  }

  /// "gptq" when every layer used it, else the counts ("150 gptq, 60 rtn"), most first.
  static func quantizerLabel(_ counts: [String: Int]) -> String {
    if counts.count == 1 { return counts.keys.first! }
    return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
  }

  /// (layer, format) → the quantizer that chooses its codes (see `ValidateSettings.quantizer`).
  /// - Throws: `PlanValidationError.badSettings` for `best` without a run that recorded its winners.
  static func quantizerLookup(
    _ choice: QuantizerChoice?, plan: PlanDocument, run: MeasuredRun?, runPath: String?
  ) throws -> (String, QuantFormat) -> QuantizerMethod {
    if case .method(let m) = choice { return { _, _ in m } }
    let layerIndex = Dictionary(uniqueKeysWithValues: (run?.layers ?? []).enumerated().map { ($1.name, $0) })
    let candidateIndex = Dictionary(uniqueKeysWithValues: (run?.candidates ?? []).enumerated().map { ($1.name, $0) })
    let recorded = { (layer: String, format: QuantFormat) -> QuantizerMethod? in
      guard let run, let l = layerIndex[layer], let c = candidateIndex[format.name] else { return nil }
      return QuantizerMethod(rawValue: run.quantizer[l][c])
    }
    if choice == .best {
      guard let run, run.provenance.quantizer == "best" else {
        throw PlanValidationError(
          .badSettings,
          "--quantizer best takes each layer's winner from a run measured with --quantizer best: give --run RUN.h5 "
            + (runPath.map { "('\($0)' was measured with --quantizer \(run?.provenance.quantizer ?? "rtn"))" } ?? ""))
      }
      return { layer, format in recorded(layer, format) ?? .rtn }
    }
    let planned = plan.layers.mapValues { ($0.format, QuantizerMethod(rawValue: $0.quantizer ?? "rtn") ?? .rtn) }
    let methods = Set(planned.values.map(\.1))
    let uniform = methods.count == 1 ? methods.first! : QuantizerMethod.rtn
    return { layer, format in
      if let (f, m) = planned[layer], f == format.name { return m }
      return recorded(layer, format) ?? uniform
    }
  }

  /// (layer, format) → the calibration `measure` recorded, from the run file.
  static func calibrationLookup(_ run: MeasuredRun?) -> (String, QuantFormat) -> RangeCalibration? {
    guard let run else { return { _, _ in nil } }
    let layerIndex = Dictionary(uniqueKeysWithValues: run.layers.enumerated().map { ($1.name, $0) })
    let candidateIndex = Dictionary(uniqueKeysWithValues: run.candidates.enumerated().map { ($1.name, $0) })
    return { layer, format in
      guard let l = layerIndex[layer], let c = candidateIndex[format.name] else { return nil }
      return RangeCalibration(recorded: run.calibrationMethod[l][c])
    }
  }

  /// (index into `layers`, format) → the run's predicted loss under `score`, for ranking baselines.
  static func predictedLossLookup(
    _ run: MeasuredRun?, score: String, layers: [LinearLayer]
  ) throws -> ((Int, QuantFormat) -> Double?)? {
    guard let run, let columns = try? run.problemColumns(score: score) else { return nil }
    let byName = Dictionary(uniqueKeysWithValues: columns.map { ($0.name, $0) })
    let table: [[String: Double]] = layers.map { l in
      guard let c = byName[l.name] else { return [:] }
      return Dictionary(zip(c.formats, c.loss), uniquingKeysWith: { a, _ in a })
    }
    return { i, f in table[i][f.name] }
  }
}
