import Foundation

/// What `bitplan validate --repair N` did: the plan's closest calls measured end to end on the calibration text,
/// the scale between the score's units and KLD, the re-solve at the same budget, and the repaired plan against the
/// plan on the evaluation windows. VALIDATION.json's `repair` object (absent without `--repair`).
public struct RepairSummary: Sendable, Equatable, Codable {
  /// One measured swap.
  public struct Swap: Sendable, Equatable, Codable {
    public var layer: String
    /// `upgrade` or `downgrade`.
    public var direction: String
    /// The plan's format and the one swapped to.
    public var from: String
    public var to: String
    /// bytes(to) − bytes(from).
    public var deltaBytes: Int
    /// Predicted loss change, in the plan's score units.
    public var predictedDelta: Double
    /// −Δpredicted/Δbytes.
    public var rate: Double
    /// |ln(rate/λ*)|.
    public var distance: Double
    /// Mean KLD on the calibration windows with only this layer swapped.
    public var calibrationKLD: Double
    /// calibrationKLD − the plan's (nats).
    public var measuredDelta: Double

    enum CodingKeys: String, CodingKey {
      case layer, direction, from, to, rate, distance
      case deltaBytes = "delta_bytes"
      case predictedDelta = "predicted_delta"
      case calibrationKLD = "calibration_kld"
      case measuredDelta = "measured_delta"
    }

    public init(
      layer: String, direction: String, from: String, to: String, deltaBytes: Int, predictedDelta: Double, rate: Double,
      distance: Double, calibrationKLD: Double, measuredDelta: Double
    ) {
      self.layer = layer
      self.direction = direction
      self.from = from
      self.to = to
      self.deltaBytes = deltaBytes
      self.predictedDelta = predictedDelta
      self.rate = rate
      self.distance = distance
      self.calibrationKLD = calibrationKLD
      self.measuredDelta = measuredDelta
    }
  }

  /// One layer the re-solve moved.
  public struct Change: Sendable, Equatable, Codable {
    public var layer: String
    public var from: String
    public var to: String
    public var deltaBytes: Int

    enum CodingKeys: String, CodingKey {
      case layer, from, to
      case deltaBytes = "delta_bytes"
    }

    public init(layer: String, from: String, to: String, deltaBytes: Int) {
      self.layer = layer
      self.from = from
      self.to = to
      self.deltaBytes = deltaBytes
    }
  }

  /// N as asked.
  public var requested: Int
  /// The plan's score, whose units the predictions are in.
  public var score: String
  /// λ*: the budget's multiplier, score units per byte.
  public var multiplier: Double
  /// The calibration text the swaps were measured on, its windows and scored predictions per window.
  public var calibrationText: String
  public var calibrationWindows: Int
  public var calibrationScoredTokens: Int
  /// The plan's mean KLD on the calibration windows.
  public var planCalibrationKLD: Double
  /// The swaps measured, nearest λ* first.
  public var swaps: [Swap]
  /// measured ≈ scale · predicted; nil when no scale could be fitted (then nothing was re-solved).
  public var scale: Double?
  /// `least_squares` or `magnitude_ratio` (MeasuredRepair.ScaleRule).
  public var scaleRule: String?
  /// The budget re-solved at, and the plan's and the repaired plan's bytes.
  public var budgetBytes: Int
  public var planBytes: Int
  public var repairedBytes: Int
  /// Whether the exact solver on the unmodified problem gives the plan back (false: the plan came from another
  /// solver, score or constraints, and some changes below are not the measurements' doing).
  public var planIsExactOptimum: Bool
  /// The layers the re-solve moved (empty: the plan stands).
  public var changes: [Change]
  /// On the evaluation windows (absent when nothing changed): the plan's and the repaired plan's mean KLD with
  /// their intervals, and the paired interval of KLD(repaired) − KLD(plan).
  public var planKLD: Interval?
  public var repairedKLD: Interval?
  public var kldMinusPlan: Interval?
  /// Whether the repaired plan's KLD is below the plan's with the paired interval entirely below zero; nil when
  /// nothing changed.
  public var improved: Bool?
  /// Why nothing was measured or re-solved, when that happened.
  public var note: String?
  /// The repaired PLAN.json written (`--repair-out`), if any.
  public var repairedPlan: String?
  /// Wall-clock seconds of the repair (measurements, re-solve, evaluation).
  public var elapsedSeconds: Double

