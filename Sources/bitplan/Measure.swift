import ArgumentParser
import Foundation
import TensorCore
import Pipeline
import Quantization
import Reporting
import Sensitivity

/// `bitplan measure MODEL --calib FILE … -o RUN.h5`: per-layer sensitivity into a resumable run file.
struct Measure: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure per-layer sensitivity (Hessian and Fisher traces, quantization errors, proxies) into RUN.h5.",
    discussion: """
      Calibration tokens are [BOS] + the first N−1 ids of --calib. The Hutchinson probes use the Hessian of the \
      mean NLL over the first --hvp-tokens of them; the Fisher gradient is averaged over the calibration tokens \
      cut into windows of --hvp-tokens. A killed run resumes when the same command is run again \
      (RUN.h5.partial); the final file appears only when every stage is done. Layout: Documentation/RunFormat.md.
      """)

  @OptionGroup var modelArgument: ModelArgument
  var model: String { modelArgument.model }
  @OptionGroup var calibrationText: CalibrationText
  var calib: String { calibrationText.calib }
  @Option(parsing: .unconditional, help: "Calibration tokens, BOS included.") var tokens = 512
  @Option(parsing: .unconditional, help: "Leading calibration tokens for Hessian-vector products (and the Fisher window length).")
  var hvpTokens = 128
  @Option(parsing: .unconditional, help: "Maximum Hutchinson probes.") var probes = 64
  @OptionGroup var seedOption: SeedOption
  var seed: UInt64 { seedOption.seed }
  @Option(help: "Comma-separated candidate formats (default: f16,int8,int6-g64,int5-g64,int4-g64,int4-g64-asym,int4-g32,int4-g32-asym,int3-g64,int3-g64-asym,int3-g32-asym,int2-g64). Any format of the grammar may be named, e.g. nf4-g64, q4_k or w8a8-a0.8 (SmoothQuant W8A8: int8 weights, per-token int8 activations, migration strength 0.8; w8a8 is 0.5).")
  var candidates: String?
  @Option(help: "Runtime to measure for: per layer, only the formats it stores for that shape, at its byte counts (any: every candidate, at the format grammar's byte counts).")
  var target: Target = .any
  @Option(parsing: .unconditional, help: "Stop the probes once every layer's relative standard error is below this fraction (e.g. 0.05; 0: all probes).")
  var tol = 0.0
  @Flag(help: "Also measure each layer's top Hessian eigenvalue by power iteration (slow: layers × iterations HVPs).")
  var eigen = false
  @Option(parsing: .unconditional, help: "Power-iteration steps per layer with --eigen.") var eigenIterations = MeasureSettings.defaultEigenIterations
  @Flag(
    inversion: .prefixedNo,
    help: "Keep the Hutchinson diagonal (the taylor_diag proxy; one Double per weight). Default: kept, unless the model is too large to hold in Float and is read from its file a weight at a time.")
  var hessianDiagonal: Bool?
  @Option(parsing: .unconditional, help: ArgumentHelp("Audit N random single-layer quantizations: true ΔNLL and ΔKLD on held-out text.", valueName: "N")) var audit = 0
  @Option(help: ArgumentHelp("Audit every layer at this candidate format (e.g. int2-g64) instead of --audit N random pairs.", valueName: "format"))
  var auditFormat: String?
  @Option(help: ArgumentHelp("Held-out text for --audit (default: the calibration text after the calibration tokens).", valueName: "file"))
  var auditText: String?
  @Flag(help: "Also measure every (layer, candidate)'s single-layer KLD end to end on calibration tokens, packed (allocate --score kld).")
  var scoreKld = false
  @Option(parsing: .unconditional, help: "Leading calibration tokens --score-kld scores on (default: 128, or --tokens when fewer).")
  var kldTokens: Int?
  @Option(help: ArgumentHelp("Quantizer of every candidate: rtn (round to nearest), gptq, awq, imatrix (GGML types: llama.cpp's importance-weighted quantizer with the run's own activation statistics, what llama-quantize does with bitplan export --imatrix), or best (rtn, gptq and awq where they apply, least output error kept).", valueName: "name"))
  var quantizer = "rtn"
  @OptionGroup var outputFile: OutputFile<RunFileOutput>
  var output: String { outputFile.output }
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }
  @Option(help: ArgumentHelp("Least seconds between checkpoints that rewrite the large gradient/diagonal side files.", visibility: .hidden))
  var checkpointInterval = 30.0

  func validate() throws {
    guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2, got \(tokens)") }
    guard hvpTokens >= 2 && hvpTokens <= tokens else {
      throw ValidationError("--hvp-tokens must be in 2...--tokens (\(tokens)), got \(hvpTokens)")
    }
    guard probes >= 1 && probes <= 1_000_000 else { throw ValidationError("--probes must be in 1...1000000, got \(probes)") }
    guard tol >= 0 && tol.isFinite else { throw ValidationError("--tol must be a finite number ≥ 0") }
    guard eigenIterations >= 1 && eigenIterations <= 1_000_000 else {
      throw ValidationError("--eigen-iterations must be in 1...1000000, got \(eigenIterations)")
    }
    guard audit >= 0 && audit <= 1_000_000 else { throw ValidationError("--audit must be in 0...1000000, got \(audit)") }
    guard auditFormat == nil || audit == 0 else { throw ValidationError("give --audit N or --audit-format F, not both") }
    guard auditText == nil || audit > 0 || auditFormat != nil else { throw ValidationError("--audit-text needs --audit N or --audit-format F") }
    if let kldTokens {
      guard scoreKld else { throw ValidationError("--kld-tokens needs --score-kld") }
      guard kldTokens >= 2 && kldTokens <= tokens else { throw ValidationError("--kld-tokens must be in 2...--tokens (\(tokens)), got \(kldTokens)") }
    }
    guard QuantizerChoice(quantizer) != nil else {
      throw ValidationError("--quantizer '\(quantizer)': expected \(QuantizerChoice.names)")
    }
    guard checkpointInterval >= 0 && checkpointInterval.isFinite else { throw ValidationError("--checkpoint-interval must be ≥ 0") }
  }

  func run() throws {
    HeapPolicy.keepLargeArraysInHeap()
    var settings = MeasureSettings()
    settings.tokens = tokens
    settings.includesTokenEmbedding = target.storesTokenEmbedding
    settings.hvpTokens = hvpTokens
    settings.probes = probes
    settings.seed = seed
    settings.tolerance = tol
    // A model read from its file a weight at a time (`Preflight.streamsWeights`) does not keep the diagonal unless
    // asked: it would hold whole probes, products and a Double per weight.
    if let hessianDiagonal {
      settings.keepsHessianDiagonal = hessianDiagonal
    } else if (try? Preflight.streamsWeights(model: model)) == true {
      settings.keepsHessianDiagonal = false
      FileHandle.standardError.write(Data(
        "measure: the model is read from its file a weight at a time, so the Hutchinson diagonal (taylor_diag) is not kept; --hessian-diagonal keeps it\n".utf8))
    }
    settings.eigenIterations = eigen ? eigenIterations : 0
    settings.auditCount = audit
    settings.kldTokens = scoreKld ? kldTokens ?? min(MeasureSettings.defaultKLDTokens, tokens) : 0
    if let auditFormat {
      do { settings.auditFormat = try QuantFormat(parsing: auditFormat) } catch {
        throw CommandError("--audit-format '\(auditFormat)': \(error)")
      }
    }
    settings.target = target
    settings.quantizer = QuantizerChoice(quantizer)!
    if let candidates {
      do { settings.candidates = try QuantFormat.parseList(candidates) } catch {
        throw CommandError("--candidates '\(candidates)': \(error)")
      }
    }
    var stages: [MeasurementStage] = [.fisher, .hessian]
    if eigen { stages.append(.eigenvalues) }
    stages.append(.layers)
    if scoreKld { stages.append(.kld) }
    if audit > 0 || auditFormat != nil { stages.append(.audit) }
    let progress = ProgressLine(stages: stages.map(\.rawValue))
    // a partial run beside -o is resumed when its settings match (else the run refuses it); say so
    let partial = FileChecks.resolvedTarget(output) + ".partial"
    let resuming = FileManager.default.fileExists(atPath: partial)
    progress.status((resuming ? "measure: resuming '\(partial)'; " : "measure: ") + "reading \(model), tokenizing, checksums…")
    var measurement = Measurement(
      modelPath: model, calibrationPath: calib, auditTextPath: auditText, outputPath: output, settings: settings,
      toolVersion: BitPlanCommand.configuration.version)
    measurement.checkpointInterval = checkpointInterval
    let summary: MeasurementSummary
    do {
      summary = try measurement.run { stage, done, total in progress.update(stage: stage.rawValue, done: done, total: total) }
    } catch {
      progress.finish()
      throw error
    }
    progress.finish()
    if json { return try printJSON(summary) }
    report(summary)
    if resuming {
      print("  resumed the run cut short in '\(partial)': what it had finished was read back, not measured again")
    }
  }

  /// The human summary on stdout.
  private func report(_ s: MeasurementSummary) {
    func fixed(_ x: Double?, _ digits: Int) -> String { x.map { String(format: "%.\(digits)f", $0) } ?? "n/a" }
    let forTarget = target == .any ? "" : " stored as \(target.rawValue) stores them"
    print("wrote \(s.output): \(s.layers) layers (\(grouped(s.parameters)) weights) × \(s.candidates.count) candidates\(forTarget)")
    print("  Hessian trace (all linear weights) \(fixed(s.hessianTraceTotal, 1)) ± \(fixed(s.hessianTraceTotalStandardError, 1))"
      + " from \(s.probesUsed) probes;  Fisher trace \(String(format: "%.4g", s.fisherTraceTotal ?? .nan))"
      + " over \(s.calibrationWindows) window\(s.calibrationWindows == 1 ? "" : "s")")
    if let kld = s.measuredPairs {
      let seconds = s.stageSeconds["kld"]
      print("  measured KLD: \(kld) single-layer pairs on \(s.kldTokens ?? 0) calibration tokens"
        + (seconds.map { ", \(fixed($0, 1)) s this process (\(fixed($0 / Double(max(kld, 1)), 3)) s per pair)" } ?? ""))
    }
    if s.audited > 0 {
      print("  audit: \(s.audited) single-layer quantizations, baseline NLL \(fixed(s.auditBaselineNLL, 4)); Spearman ρ [95% bootstrap interval over the audited pairs] vs ΔKLD, and vs ΔNLL:")
      // Intervals as the report computes them (seeded bootstrap of the pairs).
      let audit = (try? RunStore.read(s.output)).flatMap { ReportData.auditSummary($0, score: "") }
      for name in s.spearmanNLL.keys.sorted() {
        let interval = audit?.correlations.first { $0.score == name }?.kld
        let range = interval.map { " [\(fixed($0.low, 3)), \(fixed($0.high, 3))]" } ?? ""
        print("    \(pad(name, 14)) \(fixed(s.spearmanKLD[name] ?? nil, 3).leftPadded(6))\(range)  \(fixed(s.spearmanNLL[name] ?? nil, 3).leftPadded(6))")
      }
    }
    print("  time \(fixed(s.totalSeconds, 1)) s (\(Self.stageTimes(s)))")
  }

  /// The seconds of each stage, in order: "setup 3.1, fisher 8.0, hessian 74.2, …".
  static func stageTimes(_ s: MeasurementSummary) -> String {
    let order = ["setup", "fisher", "hessian", "eigenvalues", "layers", "kld", "audit", "finish"]
    return order.compactMap { name in s.stageSeconds[name].map { "\(name) \(BenchEngine.fixed($0, 1))" } }
      .joined(separator: ", ")
  }
}
