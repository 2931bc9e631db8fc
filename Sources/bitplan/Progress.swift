import Foundation

/// A one-line progress display with a per-stage ETA, on stderr, only when stderr is a terminal.
///
/// Each `update(stage:done:total:)` redraws `"[2/4] hessian  12/64  19%  stage 0:14  ETA 0:51  total 0:20"`
/// (at most ten times a second; always for the last unit) and ends the line when a stage completes, so finished
/// stages stay on screen with their time. The ETA is the stage's remaining units at the mean rate of the units done
/// in this process: a resumed stage's units from before the restart are excluded, since they took no time here,
/// and once a second unit is done the first is left out too, since its time includes what came before the stage's
/// work (reading the model, a resumed run's setup and base pass) and made the ETA right after a resume far too high.
/// When stderr is not a terminal (a pipe, a file, a test), nothing is written.
final class ProgressLine {
  /// Whether anything is drawn.
  let enabled: Bool
  /// The stages this run goes through, in order (for the `[i/n]` prefix).
  let stages: [String]
  private let start = Date()
  private var stage: String?
  private var stageStart = Date()
  private var doneAtStageStart = 0
  /// When this process finished the stage's first unit, and the count then.
  private var firstUnitEnd = Date()
  private var doneAtFirstUnit = 0
  private var lastDraw = Date.distantPast
  private var lastEvent = Date()

  /// A display for `stages`; draws only when `enabled` (default: stderr is a terminal).
  init(stages: [String], enabled: Bool = isatty(STDERR_FILENO) != 0) {
    self.stages = stages
    self.enabled = enabled
  }

  /// Shows a status line before the first stage (e.g. while the model loads).
  func status(_ text: String) {
    guard enabled else { return }
    write("\r\u{1B}[K\(text)")
  }

  /// Records that `done` of `total` units of `stage` are finished and redraws.
  func update(stage name: String, done: Int, total: Int) {
    let now = Date()
    if name != stage {
      // The first unit of a stage is timed from the previous event: the work between them is this unit's.
      stage = name
      stageStart = lastEvent
      doneAtStageStart = done - 1
      firstUnitEnd = now
      doneAtFirstUnit = done
    }
    lastEvent = now
    guard enabled, done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
    lastDraw = now
    let elapsed = now.timeIntervalSince(stageStart)
    let doneHere = done - doneAtStageStart
    let perUnit =
      done > doneAtFirstUnit
      ? now.timeIntervalSince(firstUnitEnd) / Double(done - doneAtFirstUnit) : elapsed / Double(max(doneHere, 1))
    let eta = doneHere > 0 ? perUnit * Double(max(0, total - done)) : .nan
    let index = (stages.firstIndex(of: name) ?? 0) + 1
    let percent = total > 0 ? 100 * done / total : 100
    var line = "[\(index)/\(stages.count)] \(name)  \(done)/\(total)  \(percent)%  stage \(Self.clock(elapsed))"
    if done < total { line += "  ETA \(Self.clock(eta))" }
    line += "  total \(Self.clock(now.timeIntervalSince(start)))"
    write("\r\u{1B}[K" + line + (done >= total ? "\n" : ""))
  }

  /// Clears an unfinished line (before the final report or an error).
  func finish() {
    guard enabled else { return }
    write("\r\u{1B}[K")
  }

  /// `m:ss`, or `h:mm:ss` past an hour; `?` when unknown.
  static func clock(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    let (h, m, r) = (s / 3600, s / 60 % 60, s % 60)
    return h > 0 ? String(format: "%d:%02d:%02d", h, m, r) : String(format: "%d:%02d", m, r)
  }

  private func write(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
  }
}
