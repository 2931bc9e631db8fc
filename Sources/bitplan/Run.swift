import ArgumentParser
import Allocation
import Foundation
import ModelIO
import Pipeline
import Quantization
import Reporting
import Sensitivity
import TensorCore
import Validation

/// `bitplan run MODEL --calib FILE --eval FILE (--budget B | --bpw X) [--target T,…] -o DIR`: the whole pipeline
/// (measure → allocate → validate → report → export) into one directory, resumable stage by stage.
struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure, allocate, validate, report and export in one resumable command, into a directory.",
    discussion: """
      One target: DIR holds run.h5 (with /plan and /validation), plan.json, VALIDATION.json, report.md, \
      report.html and the target's export (llama-cpp: llama-cpp-recipe.txt, llama-cpp-imatrix.gguf (the run's importance \
      matrix, for llama-quantize --imatrix) and, for a GGUF model, the mixed GGUF model-bitplan.gguf (weighed by \
      that matrix with --quantizer imatrix) \
      as bitplan quantize writes it; mlx: mlx-quantization.json; gptqmodel: gptqmodel-config.json; llm-compressor: \
      llm-compressor-recipe.yaml; any: plan-tensors.json). Several targets (--target llama-cpp,gptqmodel): one \
      measurement whose candidates are the union of the targets' (the token embedding measured when a target \
      quantizes it), then per target the same files in DIR/<target>/; run.h5 holds the last target's plan and \
      validation. DIR/run-state.json records the arguments and the finished stages: running the same command \
      again continues where it stopped (a killed measurement resumes from run.h5.partial); other arguments on the \
      same DIR are refused unless --restart. The measurement and validation options are those of bitplan measure \
      and bitplan validate, with their defaults.
      """)

  @OptionGroup var modelArgument: ModelArgument
  @OptionGroup var calibrationText: CalibrationText
  @OptionGroup var evaluationText: EvaluationText
  var model: String { modelArgument.model }
  var calib: String { calibrationText.calib }
  var eval: String { evaluationText.eval }
  @Option(parsing: .unconditional, help: "Byte budget: 123456, 80MiB, 80MB, 1.5GiB.") var budget: String?
  @Option(parsing: .unconditional, help: "Budget in bits per weight over the planned weights.") var bpw: String?
  @Option(help: "Runtimes to plan for, comma-separated: llama-cpp, mlx, gptqmodel, llm-compressor, any.")
  var target = "any"
  @Option(help: ArgumentHelp("Measure only these formats (comma-separated); each target then keeps those it stores. Default: every format of every target.", valueName: "LIST"))
  var candidates: String?
  @Option(help: ArgumentHelp("Quantizer of every candidate and layer: rtn (round to nearest), gptq, awq, imatrix (GGML types, llama.cpp's importance matrix), or best (rtn, gptq and awq where they apply, least output error kept).", valueName: "name"))
  var quantizer = "rtn"
  @Option(parsing: .unconditional, help: "Calibration tokens, BOS included.") var tokens = 512
  @Option(parsing: .unconditional, help: "Leading calibration tokens for Hessian-vector products.") var hvpTokens = 128
  @Option(parsing: .unconditional, help: "Maximum Hutchinson probes.") var probes = 64
  @OptionGroup var seedOption: SeedOption
  var seed: UInt64 { seedOption.seed }
  @Option(parsing: .unconditional, help: "Audit N random single-layer quantizations on the evaluation text.") var audit = 0
  @Option(parsing: .unconditional, help: "Validation tokens per window, BOS included.") var evalTokens = 512
  @Option(parsing: .unconditional, help: "Validation windows spread over the evaluation text.") var windows = 8
  @Flag(help: "Neither read nor write the cache of the base model's validation scores.") var noCache = false
  @Flag(help: "Start again in DIR: delete what an earlier bitplan run wrote there first.") var restart = false
  @OptionGroup var outputFolder: OutputFile<RunFolderOutput>
  @OptionGroup var jsonFlag: JSONFlag
  var output: String { outputFolder.output }
  var json: Bool { jsonFlag.json }

  /// The targets of `--target`, in order, without repeats.
  var targets: [Target] {
    get throws {
      var list: [Target] = []
      for name in target.split(separator: ",", omittingEmptySubsequences: false) {
        guard let t = Target(name: String(name).trimmingCharacters(in: .whitespaces)) else {
          throw ValidationError("--target: unknown '\(name)'; expected \(Target.names), comma-separated")
        }
        if !list.contains(t) { list.append(t) }
      }
      return list
    }
  }

  func validate() throws {
    guard (budget == nil) != (bpw == nil) else { throw ValidationError("give exactly one of --budget and --bpw") }
    // A usage error here (64), before any stage runs, as allocate gives for the same values.
    if let budget {
      do { _ = try Budget.parse(budget) } catch { throw ValidationError("--budget: \(error.message)") }
    }
    if let bpw {
      do { _ = try Budget.bitsPerWeight(bpw) } catch { throw ValidationError("--bpw: \(error.message)") }
    }
    _ = try targets
    if let candidates {
      do { _ = try QuantFormat.parseList(candidates) } catch { throw ValidationError("--candidates '\(candidates)': \(error)") }
    }
    guard QuantizerChoice(quantizer) != nil else {
      throw ValidationError("--quantizer '\(quantizer)': expected \(QuantizerChoice.names)")
    }
    guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2, got \(tokens)") }
    guard hvpTokens >= 2 && hvpTokens <= tokens else {
      throw ValidationError("--hvp-tokens must be in 2...--tokens (\(tokens)), got \(hvpTokens)")
    }
    guard probes >= 1 && probes <= 1_000_000 else { throw ValidationError("--probes must be in 1...1000000, got \(probes)") }
    guard audit >= 0 && audit <= 1_000_000 else { throw ValidationError("--audit must be in 0...1000000, got \(audit)") }
    guard evalTokens >= 4 else { throw ValidationError("--eval-tokens must be at least 4, got \(evalTokens)") }
    guard windows >= 1 && windows <= 100_000 else { throw ValidationError("--windows must be in 1...100000, got \(windows)") }
  }

  /// Every argument that changes what is written (the state file's `arguments`).
  func recordedArguments() throws -> [String: String] {
    func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
    var a = [
      "MODEL": absolute(model), "--calib": absolute(calib), "--eval": absolute(eval),
      "--target": try targets.map(\.rawValue).joined(separator: ","), "--quantizer": quantizer,
      "--tokens": "\(tokens)", "--hvp-tokens": "\(hvpTokens)", "--probes": "\(probes)", "--seed": "\(seed)",
      "--audit": "\(audit)", "--eval-tokens": "\(evalTokens)", "--windows": "\(windows)",
    ]
    if let budget { a["--budget"] = budget }
    if let bpw { a["--bpw"] = bpw }
    if let candidates { a["--candidates"] = candidates }
    return a
  }

  /// Takes an exclusive lock on the run directory (`flock` on the folder itself), held until the process ends: a
  /// second `bitplan run` on the same -o is refused at once. Two runs at once shared `run.h5.tmp` and
  /// `run-state.json`, and one could leave a damaged run.h5 or the other's plans under its own summary.
  /// - Returns: whether the lock is held (false when the folder does not exist yet; call again once created).
  static func lock(_ directory: String) throws -> Bool {
    let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard descriptor >= 0 else { return false }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      close(descriptor)
      throw CommandError(
        "-o '\(directory)' is in use by another bitplan run; wait for it to finish, or use another -o DIR",
        status: .cannotCreate)
    }
    return true  // the descriptor stays open, and the lock held, for the rest of the process
  }

  func run() throws {
    HeapPolicy.keepLargeArraysInHeap()
    let targets = try self.targets
    let directory = output
    let arguments = try recordedArguments()
    try checkInputs(directory: directory)
    var locked = try Self.lock(directory)
    // The state: a new one, the one to resume, or an error for other arguments.
    var state = RunPipeline.State(arguments: arguments, build: RunPipeline.State.currentBuild)
    if restart {
      try clear(directory)
    } else if let old = try RunPipeline.State.load(directory: directory) {
      let differences = old.differences(from: arguments)
      guard differences.isEmpty else {
        throw CommandError(
          "-o '\(directory)' holds a run made with other arguments (\(differences.joined(separator: "; "))); use a new -o DIR, or --restart to start it again")
      }
      if let build = old.build, build != state.build {
        // another build may compute other numbers: its stages are not this build's to skip
        printToStandardError("bitplan run: -o '\(directory)' was begun by another build of bitplan; starting it again")
        try clear(directory)
      } else {
        state = old
        state.build = state.build ?? RunPipeline.State.currentBuild
        // Every file of a finished stage must be what that stage wrote; the first that is not is done again.
        if let redo = try state.verify(directory: directory) { printToStandardError("bitplan run: \(redo)") }
      }
    } else if let entries = try? FileManager.default.contentsOfDirectory(atPath: directory), !entries.isEmpty {
      // Without a state file, only a measurement cut short by a kill (run.h5.partial and its side files) is resumed.
      if entries.contains(where: { !$0.hasPrefix("run.h5.partial") }) {
        throw CommandError("-o '\(directory)' is not empty and holds no \(RunPipeline.State.fileName); use a new or empty -o DIR")
      }
    }
    do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
      throw CommandError("-o '\(directory)': cannot create the directory: \(error.localizedDescription)", status: .cannotCreate)
    }
    if !locked { locked = try Self.lock(directory) }

    var stageNames = ["measure"]
    for t in targets { stageNames += ["allocate", "validate", "report", "export"].map { "\($0) \(t.rawValue)" } }
    let display = RunDisplay(stages: stageNames)
    let runPath = directory + "/run.h5"
    var summaries: [TargetSummary] = []
    defer { display.finish() }

    // Stage 1: one measurement for every target.
    try stage("measure", &state, display, directory) {
      let summary = try measure(targets: targets, output: runPath, display: display)
      display.detail["measure"] = Measure.stageTimes(summary)
      return ["run.h5"]
    }
    for t in targets {
      let folder = targets.count == 1 ? "" : t.rawValue + "/"
      let targetDirectory = directory + "/" + folder
      if !folder.isEmpty {
        do { try FileManager.default.createDirectory(atPath: targetDirectory, withIntermediateDirectories: true) } catch {
          throw CommandError("-o '\(directory)': cannot create '\(targetDirectory)': \(error.localizedDescription)", status: .cannotCreate)
        }
      }
      let planPath = targetDirectory + "plan.json", validationPath = targetDirectory + "VALIDATION.json"
      try stage("allocate \(t.rawValue)", &state, display, directory, rewritesRun: true) {
        let planned = try RunPipeline.allocate(runPath: runPath, budget: budget, bpw: bpw, target: t)
        try FileChecks.write(planned.document, to: planPath, option: "-o")
        try RunStore.recordPlan(RunPlanRecord(plan: planned.plan, document: planned.document, target: planned.target), to: runPath)
        return [folder + "plan.json"]
      }
      try stage("validate \(t.rawValue)", &state, display, directory, rewritesRun: true) {
        var settings = ValidateSettings(model: model, plan: planPath, evalText: eval)
        settings.run = runPath
        settings.tokens = evalTokens
        settings.windows = windows
        settings.seed = seed
        settings.cacheDirectory = noCache ? nil : ReferenceCache().directory
        settings.calibrationText = calib
        let name = "validate \(t.rawValue)"
        let stages = ValidationStage.allCases.filter { $0 != .tune }  // run does not tune scales
        let report = try PlanValidation.run(settings, progress: { s, done, total in
          // One bar over the three validation steps: base, quantize, score.
          let k = stages.firstIndex(of: s) ?? 0
          display.update(stage: name, done: k * 1000 + 1000 * done / max(total, 1), total: 1000 * stages.count, final: false)
        })
        let data = try report.jsonData()
        try FileChecks.write(data, to: validationPath, option: "-o")
        try PlanValidation.store(report, document: data, planPath: planPath, in: runPath)
        return [folder + "VALIDATION.json"]
      }
      try stage("report \(t.rawValue)", &state, display, directory) {
        let written = try Report.write(run: runPath, plan: planPath, validation: validationPath, directory: targetDirectory)
        return written.map { relative($0, to: directory) }
      }
      try stage("export \(t.rawValue)", &state, display, directory) {
        try export(target: t, plan: planPath, directory: targetDirectory, run: runPath).map { folder + $0 }
      }
      summaries.append(try TargetSummary(target: t, directory: directory, folder: folder, state: state))
    }
    display.finish()
    try printSummary(state: state, summaries: summaries, directory: directory)
  }

  // MARK: - Stages

  /// Runs `body` unless the state records `name` as finished (`State.verify` has dropped the stages whose files
  /// changed); records it afterwards with the size and SHA-256 of its files, and of run.h5 when it `rewritesRun`
  /// (allocate and validate store the plan and the validation there). With the hidden
  /// `BITPLAN_RUN_KILL_AFTER=<stage>` the process kills itself (SIGKILL) right after recording that stage, as a
  /// kill at that moment would (for the resume tests).
  private func stage(
    _ name: String, _ state: inout RunPipeline.State, _ display: RunDisplay, _ directory: String,
    rewritesRun: Bool = false, _ body: () throws -> [String]
  ) throws {
    if state.finished(name) != nil {
      display.skipped(name)
      return
    }
    let start = Date()
    display.update(stage: name, done: 0, total: 1, final: false)
    let outputs = try body()
    let seconds = Date().timeIntervalSince(start)
    try state.finish(
      .init(name: name, outputs: outputs, seconds: seconds), alsoRewritten: rewritesRun ? ["run.h5"] : [], in: directory)
    try state.write(directory: directory)
    display.update(stage: name, done: 1, total: 1, final: true)
    if ProcessInfo.processInfo.environment["BITPLAN_RUN_KILL_AFTER"] == name { kill(getpid(), SIGKILL) }
  }

  /// Measures for every target at once: one target as `measure --target T`; several with target `any` and the
  /// union of their candidates (the embedding measured when one of them quantizes it).
  private func measure(targets: [Target], output: String, display: RunDisplay) throws -> MeasurementSummary {
    var settings = MeasureSettings()
    settings.tokens = tokens
    settings.hvpTokens = hvpTokens
    settings.probes = probes
    settings.seed = seed
    // as `measure`: a model read from its file a weight at a time does not keep the Hutchinson diagonal
    settings.keepsHessianDiagonal = (try? Preflight.streamsWeights(model: model)) != true
    settings.auditCount = audit
    settings.quantizer = QuantizerChoice(quantizer)!
    settings.includesTokenEmbedding = targets.contains(where: \.storesTokenEmbedding)
    if let candidates {
      // The given formats, measured with target `any`'s bytes; each target's allocation keeps what it stores.
      settings.target = targets.count == 1 ? targets[0] : .any
      settings.candidates = try QuantFormat.parseList(candidates)
    } else if targets.count == 1 {
      settings.target = targets[0]
    } else {
      let loaded = try LoadedModel.load(path: model)
      var shapes = loaded.model.linearLayers.map { (rows: $0.outFeatures, columns: $0.inFeatures, isEmbedding: false) }
      if settings.includesTokenEmbedding {
        let e = loaded.model.embeddingLayer
        shapes.append((rows: e.outFeatures, columns: e.inFeatures, isEmbedding: true))
      }
      settings.target = .any
      settings.candidates = RunPipeline.candidates(for: targets, shapes: shapes)
    }
    let measurement = Measurement(
      modelPath: model, calibrationPath: calib, auditTextPath: audit > 0 ? eval : nil, outputPath: output,
      settings: settings, toolVersion: BitPlanCommand.configuration.version)
    return try measurement.run { stage, done, total in
      // Fisher, Hessian, layers and audit as one bar: each sub-stage a quarter.
      let order: [MeasurementStage] = [.fisher, .hessian, .eigenvalues, .layers, .audit]
      let k = order.firstIndex(of: stage) ?? 0
      display.update(stage: "measure", done: k * 1000 + 1000 * done / max(total, 1), total: 1000 * order.count, final: false)
    }
  }

  /// The target's export(s) into `directory`; returns the file names written. llama-cpp: the recipe, the run's
  /// importance matrix (`llama-cpp-imatrix.gguf`, for `llama-quantize --imatrix`) and the mixed GGUF (weighed by
  /// that matrix when the run's quantizer is imatrix).
  private func export(target: Target, plan planPath: String, directory: String, run runPath: String) throws -> [String] {
    let document = try PlanFile.read(planPath)
    let file = try ModelFile(path: model)
    let format: ExportFormat, name: String
    switch target {
    case .llamaCpp: (format, name) = (.llamaCpp, "llama-cpp-recipe.txt")
    case .mlx: (format, name) = (.mlx, "mlx-quantization.json")
    case .gptqmodel: (format, name) = (.gptqmodel, "gptqmodel-config.json")
    case .llmCompressor: (format, name) = (.llmCompressor, "llm-compressor-recipe.yaml")
    case .any: (format, name) = (.json, "plan-tensors.json")
    }
    var written: [String] = []
    if format == .llamaCpp, case .gguf = file {} else if format == .llamaCpp {
      throw CommandError("MODEL '\(model)': the llama-cpp recipe needs a GGUF model; convert it with convert_hf_to_gguf.py first")
    }
    let rendered: (data: Data, warnings: [String])
    do { rendered = try format.render(document, tensors: file.tensorInfos) } catch {
      throw CommandError("'\(planPath)': \(error.message)")
    }
    try FileChecks.write(rendered.data, to: directory + name, option: "-o")
    written.append(name)
    if format == .llamaCpp {
      let importance = "llama-cpp-imatrix.gguf"
      do {
        let matrix = try LlamaCppImatrix(run: try RunStore.read(runPath), tensors: file.tensorInfos).serialized()
        try FileChecks.write(Data(matrix), to: directory + importance, option: "-o")
      } catch let error as ExportError {
        throw CommandError("'\(runPath)': \(error.message)")
      }
      written.append(importance)
      // The mixed GGUF itself (re-encoding a model of this size takes seconds), weighed by the importance matrix
      // when the plan's layers were measured that way (--quantizer imatrix), so that it is the model validated.
      let gguf = "model-bitplan.gguf"
      _ = try GGUFQuantize.run(
        model: model, plan: planPath, output: directory + gguf,
        importanceMatrix: quantizer == QuantizerMethod.imatrix.rawValue ? directory + importance : nil,
        calibrationText: calib, calibrationTokens: tokens)
      written.append(gguf)
    }
    return written
  }

  /// Deletes what an earlier run wrote in `directory` (the files its state names, the run file and its partial
  /// files, the state): files only, never a folder's contents wholesale.
  private func clear(_ directory: String) throws {
    var names = ["run.h5", "run.h5.tmp", RunPipeline.State.fileName, Self.summaryFile]
    if let old = try? RunPipeline.State.load(directory: directory) { names += old.stages.flatMap(\.outputs) }
    names += ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("run.h5.partial") }
    for name in Set(names) { unlink(directory + "/" + name) }
  }

  /// Every input must exist and be a file (the model may be a folder), the texts must be readable UTF-8, -o must be a
  /// directory or absent, and the model's config must hold every window (--tokens, --eval-tokens): before anything
  /// is created.
  private func checkInputs(directory: String) throws {
    try FileChecks.check(
      inputs: [
        InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "--calib", path: calib),
        InputPath(option: "--eval", path: eval),
      ], outputs: [])
    _ = try TokenWindow.readText(calib, option: "--calib")
    _ = try TokenWindow.readText(eval, option: "--eval")
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
      throw CommandError("-o '\(directory)': not a directory; bitplan run writes a directory of files")
    }
    try Preflight.checkTokens(model: model, [("--tokens", tokens), ("--eval-tokens", evalTokens)])
  }

  private func relative(_ path: String, to directory: String) -> String {
    let prefix = directory.hasSuffix("/") ? directory : directory + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
  }

  // MARK: - Summary

  /// One target's results, read back from its files (so a resumed run summarises stages done earlier too).
  struct TargetSummary: Encodable {
    struct Model: Encodable {
      var name: String
      var bytes: Int
      var bitsPerWeight: Double
      var kld: Double
      var kldLow: Double
      var kldHigh: Double
    }
    var target: String
    var plan: Model
    var baselines: [Model]
    var files: [String]

    init(target: Target, directory: String, folder: String, state: RunPipeline.State) throws {
      let path = directory + "/" + folder + "VALIDATION.json"
      guard let data = FileManager.default.contents(atPath: path) else {
        throw CommandError("'\(path)' cannot be read", status: .ioError)
      }
      let report: ValidationReport
      do { report = try JSONDecoder().decode(ValidationReport.self, from: data) } catch {
        throw CommandError(
          "'\(path)' is not a VALIDATION.json from bitplan validate (\(oneLineDecodingMessage(error)))", status: .dataError)
      }
      let models = report.models.map {
        Model(name: $0.name, bytes: $0.bytes, bitsPerWeight: $0.bitsPerWeight, kld: $0.kld.value, kldLow: $0.kld.low, kldHigh: $0.kld.high)
      }
      guard let first = models.first else { throw CommandError("'\(path)' holds no model", status: .ioError) }
      self.target = target.rawValue
      plan = first
      baselines = Array(models.dropFirst())
      files = state.stages.filter { $0.name.hasSuffix(" \(target.rawValue)") }.flatMap(\.outputs)
    }
  }

  private func printSummary(state: RunPipeline.State, summaries: [TargetSummary], directory: String) throws {
    let seconds = Dictionary(state.stages.map { ($0.name, $0.seconds) }, uniquingKeysWith: { a, _ in a })
    if json {
      struct Summary: Encodable {
        var directory: String
        var run: String
        var stageSeconds: [String: Double]
        var targets: [TargetSummary]
      }
      return try printJSON(Summary(directory: directory, run: "run.h5", stageSeconds: seconds, targets: summaries))
    }
    func kld(_ m: TargetSummary.Model) -> String { String(format: "%.4g [%.4g, %.4g]", m.kld, m.kldLow, m.kldHigh) }
    let baselineNames = summaries.flatMap { $0.baselines.map(\.name) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    var rows = [["target", "bytes", "bpw", "plan KLD [95% CI]"] + baselineNames.map { "\($0) KLD [95% CI]" }]
    for s in summaries {
      rows.append(
        [s.target, grouped(s.plan.bytes), String(format: "%.3f", s.plan.bitsPerWeight), kld(s.plan)]
          + baselineNames.map { n in s.baselines.first { $0.name == n }.map(kld) ?? "—" })
    }
    let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
    var lines = rows.map { zip($0, widths).map { pad($0, $1) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) }
    for s in summaries { lines.append("\(s.target): \(s.files.joined(separator: ", "))") }
    let times = state.stages.map { "\($0.name) \(String(format: "%.1f", $0.seconds)) s" }.joined(separator: ", ")
    lines.append("\(directory): run.h5, \(RunPipeline.State.fileName), \(Self.summaryFile); stages: \(times)")
    let text = lines.joined(separator: "\n") + "\n"
    try FileChecks.write(Data(text.utf8), to: directory + "/" + Self.summaryFile, option: "-o")
    print(text, terminator: "")
  }

  /// The closing summary table, also kept in the run directory.
  static let summaryFile = "summary.txt"
}

