import Allocation
import Foundation
import Sensitivity
import Validation

/// Everything a report shows, as one plain value: built once from a measurement run, an optional plan, an optional
/// validation and the Pareto frontier of the run under the plan's score, then rendered by `MarkdownReport` and
/// `HTMLReport` without further computation (so both show the same numbers).
///
/// Layers are named by their Hugging Face module path and grouped by block (`model.layers.N.…`) and tensor type
/// (the path after the block index, `self_attn.q_proj`); a layer outside the blocks (`model.embed_tokens`,
/// `lm_head`) is its own type in a row without a block.
public struct ReportData: Sendable {
  /// Where a document came from, for the text that says how to reproduce or fill it.
  public enum Source: Sendable, Equatable {
    /// A file given on the command line.
    case file(String)
    /// The run file's own copy (`/plan/document`, `/validation/document` or the `/validation` table).
    case runFile
    /// Not available.
    case absent
  }

  /// One measured layer with its statistics and, when planned, its format.
  public struct LayerRow: Sendable {
    public var index: Int
    public var name: String
    /// `N` of `model.layers.N.…`, or nil.
    public var block: Int?
    /// The path after the block index (`self_attn.q_proj`), or the whole name outside the blocks.
    public var type: String
    public var rows: Int
    public var columns: Int
    public var parameters: Int { rows * columns }
    /// `/hessian/trace` (nats/weight²) and its standard error.
    public var hessianTrace: Double
    public var hessianStandardError: Double
    /// `/fisher/trace` (nats²/weight²).
    public var fisherTrace: Double
    /// The plan's format, bytes and predicted loss for this layer; nil when not planned.
    public var planned: PlanDocument.Layer?
    /// Effective bits per weight of the planned format (`8 · bytes / parameters`).
    public var plannedBitsPerWeight: Double? { planned.map { 8 * Double($0.bytes) / Double(max(parameters, 1)) } }
    /// Whether the trace is negative or within two standard errors of zero (too noisy to rank).
    public var isNoisy: Bool { !(hessianTrace > 2 * hessianStandardError) }
  }

  /// One model of the validation table (the plan or a baseline).
  public struct ValidatedModel: Sendable {
    public var name: String
    public var label: String
    public var bytes: Int
    public var bitsPerWeight: Double
    /// Mean KL(base‖model) in nats/token with its 95% bootstrap interval.
    public var kld: Interval
    public var perplexity: Interval
    /// Top-1 agreement; the bounds are NaN when the source (the run's `/validation` table) has none.
    public var top1: Interval
    /// A baseline's mean KLD minus the plan's, paired over windows (positive: the plan is better).
    public var kldMinusPlan: Interval?
    /// How many planned layers use each format (nil when the source has no counts).
    public var formatCounts: [String: Int]?
    /// The assignment's predicted loss under the plan's score (Σ of the run's proxy), when it can be rebuilt.
    public var predictedLoss: Double?
  }

  /// The validation: settings and one row per model, the plan first.
  public struct ValidationSummary: Sendable {
    public var source: Source
    public var models: [ValidatedModel]
    /// The unquantized reference's perplexity, and what it is.
    public var basePerplexity: Interval?
    public var baseDescription: String?
    public var modelPath: String?
    public var planPath: String
    public var evalText: String?
    public var evalSHA256: String
    public var scoringProtocol: String
    public var activations: String
    public var tokens: Int
    public var windows: Int
    public var bootstrapReplicates: Int?
    public var bootstrapSeed: UInt64?
  }

  public var runPath: String
  public var run: MeasuredRun
  public var plan: PlanDocument?
  public var planSource: Source
  public var validation: ValidationSummary?
  /// Where the validation came from (`.runFile` also for the run's `/validation` table).
  public var validationSource: Source
  /// Why the validation may not describe this plan, when it may not.
  public var validationNote: String?
  /// One row per measured layer, in run order.
  public var layers: [LayerRow]
  /// Tensor types in order of first appearance: the block types first, then each layer outside the blocks.
  public var types: [String]
  /// Block indices in ascending order.
  public var blocks: [Int]
  /// The Pareto frontier (bytes, predicted loss) under `frontierScore`, or why there is none.
  public var frontier: [ParetoFrontier.Point]
  public var frontierScore: String
  public var frontierNote: String?
  /// The proxy audit, when the run has one.
  public var audit: AuditSummary?

