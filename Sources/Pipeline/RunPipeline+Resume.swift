import Allocation
import Foundation
import Sensitivity
import TensorCore
import Validation

#if canImport(Glibc)
  import Glibc
#endif

extension RunPipeline {
  /// A file a stage of `bitplan run` wrote, as it was then: its size and SHA-256, compared when the run resumes.
  public struct FileRecord: Codable, Equatable, Sendable {
    /// Its size in bytes.
    public var bytes: Int
    /// Lower-case hex SHA-256 of its bytes.
    public var sha256: String

    public init(bytes: Int, sha256: String) {
      self.bytes = bytes
      self.sha256 = sha256
    }

    /// The size and SHA-256 of the file at `path`, read in 1 MiB chunks.
    /// - Throws: `FileCheckError.writeFailed` (option `-o`) when it cannot be read back.
    public init(path: String) throws(FileCheckError) {
      guard let record = Self.read(path) else {
        throw FileCheckError(.writeFailed, option: "-o", path: path, "cannot be read back to record its SHA-256")
      }
      self = record
    }

    /// The record of the file at `path`, or nil when it cannot be opened or read.
    static func read(_ path: String) -> FileRecord? {
      var st = stat()
      guard stat(path, &st) == 0, let digest = try? SHA256.hexDigest(fileAt: path) else { return nil }
      return FileRecord(bytes: Int(st.st_size), sha256: digest)
    }
  }

  /// A finished stage that `State.verify(directory:)` found must be done again, and why.
  public struct Redo: CustomStringConvertible, Sendable, Equatable {
    /// `measure`, `allocate llama-cpp`, …
    public var stage: String
    /// The first of its files found missing or changed, relative to the run directory.
    public var file: String
    /// `is missing`, `changed since it was written (…)`, `is not valid JSON (…)`.
    public var reason: String
    /// How many finished stages after it are done again too.
    public var laterStages: Int

    public init(stage: String, file: String, reason: String, laterStages: Int) {
      self.stage = stage
      self.file = file
      self.reason = reason
      self.laterStages = laterStages
    }

    /// `plan.json changed since it was written (its SHA-256 differs): allocating again, then the 3 stages after it`.
    public var description: String {
      let verbs = [
        "measure": "measuring again", "allocate": "allocating again", "validate": "validating again",
        "report": "writing the report again", "export": "exporting again",
      ]
      let kind = String(stage.prefix { $0 != " " })
      let then = laterStages == 0 ? "" : ", then the \(laterStages) stage\(laterStages == 1 ? "" : "s") after it"
      return "\(file) \(reason): \(verbs[kind] ?? "doing \(stage) again")\(then)"
    }
  }
}

extension RunPipeline.State {
  /// Checks the files of every finished stage in `directory` before a run resumes, and drops the first stage whose
  /// files are not what it wrote, with every stage after it (they used its outputs), so that they are done again.
  ///
  /// A file is what its stage wrote when it is a regular file of the recorded size and SHA-256 (`files`). A state
  /// written before those were recorded falls back to reading the file: the run file must pass its checksum and
  /// open (`RunStore.read`), a plan or VALIDATION.json must decode as one, any other JSON must parse.
  /// - Returns: the stage dropped and why, or nil when every finished stage stands.
  /// - Throws: `InputError` naming the file when a stage's file is now a folder, a symbolic link or anything else
  ///   that is not a regular file: the run does not replace what it did not write. Checked for every stage before
  ///   anything is dropped.
  public mutating func verify(directory: String) throws -> RunPipeline.Redo? {
    for stage in stages {
      for name in stage.outputs { try Self.checkKind(directory + "/" + name) }
    }
    for (index, stage) in stages.enumerated() {
      for name in stage.outputs {
        guard let reason = check(name, in: directory) else { continue }
        let later = stages.count - index - 1
        stages.removeSubrange(index...)
        files = files?.filter { name, _ in stages.contains { $0.outputs.contains(name) } }
        return RunPipeline.Redo(stage: stage.name, file: name, reason: reason, laterStages: later)
      }
    }
    return nil
  }

  /// Refuses a path that exists and is not a regular file.
  private static func checkKind(_ path: String) throws {
    var st = stat()
    guard lstat(path, &st) == 0 else {
      if errno == ENOENT { return }
      throw InputError(message: "'\(path)' cannot be examined: \(String(cString: strerror(errno)))")
    }
    let kind = st.st_mode & S_IFMT
    guard kind != S_IFREG else { return }
    let what =
      switch kind {
      case S_IFDIR: "a folder"
      case S_IFLNK: "a symbolic link"
      default: "not a regular file"
      }
    throw InputError(
      message: "'\(path)' is \(what), not the file an earlier bitplan run wrote there; move it away and run the "
        + "command again, or use a new -o DIR")
  }

  /// Why the regular file `name` of a finished stage is not what it wrote, or nil when it is.
  private func check(_ name: String, in directory: String) -> String? {
    let path = directory + "/" + name
    var st = stat()
    guard lstat(path, &st) == 0 else { return "is missing" }
    if let recorded = files?[name] {
      guard let now = RunPipeline.FileRecord.read(path) else { return "cannot be read" }
      if now.bytes != recorded.bytes {
        return "changed since it was written (\(now.bytes) bytes, \(recorded.bytes) when written)"
      }
      return now.sha256 == recorded.sha256 ? nil : "changed since it was written (its SHA-256 differs)"
    }
    // A state without records: the file must at least read as what it is.
    if name == "run.h5" {
      do { _ = try RunStore.read(path) } catch { return "is not a readable run file (\(error.message))" }
      return nil
    }
    guard name.hasSuffix(".json") else { return nil }
    guard let data = FileManager.default.contents(atPath: path) else { return "cannot be read" }
    do {
      if name.hasSuffix("VALIDATION.json") {
        _ = try JSONDecoder().decode(ValidationReport.self, from: data)
      } else if name.hasSuffix("plan.json") {
        _ = try PlanFile.decode(data, source: name)  // the reader every command uses
      } else {
        _ = try JSONSerialization.jsonObject(with: data)
      }
    } catch let error as AllocationError {
      return "is not valid (\(error.message))"
    } catch {
      return "is not valid (\(oneLineDecodingMessage(error)))"
    }
    return nil
  }
}
