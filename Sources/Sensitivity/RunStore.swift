import Foundation
import TensorCore

/// The run store: builds `RUN.h5` progressively at `RUN.h5.partial`, resumes it, and renames it into place.
///
/// Every `record…` call updates the in-memory `run` and then checkpoints: the whole partial file is written to
/// `RUN.h5.partial.tmp` and renamed over `RUN.h5.partial` (POSIX `rename` is atomic), so a process killed at any
/// moment leaves the previous or the new checkpoint, never a half-written HDF5 file. The files are small (per-layer
/// and per-(layer, candidate) numbers); per-parameter vectors go to `VectorCheckpoint` side files. `finish()`
/// writes the final file the same way and removes the partial files. A rerun with the same provenance continues
/// where the checkpoint left off; with other settings it stops with `.provenanceMismatch`.
public final class RunStore {
  /// The final file, `RUN.h5`.
  public let path: String
  /// Where the run is built: `path + ".partial"`.
  public var partialPath: String { path + ".partial" }
  /// Everything measured so far.
  public private(set) var run: MeasuredRun
  /// Whether an existing partial file was resumed.
  public let resumed: Bool
  /// How far the run got (what a resumed run will not recompute).
  public private(set) var progress: RunProgress
  /// Side vectors this process saved as a stage's last, by name, with their generation: the very values the file
  /// holds, kept so that the next stage of an uninterrupted run does not read back the 850 MB just written
  /// (`sideVector`). Only a last save is kept: a stage that went on adding to a kept vector would copy it
  /// (copy-on-write). `releaseSideVectors()` frees them.
  private var savedVectors: [String: (generation: Int, blocks: [[Double]])] = [:]
  /// Generations of the gradient sum this process wrote in place (`recordStreamedFisherWindows`): their checksum was
  /// computed from the very bytes, so reading them back does not check it again (10 GB per window for a 1B model).
  private var writtenSumGenerations: Set<Int> = []

  /// Opens the partial run at `path + ".partial"` if there is one, or starts a new one.
  /// - Parameters:
  ///   - path: the final file, `RUN.h5`.
  ///   - provenance: the settings of this command; must equal the partial run's (`created` aside).
  ///   - layers: the model's linear layers, in order.
  ///   - candidates: the candidate formats, in order; their names must equal `provenance.candidates`.
  /// - Throws: `.provenanceMismatch` when the partial run was made with other settings, another model or other
  ///   layers; `.invalidArgument` for no layers or candidates; `.badRunFile`/`.io` for an unreadable partial file.
  public init(
    path: String, provenance: RunProvenance, layers: [MeasuredRun.Layer], candidates: [MeasuredRun.Candidate]
  ) throws(SensitivityError) {
    if layers.isEmpty || candidates.isEmpty {
      throw SensitivityError(.invalidArgument, "a run needs layers and candidates", path: path)
    }
    if candidates.map(\.name) != provenance.candidates {
      throw SensitivityError(.invalidArgument, "candidate names disagree with the provenance", path: path)
    }
    if Set(layers.map(\.name)).count != layers.count {
      throw SensitivityError(.invalidArgument, "duplicate layer names", path: path)
    }
    self.path = path
    let partial = path + ".partial"
    if FileManager.default.fileExists(atPath: partial) {
      let stored: MeasuredRun, progress: RunProgress?
      do throws(SensitivityError) { (stored, progress) = try RunFile.read(partial) } catch {
        if error.code != .badRunFile { throw error }
        throw SensitivityError(
          .badRunFile, "\(error.message); delete it or move it aside to start the run again", path: partial)
      }
      guard let progress else {
        throw SensitivityError(.badRunFile, "'\(partial)' has no /progress group; delete it", path: partial)
      }
      // A resumed run continues from these counts; more than its own settings allow is damage, not progress.
      let settings = stored.provenance
      if stored.probeValues.count > settings.probes || (stored.audit?.layer.count ?? 0) > settings.auditCount {
        throw SensitivityError(
          .badRunFile, "more probes or audit entries than its settings allow; delete it or move it aside to start "
            + "the run again", path: partial)
      }
      var differences = provenance.differences(from: stored.provenance)
      if stored.layers != layers { differences.append("layers") }
      if stored.candidates != candidates { differences.append("candidate bits per weight") }
      if !differences.isEmpty {
        throw SensitivityError(
          .provenanceMismatch,
          "the partial run was made with other settings (\(differences.joined(separator: ", "))); rerun with the "
            + "same settings to resume it, or delete '\(partial)' to start again", path: partial)
      }
      run = stored
      self.progress = progress
      resumed = true
    } else {
      run = MeasuredRun(provenance: provenance, layers: layers, candidates: candidates)
      progress = RunProgress()
      resumed = false
      try checkpoint()
    }
  }

  /// Reads a finished `RUN.h5`.
  /// - Throws: `.badRunFile` for a malformed file or a partial one (finish it by rerunning `measure`), `.io`.
  public static func read(_ path: String) throws(SensitivityError) -> MeasuredRun {
    let (run, progress) = try RunFile.read(path)
    if progress != nil {
      throw SensitivityError(.badRunFile, "a partial run; rerun the same `bitplan measure` to finish it", path: path)
    }
    return run
  }