  /// Builds the report's data and checks that the inputs belong together.
  /// - Parameters:
  ///   - frontier: the run's exact frontier under `frontierScore` (the plan's score; the command builds it with
  ///     the allocator's own problem), or empty with `frontierNote` saying why.
  /// - Throws: `ReportError` when the plan or validation names another model (sha256), a layer the run lacks, or
  ///   (the validation) another plan.
  public init(
    runPath: String, run: MeasuredRun, plan: PlanDocument?, planSource: Source, validation: ValidationReport?,
    validationSource: Source, frontier: [ParetoFrontier.Point], frontierScore: String, frontierNote: String? = nil
  ) throws(ReportError) {
    self.runPath = runPath
    self.run = run
    self.plan = plan
    self.planSource = planSource
    self.validationSource = validation == nil ? (run.validation?.name.isEmpty == false ? .runFile : .absent) : validationSource
    self.frontier = frontier
    self.frontierScore = frontierScore
    self.frontierNote = frontierNote
    let runSHA = run.provenance.modelSHA256.lowercased()
    let planOption = Self.option("--plan", planSource, runPath)
    if let plan {
      if let sha = plan.modelSHA256?.lowercased(), !sha.isEmpty, !runSHA.isEmpty, sha != runSHA {
        throw ReportError(
          option: planOption.option, path: planOption.path,
          "made for the model with sha256 \(sha.prefix(12))…, the run measured \(runSHA.prefix(12))…; not the same model")
      }
      let names = Set(run.layers.map(\.name))
      if let missing = plan.layers.keys.sorted().first(where: { !names.contains($0) }) {
        throw ReportError(
          option: planOption.option, path: planOption.path,
          "plans '\(missing)', which the run '\(runPath)' did not measure (\(run.layers.count) layers)")
      }
    }
    layers = run.layers.enumerated().map { i, l in
      let (block, type) = Self.split(l.name)
      return LayerRow(
        index: i, name: l.name, block: block, type: type, rows: l.rows, columns: l.columns,
        hessianTrace: run.hessianTrace[i], hessianStandardError: run.hessianTraceStandardError[i],
        fisherTrace: run.fisherTrace[i], planned: plan?.layers[l.name])
    }
    var seen = Set<String>()
    let inBlocks = layers.filter { $0.block != nil }.map(\.type) + layers.filter { $0.block == nil }.map(\.type)
    types = inBlocks.filter { seen.insert($0).inserted }
    blocks = Set(layers.compactMap(\.block)).sorted()
    if let validation {
      let option = Self.option("--validation", validationSource, runPath)
      if !runSHA.isEmpty, !validation.modelSHA256.isEmpty, validation.modelSHA256.lowercased() != runSHA {
        throw ReportError(
          option: option.option, path: option.path,
          "validated the model with sha256 \(validation.modelSHA256.prefix(12))…, the run measured \(runSHA.prefix(12))…; not the same model")
      }
      if let plan, let first = validation.models.first, first.name == "plan", first.formatCounts != plan.formatCounts {
        throw ReportError(
          option: option.option, path: option.path,
          "validated a plan with formats \(Self.describe(first.formatCounts)), the plan has \(Self.describe(plan.formatCounts)); not the same plan")
      }
      self.validation = Self.summary(validation, source: validationSource)
    } else if let table = run.validation, !table.name.isEmpty {
      self.validation = Self.summary(table)
    }
    if let plan, var summary = self.validation {
      if Self.isSamePlan(summary, plan) {
        attachPredictedLosses(&summary, plan: plan)
      } else {
        validationNote =
          "This validation was of another plan (its plan row has \(ReportText.grouped(summary.models.first?.bytes ?? 0)) "
          + "bytes, this plan \(ReportText.grouped(plan.totalBytes))); validate this plan to compare it."
      }
      self.validation = summary
    }
    audit = Self.auditSummary(run, score: plan?.score ?? frontierScore)
  }

