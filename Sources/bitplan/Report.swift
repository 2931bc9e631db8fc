import Allocation
import ArgumentParser
import Foundation
import Pipeline
import Quantization
import Reporting
import Sensitivity
import TensorCore
import Validation

#if canImport(Glibc)
  import Glibc
#endif

/// `bitplan report RUN.h5 [--plan PLAN.json] [--validation VALIDATION.json] -o DIR`: report.md and report.html.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write report.md (for a model card) and one self-contained report.html for a run, its plan and validation.",
    discussion: """
      Without --plan or --validation the documents recorded in the run file are used (allocate --record, \
      validate --run); a section with nothing to show names the command that fills it. DIR is created when absent \
      (its parent must exist); report.md and report.html are written together or not at all, and -o must not be a \
      file or one of the inputs. report.html fetches nothing: inline CSS, SVG charts and a little script.
      """)

  @Argument(help: ArgumentHelp("The run file from bitplan measure.", valueName: "RUN.h5")) var runFile: String
  @Option(help: ArgumentHelp("The plan (default: the one recorded in RUN.h5 by allocate --record).", valueName: "PLAN.json")) var plan: String?
  @Option(help: ArgumentHelp("The validation (default: the one recorded in RUN.h5 by validate --run).", valueName: "VALIDATION.json")) var validation: String?
  @OptionGroup var outputFolder: OutputFile<ReportFolderOutput>
  @OptionGroup var jsonFlag: JSONFlag
  var output: String { outputFolder.output }
  var json: Bool { jsonFlag.json }

  func run() throws {
    let written = try Report.write(run: runFile, plan: plan, validation: validation, directory: output)
    if json {
      try printJSON(["written": written])
    } else {
      print("wrote \(written.joined(separator: ", "))")
    }
  }
}

/// The report's entry point for other commands (`bitplan run` calls it): reads the inputs, checks that they belong
/// together, renders both documents, then writes them into `directory` atomically.
enum Report {
  /// File names inside the output folder.
  static let files = ["report.md", "report.html"]

  /// Writes `directory/report.md` and `directory/report.html`; returns their paths.
  /// - Parameters:
  ///   - plan, validation: files to use; nil takes the run file's `/plan/document` and `/validation/document`
  ///     (else its `/validation` table), or renders the section saying which command fills it.
  /// - Throws: `FileCheckError` for a missing input or an output folder that is a file, an input, or cannot be
  ///   created; `SensitivityError` for a bad run file; `AllocationError.badPlanFile` for a malformed or inconsistent
  ///   plan (`PlanFile.decode`, file or recorded); `CommandError` for a mismatched plan, or a validation that is
  ///   malformed, of an unknown `format_version` or mismatched. Nothing is written then.
  @discardableResult
  static func write(run: String, plan: String?, validation: String?, directory: String) throws -> [String] {
    var inputs = [InputPath(option: "RUN.h5", path: run)]
    if let plan { inputs.append(InputPath(option: "--plan", path: plan)) }
    if let validation { inputs.append(InputPath(option: "--validation", path: validation)) }
    let exists = try checkDirectory(directory, inputs: inputs)
    let measured = try RunStore.read(run)
    let stored = try storedDocuments(run)
    var planDocument: PlanDocument?
    var planSource = ReportData.Source.absent
    if let plan {
      planDocument = try PlanFile.read(plan, option: "--plan")
      planSource = .file(plan)
    } else if let data = stored.plan {
      planDocument = try PlanFile.decode(data, source: "RUN.h5 '\(run)': '/plan/document'")
      planSource = .runFile
    }
    var report: ValidationReport?
    var validationSource = ReportData.Source.absent
    if let validation {
      guard let data = FileManager.default.contents(atPath: validation) else {
        throw FileCheckError(.missingInput, option: "--validation", path: validation, "cannot be read")
      }
      let source = "--validation '\(validation)'"
      try checkVersion(of: data, source: source)
      do { report = try JSONDecoder().decode(ValidationReport.self, from: data) } catch {
        throw CommandError("\(source): not a VALIDATION.json from bitplan validate (\(oneLineDecodingMessage(error)))", status: .dataError)
      }
      validationSource = .file(validation)
    } else if let data = stored.validation {
      try checkVersion(of: data, source: "RUN.h5 '\(run)': '/validation/document'")
      report = try decode(ValidationReport.self, data, what: "/validation/document", run: run)
      validationSource = .runFile
    }
    let score = planDocument?.score ?? AllocationInput.defaultRunScore
    var points: [ParetoFrontier.Point] = []
    var note: String?
    do {
      // The allocator's own problem (negative losses raised to zero, the plan's target applied).
      let target = planDocument?.target.flatMap { $0 == measured.provenance.target ? nil : Target(rawValue: $0) }
      let problem = try AllocationInput.load(from: run, score: score, allowNoisyScores: true, target: target).problem
      points = try ParetoFrontier(problem).points
    } catch {
      note = "no frontier: \(error)"
    }
    let data: ReportData
    do {
      data = try ReportData(
        runPath: run, run: measured, plan: planDocument, planSource: planSource, validation: report,
        validationSource: validationSource, frontier: points, frontierScore: score, frontierNote: note)
    } catch {
      throw CommandError(error.description, status: .usage)
    }
    let contents = [
      Data(MarkdownReport.render(data, directory: directory).utf8), Data(HTMLReport.render(data, directory: directory).utf8),
    ]
    return try place(contents, in: directory, exists: exists)
  }

