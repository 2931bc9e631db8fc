import TensorCore
import Foundation
import ModelIO
import Quantization
import Sensitivity

/// `bitplan measure` as a library call: reads the model and texts, checksums them, cuts the token windows, and
/// runs (or resumes) a `MeasurementRun` of the engine-backed model into `RUN.h5`, timing each stage.
///
/// Tokens: calibration = `[BOS]` + the first `tokens − 1` ids of the calibration text (`TokenWindow`). Held-out
/// tokens for `--audit N`: `[BOS]` + the first `tokens − 1` ids of `auditTextPath` when given, otherwise
/// `[BOS]` + the `tokens − 1` ids of the calibration text that follow the calibration tokens (text the measurement
/// never saw). The audit text's SHA-256 and token count are part of the provenance (`audit_sha256`,
/// `audit_tokens`), so a run does not resume onto other held-out data.
public struct Measurement {
  /// A `.gguf` file or a Hugging Face folder.
  public var modelPath: String
  /// UTF-8 calibration text (`--calib`).
  public var calibrationPath: String
  /// UTF-8 held-out text for the audit (`--audit-text`); `nil`: the calibration text after the calibration tokens.
  public var auditTextPath: String?
  /// The final run file (`-o`).
  public var outputPath: String
  /// Every numeric setting.
  public var settings: MeasureSettings
  /// `tool_version` in the provenance.
  public var toolVersion: String
  /// Least seconds between checkpoints that rewrite per-parameter side files (`MeasurementRun.checkpointInterval`):
  /// on SmolLM2 each such checkpoint writes 850 MB, so by default a kill loses at most half a minute of work (more
  /// only where a save takes over 3 s: saves are spaced by at least nine times the last one's duration).
  public var checkpointInterval = 30.0

  /// A measurement of `modelPath` on `calibrationPath` into `outputPath`.
  public init(
    modelPath: String, calibrationPath: String, auditTextPath: String? = nil, outputPath: String,
    settings: MeasureSettings = MeasureSettings(), toolVersion: String
  ) {
    self.modelPath = modelPath
    self.calibrationPath = calibrationPath
    self.auditTextPath = auditTextPath
    self.outputPath = outputPath
    self.settings = settings
    self.toolVersion = toolVersion
  }