/// The progress of `bitplan run`: one line `[k/n] stage  percent  ETA` on a terminal (`ProgressLine`), plain lines
/// on stderr otherwise (one when a stage starts, one when it ends, with its time; the measure's also with its
/// sub-stages' times).
final class RunDisplay {
  private let line: ProgressLine
  private var started: [String: Date] = [:]
  /// What the plain "done" line of a stage adds after its time (the measurement's sub-stage times).
  var detail: [String: String] = [:]

  init(stages: [String]) { line = ProgressLine(stages: stages) }

  private func index(_ stage: String) -> String { "[\((line.stages.firstIndex(of: stage) ?? 0) + 1)/\(line.stages.count)]" }

  /// `done` of `total` units of `stage`; `final` when the stage has finished.
  func update(stage: String, done: Int, total: Int, final: Bool) {
    if line.enabled {
      line.update(stage: stage, done: final ? total : min(done, total - 1), total: total)
      return
    }
    if started[stage] == nil {
      started[stage] = Date()
      printToStandardError("bitplan run \(index(stage)) \(stage) …")
    } else if final, let start = started[stage] {
      printToStandardError("bitplan run \(index(stage)) \(stage) done in \(String(format: "%.1f", Date().timeIntervalSince(start))) s\(detail[stage].map { " (\($0))" } ?? "")")
    }
  }

  /// A stage finished in an earlier run.
  func skipped(_ stage: String) {
    line.finish()
    printToStandardError("bitplan run \(index(stage)) \(stage): done earlier, skipped")
  }

  func finish() { line.finish() }
}
