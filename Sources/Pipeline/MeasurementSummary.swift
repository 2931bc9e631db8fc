import Foundation
import Sensitivity

/// What `bitplan measure` reports when it is done (`--json` prints it): the file, its size, whole-model totals with
/// their uncertainty, the audit's rank correlations, and where the time went. NaN numbers are `nil` (JSON has no
/// NaN).
public struct MeasurementSummary: Sendable, Codable, Equatable {
  /// The finished `RUN.h5`.
  public var output: String
  /// Linear layers measured.
  public var layers: Int
  /// Weights in those layers.
  public var parameters: Int
  /// Candidate formats, in column order.
  public var candidates: [String]
  /// Calibration windows of the Fisher gradient.
  public var calibrationWindows: Int
  /// Hutchinson probes taken.
  public var probesUsed: Int
  /// `Σᵢ tr(Hᵢᵢ)` over all linear layers: the trace of the Hessian restricted to the linear weights.
  public var hessianTraceTotal: Double?
  /// Standard error of that sum, from the per-probe sums `Σᵢ vᵢᵀ(Hv)ᵢ = vᵀHv` (sample standard deviation / √K).
  public var hessianTraceTotalStandardError: Double?
  /// `Σᵢ` of `/fisher/trace`.
  public var fisherTraceTotal: Double?
  /// Mean NLL of the unquantized model on the held-out tokens (with `--audit`).
  public var auditBaselineNLL: Double?
  /// Audited single-layer quantizations.
  public var audited: Int
  /// Spearman ρ of each proxy against the true ΔNLL, by score name (with `--audit`).
  public var spearmanNLL: [String: Double?]
  /// Spearman ρ of each proxy against the true ΔKLD.
  public var spearmanKLD: [String: Double?]
  /// Single-layer pairs whose KLD was measured end to end (`--score-kld`), and on how many calibration tokens.
  public var measuredPairs: Int?
  public var kldTokens: Int?
  /// Seconds spent in this process per stage: `setup` (reading, tokenizing, checksums), the `MeasurementStage`
  /// names, `finish` (the final file). Stages a resumed run had finished before take no time.
  public var stageSeconds: [String: Double]
  /// Wall time of this process's measurement, setup included.
  public var totalSeconds: Double

  /// The summary of a finished run.
  public init(run: MeasuredRun, output: String, windows: Int, seconds: [String: Double]) {
    func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
    self.output = output
    layers = run.layers.count
    parameters = run.layers.reduce(0) { $0 + $1.parameterCount }
    candidates = run.candidates.map(\.name)
    calibrationWindows = windows
    probesUsed = run.probeValues.count
    hessianTraceTotal = finite(run.hessianTrace.reduce(0, +))
    let sums = run.probeValues.map { $0.reduce(0, +) }
    if sums.count > 1 {
      let mean = sums.reduce(0, +) / Double(sums.count)
      let variance = sums.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(sums.count - 1)
      hessianTraceTotalStandardError = finite((variance / Double(sums.count)).squareRoot())
    }
    fisherTraceTotal = finite(run.fisherTrace.reduce(0, +))
    auditBaselineNLL = run.audit.flatMap { finite($0.baselineNLL) }
    audited = run.audit?.layer.count ?? 0
    spearmanNLL = run.audit?.spearmanNLL.mapValues(finite) ?? [:]
    spearmanKLD = run.audit?.spearmanKLD.mapValues(finite) ?? [:]
    if let m = run.measured {
      measuredPairs = m.kld.joined().count { !$0.isNaN }
      kldTokens = m.tokens
    }
    stageSeconds = seconds
    totalSeconds = seconds.values.reduce(0, +)
  }
}

/// Attributes wall time to named stages: each `lap(name)` charges the time since the previous lap to `name`.
final class StageClock: @unchecked Sendable {
  private var last = ContinuousClock.now
  /// Seconds per stage name.
  private(set) var seconds: [String: Double] = [:]

  /// Charges the time since the last lap (or creation) to `stage`.
  func lap(_ stage: String) {
    let now = ContinuousClock.now
    let d = now - last
    seconds[stage, default: 0] += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    last = now
  }
}
