import Engine
import Foundation

/// One window's scores of one model against the base (means over the window's scored predictions).
public struct WindowScore: Sendable, Equatable, Codable {
  /// Where the window starts in the tokenized text.
  public var start: Int
  /// Mean NLL of the scored targets under this model.
  public var nll: Double
  /// Mean KL(base ‖ model) in nats.
  public var kld: Double
  /// 99th percentile of the per-position KLD.
  public var kldP99: Double
  /// Largest per-position KLD.
  public var kldMax: Double
  /// Fraction of positions whose argmax equals the base's.
  public var top1: Double

  enum CodingKeys: String, CodingKey {
    case start, nll, kld, top1
    case kldP99 = "kld_p99"
    case kldMax = "kld_max"
  }
}

extension WindowScores {
  /// The window's means, KLD p99 and max, and top-1 agreement.
  public func summary(start: Int) -> WindowScore {
    let n = Double(max(nll.count, 1))
    let sorted = kld.sorted()
    return WindowScore(
      start: start, nll: nll.reduce(0, +) / n, kld: kld.reduce(0, +) / n,
      kldP99: WindowBootstrap.percentile(sorted, 0.99), kldMax: sorted.last ?? 0,
      top1: Double(top1Agrees.filter { $0 }.count) / n)
  }
}

/// One scored model (the plan or a baseline): size, metrics with intervals, per-window values.
public struct ScoredModel: Sendable, Equatable, Codable {
  /// `plan`, `plan-tuned`, `uniform`, `q4km`, `edges`, or `base`.
  public var name: String
  /// What it is: `plan (exact)`, `uniform int4-g128`, `q4km (q4_0/q8_0, filled)`.
  public var label: String
  /// Σ bytes of the planned layers in their formats, counted in the plan's target's bytes (`ByteModel`; the
  /// grammar's without a target).
  public var bytes: Int
  /// `bytes · 8 / parameters` of the planned layers.
  public var bitsPerWeight: Double
  /// How many planned layers use each format.
  public var formatCounts: [String: Int]
  /// Perplexity `exp(mean NLL)` with the interval of `exp` of the mean NLL's.
  public var perplexity: Interval
  /// Mean NLL − the base's mean NLL over the same positions.
  public var deltaNLL: Interval
  /// Mean KL(base ‖ model), nats.
  public var kld: Interval
  /// 99th percentile of per-position KLD over all scored positions.
  public var kldP99: Double
  /// Largest per-position KLD.
  public var kldMax: Double
  /// Top-1 agreement with the base.
  public var top1: Interval
  /// For a baseline or the tuned plan: its mean KLD minus the plan's (positive: the plan is better), paired over
  /// the same windows.
  public var kldMinusPlan: Interval?
  public var windows: [WindowScore]
  /// How many planned layers each quantizer chose the codes of (`rtn`, `gptq`, `awq`); nil in reports written
  /// before quantizers were recorded (all `rtn`).
  public var quantizerCounts: [String: Int]?
  /// For the plan with tuned scales (`plan-tuned`): how they were tuned and the calibration loss before and after;
  /// nil for every other row, and in reports written before scale tuning existed.
  public var tuning: ScaleTuningSummary?

  enum CodingKeys: String, CodingKey {
    case name, label, bytes, perplexity, kld, top1, windows, tuning
    case quantizerCounts = "quantizer_counts"
    case bitsPerWeight = "bits_per_weight"
    case formatCounts = "format_counts"
    case deltaNLL = "delta_nll"
    case kldP99 = "kld_p99"
    case kldMax = "kld_max"
    case kldMinusPlan = "kld_minus_plan"
  }
}

/// How a plan's scales were tuned (`bitplan validate --tune-steps`) and what it did to the calibration loss.
public struct ScaleTuningSummary: Sendable, Equatable, Codable {
  /// Adam steps, one calibration window each.
  public var steps: Int
  /// Adam's step size on the log-scales.
  public var learningRate: Double
  /// The calibration loss descended: `kld` (mean KL from the unquantized model's next-token distributions) or
  /// `nll` (mean NLL of the calibration text).
  public var loss: String
  /// Calibration windows cycled through, and tokens per window (BOS included).
  public var windows: Int
  public var windowTokens: Int
  /// Layers and groups whose scales were tuned (the integer formats).
  public var tunedLayers: Int
  public var tunedGroups: Int
  /// The loss, mean over all calibration windows, with the plan's scales and with the tuned ones (Float
  /// activations, dequantized weights).
  public var calibrationLossBefore: Double
  public var calibrationLossAfter: Double
  /// Wall-clock seconds of the tuning.
  public var elapsedSeconds: Double