  /// Refuses an output folder that is a file (or device), names an input, or whose parent is missing; returns
  /// whether it exists. Existing `report.md`/`report.html` in it must be regular files and not inputs.
  static func checkDirectory(_ directory: String, inputs: [InputPath]) throws -> Bool {
    func refuse(_ message: String) -> FileCheckError { FileCheckError(.cannotCreate, option: "-o", path: directory, message) }
    if directory.isEmpty { throw refuse("is empty") }
    var st = stat()
    if stat(directory, &st) == 0 {
      guard st.st_mode & S_IFMT == S_IFDIR else {
        let input = inputs.first { FileIdentity(path: $0.path) == FileIdentity(path: directory) }
        if let input {
          throw FileCheckError(.outputIsInput, option: "-o", path: directory, "is also the input \(input.option) '\(input.path)'; give a folder for the report")
        }
        throw refuse("is not a folder; give a folder for report.md and report.html")
      }
      try FileChecks.check(inputs: inputs, outputs: files.map { OutputPath(option: "-o", path: directory + "/" + $0) })
      return true
    }
    try FileChecks.check(inputs: inputs, outputs: [])
    // Absent: its parent must exist and be writable (checked as for a file output of that name).
    try FileChecks.checkOutput(OutputPath(option: "-o", path: directory.hasSuffix("/") ? String(directory.dropLast()) : directory))
    return false
  }

  /// Both files appear together or neither: a new folder is filled under a temporary name and renamed into
  /// place; in an existing one both files are written to temporary names first and renamed, the first rename
  /// undone if the second fails.
  static func place(_ contents: [Data], in directory: String, exists: Bool) throws -> [String] {
    let trimmed = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    let paths = files.map { trimmed + "/" + $0 }
    if !exists {
      let target = FileChecks.resolvedTarget(trimmed)
      let (parent, name) = FileChecks.split(target)
      let temporary = (parent.isEmpty ? "." : parent) + "/.\(name).\(getpid()).tmp"
      try? FileManager.default.removeItem(atPath: temporary)
      guard mkdir(temporary, 0o755) == 0 else {
        throw FileCheckError(.cannotCreate, option: "-o", path: directory, "cannot create a folder in '\(parent)': \(String(cString: strerror(errno)))")
      }
      do {
        for (name, data) in zip(files, contents) { try FileChecks.write(data, to: temporary + "/" + name, option: "-o") }
        guard rename(temporary, target) == 0 else {
          throw FileCheckError(.writeFailed, option: "-o", path: directory, "cannot rename into place: \(String(cString: strerror(errno)))")
        }
      } catch {
        try? FileManager.default.removeItem(atPath: temporary)
        throw error
      }
      return paths
    }
    var temporaries: [String] = []
    do {
      for (path, data) in zip(paths, contents) {
        let (temporary, fd) = try FileChecks.createTemporary(beside: FileChecks.resolvedTarget(path), option: "-o", path: path)
        temporaries.append(temporary)
        let ok = data.withUnsafeBytes { writeAll(fd, $0) }
        let reason = String(cString: strerror(errno))
        if close(fd) != 0 || !ok { throw FileCheckError(.writeFailed, option: "-o", path: path, "cannot write: \(reason)") }
      }
    } catch {
      for t in temporaries { unlink(t) }
      throw error
    }
    // Keep the old report.md until report.html is in place, so that a failed second rename can be undone; an
    // interrupt waits until both are in place (a SIGTERM between the renames left a new report.md beside the old
    // report.html).
    return try FileChecks.withInterruptsDeferred { try swapIn(paths, temporaries) }
  }

  /// The renames of `place` for a folder that exists: report.md, then report.html, the first undone if the second
  /// fails.
  private static func swapIn(_ paths: [String], _ temporaries: [String]) throws -> [String] {
    let first = FileChecks.resolvedTarget(paths[0])
    let backup = first + ".\(getpid()).old"
    let hadFirst = link(first, backup) == 0
    do {
      try FileChecks.replace(first, with: temporaries[0], option: "-o", path: paths[0])
    } catch {
      unlink(temporaries[1])
      if hadFirst { unlink(backup) }
      throw error
    }
    do {
      try FileChecks.replace(FileChecks.resolvedTarget(paths[1]), with: temporaries[1], option: "-o", path: paths[1])
    } catch {
      if hadFirst { rename(backup, first) } else { unlink(first) }
      throw error
    }
    if hadFirst { unlink(backup) }
    return paths
  }

  /// `/plan/document` and `/validation/document` of the run file, when present (`RunStore.documents`, which checks
  /// the file first).
  static func storedDocuments(_ run: String) throws -> (plan: Data?, validation: Data?) {
    do {
      let stored = try RunStore.documents(run)
      return (stored.plan, stored.validation)
    } catch {
      throw CommandError("RUN.h5 '\(run)': cannot read the recorded plan or validation: \(error)", status: .dataError)
    }
  }

  static func decode<T: Decodable>(_ type: T.Type, _ data: Data, what: String, run: String) throws -> T {
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
      throw CommandError("RUN.h5 '\(run)': '\(what)' is not valid (\(oneLineDecodingMessage(error)))", status: .dataError)
    }
  }

  /// Refuses a VALIDATION.json of a `format_version` this build does not read (checked before the rest, which a
  /// newer version may lay out differently), as a run file of another version is refused.
  /// - Throws: `CommandError` with exit status 65 naming `source` and the version.
  static func checkVersion(of data: Data, source: String) throws {
    struct VersionProbe: Decodable {
      var format_version: Int?
    }
    let supported = ValidationReport.supportedFormatVersion
    if let version = (try? JSONDecoder().decode(VersionProbe.self, from: data))?.format_version, version != supported {
      throw CommandError(
        "\(source): format_version \(version) is not supported (this build reads VALIDATION.json version \(supported))",
        status: .dataError)
    }
  }
}
