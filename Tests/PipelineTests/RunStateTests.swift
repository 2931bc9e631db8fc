import Foundation
import Pipeline
import TensorCore
import Testing
import _TestSupport

/// `bitplan run`'s state file: each finished stage's files recorded by size and SHA-256, and checked before a run
/// resumes; the first stage whose files changed is done again with every stage after it.
@Suite struct RunStateTests {
  /// A run directory with three finished stages (files of made-up bytes; the records are what matters).
  static func directory() throws -> (path: String, state: RunPipeline.State) {
    let dir = temporaryFolder("run-state")
    var state = RunPipeline.State(arguments: ["--bpw": "5"])
    try Data("run".utf8).write(to: URL(fileURLWithPath: dir + "/run.h5"))
    try state.finish(.init(name: "measure", outputs: ["run.h5"], seconds: 1), in: dir)
    try Data("{\"plan\": 1}".utf8).write(to: URL(fileURLWithPath: dir + "/plan.json"))
    try Data("run with plan".utf8).write(to: URL(fileURLWithPath: dir + "/run.h5"))
    try state.finish(.init(name: "allocate any", outputs: ["plan.json"], seconds: 1), alsoRewritten: ["run.h5"], in: dir)
    try Data("# report".utf8).write(to: URL(fileURLWithPath: dir + "/report.md"))
    try state.finish(.init(name: "report any", outputs: ["report.md"], seconds: 1), in: dir)
    try state.write(directory: dir)
    return (dir, state)
  }

  @Test func finishRecordsSizeAndSHA256OfEveryFileAsLastWritten() throws {
    let (dir, state) = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(state.files?["run.h5"] == RunPipeline.FileRecord(bytes: 13, sha256: SHA256.hexDigest(Array("run with plan".utf8))))
    #expect(state.files?["plan.json"]?.bytes == 11)
    #expect(try RunPipeline.State.load(directory: dir) == state, "the records survive the state file")
    var intact = state
    #expect(try intact.verify(directory: dir) == nil)
    #expect(intact == state)
  }

  /// Same size, other bytes: a changed file is found by its SHA-256; a missing one too. The first stage with a
  /// changed file goes, with every later stage.
  @Test func aChangedOrMissingFileDropsItsStageAndTheLaterOnes() throws {
    let (dir, state) = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data("{\"plan\": 2}".utf8).write(to: URL(fileURLWithPath: dir + "/plan.json"))
    var changed = state
    let redo = try #require(try changed.verify(directory: dir))
    #expect(redo == RunPipeline.Redo(stage: "allocate any", file: "plan.json", reason: "changed since it was written (its SHA-256 differs)", laterStages: 1))
    #expect(redo.description == "plan.json changed since it was written (its SHA-256 differs): allocating again, then the 1 stage after it")
    #expect(changed.stages.map(\.name) == ["measure"])
    #expect(changed.files.map { Set($0.keys) } == ["run.h5"])

    try FileManager.default.removeItem(atPath: dir + "/run.h5")
    var missing = state
    #expect(try missing.verify(directory: dir)?.description == "run.h5 is missing: measuring again, then the 2 stages after it")
    #expect(missing.stages.isEmpty)
  }

  /// A folder or a symbolic link where a stage wrote a file is refused, naming it, before any stage is dropped.
  @Test func aFolderOrLinkInPlaceOfAFileIsRefused() throws {
    let (dir, state) = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.removeItem(atPath: dir + "/report.md")
    try FileManager.default.createDirectory(atPath: dir + "/report.md", withIntermediateDirectories: false)
    try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/plan.json"))  // changed too: the folder is found first
    var copy = state
    let folder = try #require(throws: InputError.self) { try copy.verify(directory: dir) }
    #expect(folder.message.hasPrefix("'\(dir)/report.md' is a folder, not the file an earlier bitplan run wrote there"))
    #expect(copy == state)
    try FileManager.default.removeItem(atPath: dir + "/report.md")
    try FileManager.default.createSymbolicLink(atPath: dir + "/report.md", withDestinationPath: dir + "/plan.json")
    let link = try #require(throws: InputError.self) { try copy.verify(directory: dir) }
    #expect(link.message.hasPrefix("'\(dir)/report.md' is a symbolic link"))
  }

  /// A state written before the records: the files must exist and a JSON file must parse (a run file must pass
  /// `RunStore.read`, a plan or VALIDATION.json decode as one).
  @Test func aStateWithoutRecordsReadsTheFiles() throws {
    let dir = temporaryFolder("run-state-legacy")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var state = RunPipeline.State(arguments: [:])
    state.stages = [
      .init(name: "report any", outputs: ["report.md"], seconds: 1),
      .init(name: "export any", outputs: ["plan-tensors.json"], seconds: 1),
    ]
    try Data("# report".utf8).write(to: URL(fileURLWithPath: dir + "/report.md"))
    try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/plan-tensors.json"))
    var intact = state
    #expect(try intact.verify(directory: dir) == nil)
    try Data("{".utf8).write(to: URL(fileURLWithPath: dir + "/plan-tensors.json"))
    let redo = try #require(try state.verify(directory: dir))
    #expect(redo.stage == "export any" && redo.reason.hasPrefix("is not valid"), "\(redo)")
    #expect(state.stages.map(\.name) == ["report any"] && state.files == nil)
  }
}