  public init(
    steps: Int, learningRate: Double, loss: String, windows: Int, windowTokens: Int, tunedLayers: Int, tunedGroups: Int,
    calibrationLossBefore: Double, calibrationLossAfter: Double, elapsedSeconds: Double
  ) {
    self.steps = steps
    self.learningRate = learningRate
    self.loss = loss
    self.windows = windows
    self.windowTokens = windowTokens
    self.tunedLayers = tunedLayers
    self.tunedGroups = tunedGroups
    self.calibrationLossBefore = calibrationLossBefore
    self.calibrationLossAfter = calibrationLossAfter
    self.elapsedSeconds = elapsedSeconds
  }

  enum CodingKeys: String, CodingKey {
    case steps, windows, loss
    case learningRate = "learning_rate"
    case windowTokens = "window_tokens"
    case tunedLayers = "tuned_layers"
    case tunedGroups = "tuned_groups"
    case calibrationLossBefore = "calibration_loss_before"
    case calibrationLossAfter = "calibration_loss_after"
    case elapsedSeconds = "elapsed_seconds"
  }
}

/// VALIDATION.json: the plan and its baselines scored on the same windows (Documentation/RunFormat.md).
public struct ValidationReport: Sendable, Equatable, Codable {
  /// The `format_version` this build writes and reads; `bitplan report` refuses any other.
  public static let supportedFormatVersion = 1

  /// `supportedFormatVersion`.
  public var formatVersion = ValidationReport.supportedFormatVersion
  public var model: String
  public var modelSHA256: String
  public var plan: String
  public var evalText: String
  public var evalSHA256: String
  /// `bitplan` or `llama-perplexity`.
  public var scoringProtocol: String
  /// `int8` or `f32`.
  public var activations: String
  /// Tokens per window.
  public var tokens: Int
  /// Window starts in the tokenized text.
  public var windowStarts: [Int]
  /// Scored predictions per window.
  public var scoredPerWindow: Int
  public var bootstrapReplicates: Int
  public var bootstrapSeed: UInt64
  /// The reference model's perplexity (with interval) on the scored positions.
  public var basePerplexity: Interval
  /// What the reference is: `f32 (dequantized weights)` or `file types, packed`.
  public var baseDescription: String
  /// The plan first, then the plan with tuned scales when asked for (`plan-tuned`), then each baseline.
  public var models: [ScoredModel]
  /// Wall-clock seconds of the whole validation.
  public var elapsedSeconds: Double
  /// What `--repair N` measured and re-solved; absent without it.
  public var repair: RepairSummary?

  enum CodingKeys: String, CodingKey {
    case model, plan, activations, tokens, models, repair
    case formatVersion = "format_version"
    case modelSHA256 = "model_sha256"
    case evalText = "eval_text"
    case evalSHA256 = "eval_sha256"
    case scoringProtocol = "protocol"
    case windowStarts = "window_starts"
    case scoredPerWindow = "scored_per_window"
    case bootstrapReplicates = "bootstrap_replicates"
    case bootstrapSeed = "bootstrap_seed"
    case basePerplexity = "base_perplexity"
    case baseDescription = "base"
    case elapsedSeconds = "elapsed_seconds"
  }

  public init(
    model: String, modelSHA256: String, plan: String, evalText: String, evalSHA256: String, scoringProtocol: String,
    activations: String, tokens: Int, windowStarts: [Int], scoredPerWindow: Int, bootstrapReplicates: Int,
    bootstrapSeed: UInt64, basePerplexity: Interval, baseDescription: String, models: [ScoredModel],
    elapsedSeconds: Double
  ) {
    self.model = model
    self.modelSHA256 = modelSHA256
    self.plan = plan
    self.evalText = evalText
    self.evalSHA256 = evalSHA256
    self.scoringProtocol = scoringProtocol
    self.activations = activations
    self.tokens = tokens
    self.windowStarts = windowStarts
    self.scoredPerWindow = scoredPerWindow
    self.bootstrapReplicates = bootstrapReplicates
    self.bootstrapSeed = bootstrapSeed
    self.basePerplexity = basePerplexity
    self.baseDescription = baseDescription
    self.models = models
    self.elapsedSeconds = elapsedSeconds
  }