  /// Writes a fresh checksum header into the run file at `path`, accepting its bytes as they are now. For tests
  /// that edit a run file with HDF5 to reach the reader's other rules; an edited file is otherwise refused as
  /// "damaged (checksum mismatch)".
  /// - Throws: `.io` when the file cannot be read or written.
  package static func resealAfterEditing(_ path: String) throws(SensitivityError) { try RunFile.seal(path) }

  /// Writes the current state to the partial file atomically.
  func checkpoint() throws(SensitivityError) {
    try VectorCheckpoint.clearTemporary(partialPath + ".tmp")
    try RunFile.write(run, progress: progress, to: partialPath + ".tmp")
    try VectorCheckpoint.rename(partialPath + ".tmp", to: partialPath)
  }

  /// Applies `change` to the run and progress, then checkpoints (unless `checkpointing` is false: the change is then
  /// in memory only, and saved by the next checkpoint).
  func update(
    checkpointing: Bool = true, _ change: (inout MeasuredRun, inout RunProgress) -> Void
  ) throws(SensitivityError) {
    change(&run, &progress)
    if checkpointing { try checkpoint() }
  }

  /// Saves generation `generation` of the side vector `name`, runs `update`, then deletes older generations.
  /// - Parameter isLast: whether this is the stage's last save of the vector, which is then kept in memory.
  func update(
    saving vector: [[Double]]?, as name: String, generation: Int, isLast: Bool = false,
    _ change: (inout MeasuredRun, inout RunProgress) -> Void
  ) throws(SensitivityError) {
    if let vector { try VectorCheckpoint.save(vector, base: partialPath, name: name, generation: generation) }
    try update(change)
    if let vector {
      savedVectors[name] = isLast ? (generation, vector) : nil
      VectorCheckpoint.removeGenerations(base: partialPath, name: name, except: generation)
    }
  }

  /// Replaces the audit without a checkpoint (its correlations are derived data, written by `finish()`).
  func setAudit(_ audit: MeasuredRun.Audit) { run.audit = audit }

  /// Generation `generation` of the side vector `name` as consecutive blocks: the blocks this process saved, or
  /// one block read from the side file (a resumed run).
  func sideVector(_ name: String, generation: Int, count: Int) throws(SensitivityError) -> [[Double]] {
    if let saved = savedVectors[name], saved.generation == generation { return saved.blocks }
    return [try VectorCheckpoint.load(base: partialPath, name: name, generation: generation, count: count)]
  }

  /// Records that the calibration windows through `window` are summed in generation `window + 1` of the gradient
  /// sum's side file, which a `VectorCheckpoint.Writer` has put in place (the streamed sum), and deletes the older
  /// generations.
  /// - Throws: `.invalidArgument` for a window already stored; `.io` from the checkpoint.
  func recordStreamedFisherWindows(through window: Int) throws(SensitivityError) {
    if window < progress.fisherWindows {
      throw SensitivityError(
        .invalidArgument, "calibration window \(window) is already stored (next: \(progress.fisherWindows))", path: path)
    }
    try update { _, p in p.fisherWindows = window + 1 }
    writtenSumGenerations.insert(window + 1)
    savedVectors[SideVector.gradientSum.rawValue] = nil
    VectorCheckpoint.removeGenerations(base: partialPath, name: SideVector.gradientSum.rawValue, except: window + 1)
  }

  /// The gradient sum's side file of the windows recorded so far, for reading a layer at a time; nil before any.
  /// - Throws: `.badRunFile` for a missing, truncated or damaged file.
  func gradientSumReader() throws(SensitivityError) -> VectorCheckpoint.Reader? {
    if progress.fisherWindows == 0 { return nil }
    return try VectorCheckpoint.Reader(
      base: partialPath, name: SideVector.gradientSum.rawValue, generation: progress.fisherWindows,
      count: run.layers.reduce(0) { $0 + $1.parameterCount }, verify: !writtenSumGenerations.contains(progress.fisherWindows))
  }

  /// Frees the side vectors kept in memory (`sideVector` then reads the files).
  func releaseSideVectors() { savedVectors = [:] }

  /// Writes the final `RUN.h5` (no `/progress`) atomically and removes the partial file and its side files.
  /// - Returns: the finished run.
  @discardableResult
  public func finish() throws(SensitivityError) -> MeasuredRun {
    try VectorCheckpoint.clearTemporary(path + ".tmp")
    try RunFile.write(run, progress: nil, to: path + ".tmp")
    try VectorCheckpoint.rename(path + ".tmp", to: path)
    // unlink, not removeItem: only files go (a folder put there is never deleted recursively).
    discard()  // the partial file, a checkpoint write cut short by a kill, the side files
    return run
  }

  /// Removes the partial file, its checkpoint temporary and its side files, for a run that can never finish (a
  /// non-finite value computed from the model and the text: rerunning would compute it again).
  public func discard() {
    unlink(partialPath)
    unlink(partialPath + ".tmp")
    for name in SideVector.allCases {
      VectorCheckpoint.removeGenerations(base: partialPath, name: name.rawValue, except: nil)
    }
  }

  /// Names of the side vectors.
  enum SideVector: String, CaseIterable {
    /// `Σ_w ∇NLL_w` over the calibration windows done, all layers concatenated.
    case gradientSum = "gradient"
    /// `Σ_k v_k ⊙ Hv_k` over the probes done, all layers concatenated.
    case diagonalSum = "diagonal"
  }
}