  /// Runs or resumes the measurement.
  /// - Parameter onProgress: called after each unit of work with the stage, units done and the stage's total
  ///   (units a resumed run had already done are reported first, in one call per stage).
  /// - Returns: the finished run and the time each stage took in this process.
  /// - Throws: `FileCheckError` for an output that names an input, a folder or a device, or a missing input (all
  ///   before any work); `ResourceError` for more tokens than the model's context or memory than the machine's;
  ///   `MeasureError` for bad settings or texts, `WindowError` for a text that is not UTF-8, `ModelIOError` /
  ///   `EngineError` for a bad model, `SensitivityError` from the run store (e.g. `.provenanceMismatch` for a
  ///   partial run made with other settings). No final file is written unless the whole run succeeds.
  public func run(
    onProgress: @escaping (MeasurementStage, Int, Int) -> Void = { _, _, _ in }
  ) throws -> MeasurementSummary {
    let clock = StageClock()
    try settings.validate()
    try checkPaths()
    try Preflight.check(
      model: modelPath, tokens: settings.tokens, workload: .sensitivity(hvpTokens: settings.hvpTokens, keepsHessianDiagonal: settings.keepsHessianDiagonal),
      texts: [calibrationPath] + (auditTextPath.map { [$0] } ?? []))
    let calibration = try TokenWindow.readText(calibrationPath, option: "--calib")
    let auditText = try auditTextPath.map { try TokenWindow.readText($0, option: "--audit-text") }
    // A model whose Float weights would take more than an eighth of the memory is read from its file a weight at a time,
    // and its gradient sum kept on disk (the same numbers; `Preflight.streamsWeights`).
    let streaming = try Preflight.streamsWeights(model: modelPath)
    let loaded = try LoadedModel.load(path: modelPath, deferring: { _ in [] }, streaming: streaming)
    let tokens = try TokenWindow.make(
      text: calibration, tokenizer: loaded.tokenizer, count: settings.tokens, source: "--calib '\(calibrationPath)'")
    var evaluation: [Int] = []
    if settings.auditCount > 0 || settings.auditFormat != nil {
      if let auditText {
        evaluation = try TokenWindow.make(
          text: auditText, tokenizer: loaded.tokenizer, count: settings.tokens,
          source: "--audit-text '\(auditTextPath ?? "")'")
      } else {
        evaluation = try Self.heldOutTokens(
          text: calibration, tokenizer: loaded.tokenizer, count: settings.tokens, path: calibrationPath)
      }
    }
    // The embedding (when measured) is offered the same set as a linear layer of its width by the targets that
    // measure it (`Target.storesTokenEmbedding`), so its shape joins the others.
    let measured = loaded.model.linearLayers + (settings.includesTokenEmbedding ? [loaded.model.embeddingLayer] : [])
    let formats = try settings.candidateFormats(shapes: measured.map { (rows: $0.outFeatures, columns: $0.inFeatures) })
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: tokens, hvpTokenCount: settings.hvpTokens,
      evaluationTokens: evaluation, formats: formats, target: settings.target,
      includesTokenEmbedding: settings.includesTokenEmbedding)
    var settings = settings
    if let format = settings.auditFormat { settings.auditCount = try model.allLayerAuditCount(format) }
    model.quantizer = settings.quantizer
    model.reusesFirstWindowGradient = settings.keepsHessianDiagonal && !streaming
    let calibSHA256 = try SHA256.hexDigest(fileAt: calibrationPath)
    let auditSHA256 = settings.auditCount == 0 ? "" : try auditTextPath.map { try SHA256.hexDigest(fileAt: $0) } ?? calibSHA256
    var provenance = settings.provenance(
      toolVersion: toolVersion, modelSHA256: try Self.modelSHA256(path: modelPath), calibSHA256: calibSHA256,
      candidates: model.candidates.map(\.name), auditSHA256: auditSHA256, auditTokens: evaluation.count,
      created: RunProvenance.timestamp())
    provenance.calibrationPath = calibrationPath
    provenance.auditTextPath = settings.auditCount > 0 ? auditTextPath ?? "" : ""
    clock.lap("setup")
    // A symbolic link at -o is kept: the run (and its partial and temporary files) goes beside the file it names.
    let target = FileChecks.resolvedTarget(outputPath)
    var measurement = MeasurementRun(model: model, provenance: provenance, path: target) { stage, done, total in
      clock.lap(stage.rawValue)
      onProgress(stage, done, total)
    }
    measurement.checkpointInterval = checkpointInterval
    measurement.streamsGradientSum = streaming
    // a layer's candidates all at once while their Q(W) fit in an eighth of the memory (SmolLM2's table with the 16
    // demo candidates: 1.8 GB), else a worker's share at a time (a 1B model's table: 1 GB per candidate)
    measurement.candidateBatchBytes = max(512 << 20, Preflight.availableMemoryBytes() / 8)
    let run = try measurement.run()
    clock.lap("finish")
    return MeasurementSummary(run: run, output: outputPath, windows: model.calibrationWindowCount, seconds: clock.seconds)
  }

  /// The files this measurement reads and writes, checked before any work (`FileChecks`): the run file and the
  /// files built beside it (`RUN.h5.partial` and the temporary files of both) must each be a regular file or
  /// absent, in a writable folder, and none may be the model (or a file in its folder) or a text.
  public func checkPaths() throws(FileCheckError) {
    var inputs = [
      InputPath(option: "MODEL", path: modelPath, allowsFolder: true), InputPath(option: "--calib", path: calibrationPath),
    ]
    if let auditTextPath { inputs.append(InputPath(option: "--audit-text", path: auditTextPath)) }
    // The partial and temporary files go beside the file -o names (a symbolic link resolved).
    let target = FileChecks.resolvedTarget(outputPath)
    let outputs = [outputPath, target + ".partial", target + ".tmp", target + ".partial.tmp"].map {
      OutputPath(option: "-o", path: $0)
    }
    try FileChecks.check(inputs: inputs, outputs: outputs)
  }

  /// The held-out window: `[BOS]` + the `count − 1` ids that follow the calibration window's `count − 1` ids in
  /// `text` (without a BOS token: the `count` ids after the first `count`).
  /// - Throws: `.textTooShort` when the text has too few ids for both windows.
  /// - Parameter path: the calibration file, named in the error.
  public static func heldOutTokens(text: String, tokenizer: BPETokenizer, count: Int, path: String? = nil)
    throws(MeasureError) -> [Int]
  {
    let bos = tokenizer.bosTokenId
    let k = bos == nil ? count : count - 1
    let scalars = text.unicodeScalars
    let prefix = String(String.UnicodeScalarView(scalars.prefix(max(40_000, 2 * k * TokenWindow.charactersPerToken))))
    let ids = tokenizer.encode(prefix)
    guard ids.count >= 2 * k else {
      throw MeasureError(
        .textTooShort, "the calibration text gives \(ids.count) tokens; --audit evaluates on the \(k) after the "
          + "\(k) calibration ids (\(2 * k) in all): use a longer text or --audit-text FILE", path: path)
    }
    return (bos.map { [$0] } ?? []) + ids[k..<(2 * k)]
  }
}