  /// Pretty, sorted-key JSON with a final newline.
  public func jsonData() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(self)
    data.append(0x0A)
    return data
  }

  /// The plan-vs-baselines table as fixed-width text lines.
  public var table: [String] {
    var lines = ["model                                   bytes      bpw   KLD (nats) [95%]              PPL [95%]                   top-1 [95%]"]
    for m in models {
      let label = m.label.count > 36 ? String(m.label.prefix(35)) + "…" : m.label
      lines.append(
        label.padding(toLength: 38, withPad: " ", startingAt: 0) + "  " + String(m.bytes).leftPadded(9) + "  "
          + fixed(m.bitsPerWeight, 3).leftPadded(5) + "   " + m.kld.formatted(4).padding(toLength: 28, withPad: " ", startingAt: 0)
          + "  " + m.perplexity.formatted(3).padding(toLength: 26, withPad: " ", startingAt: 0) + "  " + m.top1.formatted(3))
    }
    for m in models {
      guard let t = m.tuning else { continue }
      let change = m.kldMinusPlan.map { ", KLD − plan's \($0.formatted(4))" } ?? ""
      lines.append(
        "\(m.name): \(t.tunedLayers) layers' \(t.tunedGroups) scales, \(t.steps) steps (lr \(t.learningRate), "
          + "\(t.windows) windows × \(t.windowTokens) tokens, \(fixed(t.elapsedSeconds, 1)) s): calibration \(t.loss) "
          + "\(fixed(t.calibrationLossBefore, 4)) → \(fixed(t.calibrationLossAfter, 4))\(change)")
    }
    lines.append("base: \(baseDescription), PPL \(basePerplexity.formatted(3))")
    if let repair { lines += repair.table }
    return lines
  }
}

/// Builds a `ScoredModel` from per-window position scores.
public enum ScoreSummary {
  /// - Parameters:
  ///   - positions: per window, the model's per-position scores.
  ///   - baseNLL: per window, the base's per-position NLL of the same targets.
  ///   - plan: the plan's per-window mean KLD, for a baseline's paired difference.
  public static func summarize(
    name: String, label: String, bytes: Int, parameters: Int, formatCounts: [String: Int], positions: [WindowScores],
    baseNLL: [[Double]], starts: [Int], bootstrap: WindowBootstrap, planKLD: [Double]?
  ) -> ScoredModel {
    let windows = zip(positions, starts).map { $0.summary(start: $1) }
    let baseMeans = baseNLL.map { $0.reduce(0, +) / Double(max($0.count, 1)) }
    let nll = bootstrap.interval(windows.map(\.nll))
    let allKLD = positions.flatMap(\.kld).sorted()
    let kld = windows.map(\.kld)
    return ScoredModel(
      name: name, label: label, bytes: bytes, bitsPerWeight: Double(bytes) * 8 / Double(max(parameters, 1)),
      formatCounts: formatCounts,
      perplexity: Interval(value: exp(nll.value), low: exp(nll.low), high: exp(nll.high)),
      deltaNLL: bootstrap.difference(windows.map(\.nll), baseMeans), kld: bootstrap.interval(kld),
      kldP99: WindowBootstrap.percentile(allKLD, 0.99), kldMax: allKLD.last ?? 0,
      top1: bootstrap.interval(windows.map(\.top1)), kldMinusPlan: planKLD.map { bootstrap.difference(kld, $0) },
      windows: windows)
  }

  /// The base's perplexity interval from its per-window NLLs.
  public static func basePerplexity(_ baseNLL: [[Double]], bootstrap: WindowBootstrap) -> Interval {
    let nll = bootstrap.interval(baseNLL.map { $0.reduce(0, +) / Double(max($0.count, 1)) })
    return Interval(value: exp(nll.value), low: exp(nll.low), high: exp(nll.high))
  }
}

extension String {
  func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