  /// Whether the validation's first row is this plan: the same format counts, or (the run's table, which has
  /// none) the same bytes.
  static func isSamePlan(_ summary: ValidationSummary, _ plan: PlanDocument) -> Bool {
    guard let first = summary.models.first, first.name == "plan" else { return false }
    if let counts = first.formatCounts { return counts == plan.formatCounts }
    return first.bytes == plan.totalBytes
  }

  /// The option and path to name in an error about a document from `source`.
  static func option(_ option: String, _ source: Source, _ runPath: String) -> (option: String, path: String) {
    switch source {
    case .file(let path): (option, path)
    case .runFile, .absent: ("RUN.h5", runPath)
    }
  }

  /// `model.layers.12.self_attn.q_proj` → (12, `self_attn.q_proj`); anything else → (nil, the name).
  static func split(_ name: String) -> (Int?, String) {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    if parts.count > 3, parts[0] == "model", parts[1] == "layers", let block = Int(parts[2]), block >= 0 {
      return (block, parts[3...].joined(separator: "."))
    }
    return (nil, name)
  }

  static func describe(_ counts: [String: Int]) -> String {
    counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
  }

  /// Short column label of a type: its last path component when no other type shares it.
  public func typeLabel(_ type: String) -> String {
    let last = String(type.split(separator: ".").last ?? Substring(type))
    let clashes = types.filter { String($0.split(separator: ".").last ?? "") == last }.count
    return clashes > 1 ? type : last
  }

  /// The planned layers, in run order.
  public var plannedLayers: [LayerRow] { layers.filter { $0.planned != nil } }

  /// Parameters of the planned layers.
  public var plannedParameters: Int { plannedLayers.reduce(0) { $0 + $1.parameters } }
}

extension PlanDocument {
  /// How many layers use each format.
  public var formatCounts: [String: Int] {
    var counts: [String: Int] = [:]
    for layer in layers.values { counts[layer.format, default: 0] += 1 }
    return counts
  }
}

extension ReportData {
  static func summary(_ v: ValidationReport, source: Source) -> ValidationSummary {
    ValidationSummary(
      source: source,
      models: v.models.map {
        ValidatedModel(
          name: $0.name, label: $0.label, bytes: $0.bytes, bitsPerWeight: $0.bitsPerWeight, kld: $0.kld,
          perplexity: $0.perplexity, top1: $0.top1, kldMinusPlan: $0.kldMinusPlan, formatCounts: $0.formatCounts)
      },
      basePerplexity: v.basePerplexity, baseDescription: v.baseDescription, modelPath: v.model, planPath: v.plan,
      evalText: v.evalText, evalSHA256: v.evalSHA256, scoringProtocol: v.scoringProtocol, activations: v.activations,
      tokens: v.tokens, windows: v.windowStarts.count, bootstrapReplicates: v.bootstrapReplicates,
      bootstrapSeed: v.bootstrapSeed)
  }

  /// The run's `/validation` table (no per-window scores: no paired differences, no top-1 interval).
  static func summary(_ t: MeasuredRun.ValidationTable) -> ValidationSummary {
    ValidationSummary(
      source: .runFile,
      models: t.name.indices.map { i in
        ValidatedModel(
          name: t.name[i], label: t.label[i], bytes: t.bytes[i], bitsPerWeight: t.bitsPerWeight[i],
          kld: Interval(value: t.kld[i], low: t.kldLow[i], high: t.kldHigh[i]),
          perplexity: Interval(value: t.perplexity[i], low: t.perplexityLow[i], high: t.perplexityHigh[i]),
          top1: Interval(value: t.top1[i], low: .nan, high: .nan), kldMinusPlan: nil, formatCounts: nil)
      },
      basePerplexity: nil, baseDescription: nil, modelPath: nil, planPath: t.plan, evalText: nil,
      evalSHA256: t.evalSHA256, scoringProtocol: t.scoringProtocol, activations: t.activations, tokens: t.tokens,
      windows: t.windows, bootstrapReplicates: nil, bootstrapSeed: nil)
  }
}
