import ArgumentParser
import Foundation
import Pipeline
import Quantization
import Sensitivity
import TensorCore
import Validation

/// `bitplan validate MODEL PLAN.json --eval FILE -o VALIDATION.json`: the plan and same-size baselines, run packed,
/// scored against the base model with bootstrap intervals over windows.
struct Validate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a plan packed on evaluation windows and compare it with same-size baselines (KLD, PPL, top-1, 95% intervals).",
    discussion: """
      Every planned layer is quantized from the model file in its format (with the calibration measure recorded \
      when --run is given) and run from its packed bytes: int8 activations through the C kernels by default, \
      Float activations with --activations f32. Baselines have at most the plan's bytes: uniform (the best single \
      candidate format), q4km (llama.cpp's Q4_K_M rule mapped onto the candidates, filled to the budget), edges \
      (first and last blocks high). --protocol llama-perplexity cuts and scores windows as llama.cpp's \
      llama-perplexity --kl-divergence does (consecutive chunks, second half scored) against the file's own types \
      run packed. The base model's scores are cached under ~/.cache/bitplan/validation (--no-cache to skip).
      """)

  @OptionGroup var modelArgument: ModelArgument
  var model: String { modelArgument.model }
  @OptionGroup var planArgument: PlanArgument
  var plan: String { planArgument.plan }
  @OptionGroup var evaluationText: EvaluationText
  var eval: String { evaluationText.eval }
  @Option(parsing: .unconditional, help: "Tokens per window, BOS included.") var tokens = 512
  @Option(parsing: .unconditional, help: "Evaluation windows (bitplan: spread over the text; llama-perplexity: the first K chunks).")
  var windows = 8
  @Option(name: .customLong("protocol"), help: "bitplan or llama-perplexity.") var scoringProtocol = "bitplan"
  @OptionGroup var activationsOption: ActivationsOption
  var activations: String { activationsOption.activations }
  @Option(help: ArgumentHelp("Quantizer of every layer, plan and baselines: rtn, gptq, awq, imatrix, or best (each layer's winner recorded by measure --quantizer best). Default: as the plan and --run record.", valueName: "name"))
  var quantizer: String?
  // Not CalibrationText: optional here (GPTQ, AWQ and scale tuning only), defaulting to the run's recorded text.
  @Option(help: ArgumentHelp("Calibration text GPTQ and AWQ take layer inputs from and --tune-steps tunes on (default: the --run file's calib_path).", valueName: "file"))
  var calib: String?
  @Option(parsing: .unconditional, help: ArgumentHelp("Calibration tokens GPTQ and AWQ take layer inputs from, BOS included, in windows of 512 (default: the --run file's --tokens, else 512).", valueName: "N"))
  var calibTokens: Int?
  @Option(parsing: .unconditional, help: ArgumentHelp("Adam steps of scale tuning after the plan (codes fixed, per-group scales of the integer formats moved on the calibration loss; needs --calib or --run): one more row, plan-tuned. 0: off.", valueName: "n"))
  var tuneSteps = 0
  @Option(parsing: .unconditional, help: ArgumentHelp("Adam's step size on the log-scales for --tune-steps.", valueName: "x"))
  var tuneLr = ScaleTuner.Options.defaultLearningRate
  @Option(help: ArgumentHelp("What --tune-steps descends: kld (KL from the unquantized model's next-token distributions) or nll (the calibration text's NLL).", valueName: "loss"))
  var tuneLoss = "kld"
  @Option(parsing: .unconditional, help: ArgumentHelp("Calibration tokens --tune-steps cycles through, BOS included (default: --run's tokens, else 512). Under kld the teacher's distributions take 25 MB per 128 tokens on a 49k vocabulary.", valueName: "n"))
  var tuneTokens: Int?
  @Option(parsing: .unconditional, help: ArgumentHelp("After scoring, measure the plan's N closest calls (single-layer swaps whose predicted rate is nearest the budget's multiplier) end to end on the calibration text, re-solve exactly with the measurements and score the repaired plan (needs --run). 0: off; at most 64.", valueName: "N"))
  var repair = 0
  @Option(help: ArgumentHelp("Write the repaired plan there (with --repair; the plan itself when nothing changed).", valueName: "PLAN.json"))
  var repairOut: String?
  @Option(help: "Comma-separated baselines: uniform,q4km,edges, or none.") var baselines = "uniform,q4km,edges"
  @Option(name: .customLong("run"), help: ArgumentHelp("The run file the plan came from: its recorded calibrations and scores; the table and VALIDATION.json are stored in it as /validation.", valueName: "RUN.h5"))
  var runFile: String?
  @Option(parsing: .unconditional, help: "Bootstrap resamples of the windows.") var bootstrap = 2000
  @OptionGroup var seedOption: SeedOption
  var seed: UInt64 { seedOption.seed }
  @Flag(help: "Neither read nor write the cache of base scores.") var noCache = false
  @OptionGroup var outputFile: OutputFile<ValidationOutput>
  var output: String { outputFile.output }
  // Not JSONFlag: this prints the whole VALIDATION.json document (the file -o writes), which the help says.
  @Flag(help: "Print VALIDATION.json on stdout instead of the table.") var json = false

  func validate() throws {
    guard tokens >= 4 else { throw ValidationError("--tokens must be at least 4, got \(tokens)") }
    guard windows >= 1 && windows <= 100_000 else { throw ValidationError("--windows must be in 1...100000, got \(windows)") }
    guard bootstrap >= 1 && bootstrap <= 1_000_000 else { throw ValidationError("--bootstrap must be in 1...1000000, got \(bootstrap)") }
    guard EvaluationWindows.ScoringProtocol(rawValue: scoringProtocol) != nil else {
      throw ValidationError("--protocol must be bitplan or llama-perplexity, got '\(scoringProtocol)'")
    }
    guard ActivationMode(rawValue: activations) != nil else { throw ValidationError("--activations must be int8 or f32, got '\(activations)'") }
    if let quantizer, QuantizerChoice(quantizer) == nil {
      throw ValidationError("--quantizer '\(quantizer)': expected \(QuantizerChoice.names)")
    }
    if let calibTokens, !(2...1_000_000).contains(calibTokens) {
      throw ValidationError("--calib-tokens must be in 2...1000000, got \(calibTokens)")
    }
    guard (0...10_000).contains(tuneSteps) else { throw ValidationError("--tune-steps must be in 0...10000, got \(tuneSteps)") }
    guard tuneLr.isFinite && tuneLr > 0 && tuneLr <= 1 else { throw ValidationError("--tune-lr must be in (0, 1], got \(tuneLr)") }
    if let tuneTokens, !(2...1_000_000).contains(tuneTokens) {
      throw ValidationError("--tune-tokens must be in 2...1000000, got \(tuneTokens)")
    }
    guard ScaleTuner.Loss(rawValue: tuneLoss) != nil else { throw ValidationError("--tune-loss must be kld or nll, got '\(tuneLoss)'") }
    guard (0...PlanRepair.maximumSwaps).contains(repair) else {
      throw ValidationError("--repair must be in 0...\(PlanRepair.maximumSwaps), got \(repair)")
    }
    if repair > 0 && runFile == nil {
      throw ValidationError("--repair measures swaps of the allocation problem the plan came from: give --run RUN.h5")
    }
    if repairOut != nil && repair == 0 { throw ValidationError("--repair-out writes the repaired plan: give --repair N (N ≥ 1)") }
    _ = try baselineKinds()
  }

  func baselineKinds() throws -> [Baselines.Kind] {
    if baselines == "none" || baselines.isEmpty { return [] }
    return try baselines.split(separator: ",").map { name in
      guard let kind = Baselines.Kind(rawValue: String(name)) else {
        throw ValidationError(
          name == "none"
            ? "--baselines: 'none' stands alone; give it by itself, or a comma list of uniform, q4km and edges"
            : "--baselines: unknown '\(name.prefix(64))'; expected a comma list of uniform, q4km and edges, or none")
      }
      return kind
    }
  }

  func run() throws {
    // No `HeapPolicy.keepLargeArraysInHeap()`: the dense weights replaced by packed layers go back to the system.
    var inputs = [
      InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "PLAN.json", path: plan),
      InputPath(option: "--eval", path: eval),
    ]
    if let runFile { inputs.append(InputPath(option: "--run", path: runFile)) }
    if let calib { inputs.append(InputPath(option: "--calib", path: calib)) }
    try FileChecks.check(
      inputs: inputs,
      outputs: [OutputPath(option: "-o", path: output)] + (repairOut.map { [OutputPath(option: "--repair-out", path: $0)] } ?? []))
    try Preflight.check(model: model, tokens: tokens, workload: .perplexity, texts: [eval])
    var settings = ValidateSettings(model: model, plan: plan, evalText: eval)
    settings.run = runFile
    settings.tokens = tokens
    settings.windows = windows
    settings.scoringProtocol = EvaluationWindows.ScoringProtocol(rawValue: scoringProtocol)!
    settings.activations = ActivationMode(rawValue: activations)!
    settings.baselines = try baselineKinds()
    settings.bootstrapReplicates = bootstrap
    settings.seed = seed
    settings.cacheDirectory = noCache ? nil : ReferenceCache().directory
    settings.quantizer = quantizer.flatMap { QuantizerChoice($0) }
    settings.calibrationText = calib
    settings.calibrationTokens = calibTokens
    settings.tuneSteps = tuneSteps
    settings.tuneLearningRate = tuneLr
    settings.tuneLoss = ScaleTuner.Loss(rawValue: tuneLoss)!
    settings.tuneTokens = tuneTokens
    settings.repair = repair
    settings.repairOutput = repairOut
    let progress = ProgressLine(stages: ValidationStage.allCases.map(\.rawValue))
    let report: ValidationReport
    do {
      report = try PlanValidation.run(settings, status: { progress.status($0) }) { stage, done, total in
        progress.update(stage: stage.rawValue, done: done, total: total)
      }
    } catch {
      progress.finish()
      throw error
    }
    progress.finish()
    let data = try report.jsonData()
    try FileChecks.write(data, to: output, option: "-o")
    if let runFile { try PlanValidation.store(report, document: data, planPath: plan, in: runFile) }
    if json {
      FileHandle.standardOutput.write(data)
    } else {
      for line in report.table { print(line) }
      print("\(report.models.first.map { "\($0.windows.count)" } ?? "0") windows × \(report.scoredPerWindow) scored tokens (\(report.scoringProtocol)), "
        + "\(report.activations) activations, \(String(format: "%.1f", report.elapsedSeconds)) s → \(output)")
    }
  }
}