  enum CodingKeys: String, CodingKey {
    case requested, score, multiplier, swaps, scale, changes, improved, note
    case calibrationText = "calibration_text"
    case calibrationWindows = "calibration_windows"
    case calibrationScoredTokens = "calibration_scored_tokens"
    case planCalibrationKLD = "plan_calibration_kld"
    case scaleRule = "scale_rule"
    case budgetBytes = "budget_bytes"
    case planBytes = "plan_bytes"
    case repairedBytes = "repaired_bytes"
    case planIsExactOptimum = "plan_is_exact_optimum"
    case planKLD = "plan_kld"
    case repairedKLD = "repaired_kld"
    case kldMinusPlan = "kld_minus_plan"
    case repairedPlan = "repaired_plan"
    case elapsedSeconds = "elapsed_seconds"
  }

  public init(requested: Int, score: String, multiplier: Double, calibrationText: String, budgetBytes: Int, planBytes: Int) {
    self.requested = requested
    self.score = score
    self.multiplier = multiplier
    self.calibrationText = calibrationText
    self.calibrationWindows = 0
    self.calibrationScoredTokens = 0
    self.planCalibrationKLD = .nan
    self.swaps = []
    self.budgetBytes = budgetBytes
    self.planBytes = planBytes
    self.repairedBytes = planBytes
    self.planIsExactOptimum = true
    self.changes = []
    self.elapsedSeconds = 0
  }

  /// The printed lines: the swaps' table, the scale, the changes and the verdict.
  public var table: [String] {
    var lines = [
      "repair: \(swaps.count) closest calls of \(requested) asked (λ* \(String(format: "%.4g", multiplier)) \(score)/byte), "
        + "measured on \(calibrationWindows) calibration window\(calibrationWindows == 1 ? "" : "s") × "
        + "\(calibrationScoredTokens) tokens of \(calibrationText), plan KLD \(fixed(planCalibrationKLD, 5))"
    ]
    if !swaps.isEmpty {
      lines.append(
        "  layer                                    from → to                   Δbytes   predicted Δ   measured Δ KLD")
      for s in swaps {
        let name = s.layer.count > 40 ? String(s.layer.prefix(39)) + "…" : s.layer
        lines.append(
          "  " + name.padding(toLength: 40, withPad: " ", startingAt: 0) + " "
            + "\(s.from) → \(s.to)".padding(toLength: 26, withPad: " ", startingAt: 0)
            + String(s.deltaBytes).leftPadded(8) + "  " + String(format: "%12.4g", s.predictedDelta) + "  "
            + String(format: "%+14.5f", s.measuredDelta))
      }
    }
    if let scale, let scaleRule {
      lines.append("  scale: measured ≈ \(String(format: "%.4g", scale)) × predicted (\(scaleRule))")
    }
    if !planIsExactOptimum {
      lines.append("  note: the exact solver on the run's problem does not give this plan back; changes may include that difference")
    }
    if changes.isEmpty {
      lines.append("  re-solve at \(budgetBytes) bytes: " + (note ?? "the plan stands (no layer changes)"))
    } else {
      lines.append(
        "  re-solve at \(budgetBytes) bytes: \(changes.count) layer\(changes.count == 1 ? "" : "s") changed, "
          + "\(planBytes) → \(repairedBytes) bytes: "
          + changes.map { "\($0.layer) \($0.from)→\($0.to)" }.joined(separator: ", "))
      if let planKLD, let repairedKLD, let kldMinusPlan {
        lines.append(
          "  eval KLD: plan \(planKLD.formatted(4)), repaired \(repairedKLD.formatted(4)), repaired − plan "
            + "\(kldMinusPlan.formatted(4)): " + (improved == true ? "improved" : "not a significant improvement"))
      }
    }
    return lines
  }
}
