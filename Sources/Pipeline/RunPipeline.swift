import Allocation
import Foundation
import Quantization
import Sensitivity
import TensorCore

/// The library side of `bitplan run` (measure → allocate → validate → report → export): the state file that makes
/// it resumable, the candidates of a measurement shared by several targets, and the allocation of one target.
public enum RunPipeline {
  /// `DIR/run-state.json`: the arguments a run directory was made with, the stages finished so far (each with the
  /// files it wrote, relative to the directory, and its time) and the size and SHA-256 of every such file as last
  /// written. Written atomically after every stage, so a killed run resumes after the last stage recorded here;
  /// `verify(directory:)` does a stage again (and every stage after it) when one of its files is gone or changed.
  public struct State: Codable, Equatable, Sendable {
    /// One finished stage.
    public struct Stage: Codable, Equatable, Sendable {
      /// `measure`, `allocate llama-cpp`, `validate llama-cpp`, …
      public var name: String
      /// The files it wrote, relative to the run directory.
      public var outputs: [String]
      /// Seconds it took (in the process that finished it).
      public var seconds: Double

      public init(name: String, outputs: [String], seconds: Double) {
        self.name = name
        self.outputs = outputs
        self.seconds = seconds
      }
    }

    /// `1`.
    public var formatVersion = 1
    /// Every argument that changes what is written, as `--option` → value (paths absolute).
    public var arguments: [String: String]
    /// Stages finished, in order.
    public var stages: [Stage] = []
    /// Every file the finished stages wrote, as last written (the run file is rewritten by the allocate and validate
    /// stages too), by its path relative to the directory; nil in a state written before these were recorded, whose
    /// files `verify(directory:)` checks by reading them instead.
    public var files: [String: FileRecord]?
    /// SHA-256 of the bitplan executable that wrote the state (`currentBuild`); nil in a state written before it
    /// was recorded. Another build may compute other numbers (a new kernel moves last bits), so a run resumes only
    /// under the build that began it.
    public var build: String?

    enum CodingKeys: String, CodingKey {
      case formatVersion = "format_version"
      case arguments, stages, files, build
    }

    public init(arguments: [String: String], build: String? = nil) {
      self.arguments = arguments
      self.build = build
    }

    /// SHA-256 of this process's executable (`/proc/self/exe`), or nil where it cannot be read.
    public static let currentBuild: String? = try? SHA256.hexDigest(fileAt: "/proc/self/exe")

    /// The state file's name inside the run directory.
    public static let fileName = "run-state.json"

    /// The state in `directory`, or nil when it has none.
    /// - Throws: `InputError` for a state file that is not one.
    public static func load(directory: String) throws -> State? {
      let path = directory + "/" + fileName
      guard let data = FileManager.default.contents(atPath: path) else { return nil }
      do { return try JSONDecoder().decode(State.self, from: data) } catch {
        throw InputError(message: "'\(path)' is not a bitplan run state (\(error.localizedDescription)); use a new -o DIR or --restart")
      }
    }

    /// Writes the state atomically into `directory`.
    public func write(directory: String) throws {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
      var data = try encoder.encode(self)
      data.append(0x0A)
      try FileChecks.write(data, to: directory + "/" + Self.fileName, option: "-o")
    }

    /// The arguments that differ from `other`'s, as `--option old → new`.
    public func differences(from other: [String: String]) -> [String] {
      Set(arguments.keys).union(other.keys).sorted().compactMap { key in
        let (a, b) = (arguments[key], other[key])
        return a == b ? nil : "\(key) \(a ?? "(none)") → \(b ?? "(none)")"
      }
    }

    /// The finished stage `name`, or nil. Call `verify(directory:)` first: it drops the stages whose files are
    /// not what they wrote.
    public func finished(_ name: String) -> Stage? {
      stages.first(where: { $0.name == name })
    }

    /// Records `stage` as finished, dropping the stages recorded after an earlier copy of it (they used its old
    /// outputs and are done again), and the size and SHA-256 of its outputs and of `alsoRewritten` (files of
    /// earlier stages it rewrote: the run file) as they are now in `directory`.
    /// - Throws: `FileCheckError.writeFailed` naming a file that cannot be read back.
    public mutating func finish(_ stage: Stage, alsoRewritten: [String] = [], in directory: String) throws {
      if let i = stages.firstIndex(where: { $0.name == stage.name }) { stages.removeSubrange(i...) }
      stages.append(stage)
      var records = (files ?? [:]).filter { name, _ in stages.contains { $0.outputs.contains(name) } }
      for name in stage.outputs + alsoRewritten {
        records[name] = try FileRecord(path: directory + "/" + name)
      }
      files = records
    }
  }

  /// The candidates of one measurement shared by `targets`: per layer shape, every format some target stores for
  /// it (`Target.candidates`), f16 first, then by decreasing nominal bits (the first-seen order among equals). The
  /// measurement runs with target `any` and these candidates; `allocate --target T` then keeps T's own formats per
  /// layer with T's byte counts.
  /// - Parameters:
  ///   - shapes: the measured layers' `[rows, columns]`, with `isEmbedding` for the token embedding.
  public static func candidates(
    for targets: [Target], shapes: [(rows: Int, columns: Int, isEmbedding: Bool)]
  ) -> [QuantFormat] {
    var union: [QuantFormat] = []
    for target in targets {
      for shape in shapes {
        let formats =
          target == .any
          ? QuantFormat.defaultCandidates.filter { $0.canQuantize(rows: shape.rows, columns: shape.columns) }
          : target.candidates(rows: shape.rows, columns: shape.columns, isEmbedding: shape.isEmbedding)
        for format in formats where !union.contains(format) { union.append(format) }
      }
    }
    let order = union.enumerated().sorted { a, b in
      let (x, y) = (a.element.nominalBits, b.element.nominalBits)
      return x != y ? x > y : a.offset < b.offset
    }
    return order.map(\.element)
  }

  /// One target's plan, solved exactly for `budget` (`Budget.parse`) or `bpw`, in PLAN.json form.
  public struct TargetPlan {
    public var plan: AllocationPlan
    /// PLAN.json's bytes.
    public var document: Data
    /// The target the formats and bytes are for.
    public var target: String
  }

  /// Allocates the run at `runPath` for `target` under `budget` or `bpw` (exactly one), with the default score and
  /// the exact solver, as `bitplan allocate RUN.h5 --target T` does.
  /// - Throws: what `AllocationInput.load`, `Budget` and the solver throw (an infeasible budget names the range).
  public static func allocate(runPath: String, budget: String?, bpw: String?, target: Target) throws -> TargetPlan {
    let loaded = try AllocationInput.load(from: runPath, score: nil, target: target)
    let problem = loaded.problem
    let requested = try budget.map { (text) throws(AllocationError) in try Budget.parse(text) }
      ?? Budget.bitsPerWeight(bpw ?? "")
    let bytes = try requested.bytes(parameterCount: problem.parameterCount)
    try problem.checkFeasible(budget: bytes)
    let pareto = try ParetoFrontier(problem)
    let plan = try problem.solve(budget: bytes, using: .exact, frontier: pareto)
    return TargetPlan(
      plan: plan, document: PlanDocument(plan: plan, problem: problem, target: loaded.target).jsonData(),
      target: loaded.target)
  }
}
