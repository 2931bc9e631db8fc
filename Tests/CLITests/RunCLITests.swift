import Foundation
import Testing
import _TestSupport

/// `bitplan run` end to end on the committed tiny model: every file of two targets from one measurement, a kill
/// after the measurement then a rerun giving the same plans and validations, other arguments on the same directory
/// refused, and bad inputs as one-line errors that write nothing. Also `allocate --record`.
@Suite(.serialized) struct RunCLITests {
  static var calib: String { TestModels.sharedData + "/prideprejudice.txt" }
  static var eval: String { TestModels.sharedData + "/emma.txt" }
  static let model = BitplanProcess.fixture("tiny-llama.gguf")

  /// Small settings: the run takes a few seconds.
  static func arguments(_ directory: String, bpw: String = "5", target: String = "llama-cpp,gptqmodel") -> [String] {
    ["run", model, "--calib", calib, "--eval", eval, "--bpw", bpw, "--target", target, "--tokens", "64",
     "--hvp-tokens", "32", "--probes", "4", "--eval-tokens", "64", "--windows", "2", "-o", directory]
  }

  static func run(_ args: [String], _ folder: URL, environment: [String: String] = [:]) throws -> BitplanProcess.Result {
    try BitplanProcess.run(args, environment: ["XDG_CACHE_HOME": folder.path + "/cache"].merging(environment) { $1 })
  }

  static let perTarget = ["plan.json", "VALIDATION.json", "report.md", "report.html"]
  static let exports = ["llama-cpp": ["llama-cpp-recipe.txt", "llama-cpp-imatrix.gguf", "model-bitplan.gguf"], "gptqmodel": ["gptqmodel-config.json"]]

  /// The files of a finished two-target run, relative to its directory.
  static func expectedFiles() -> [String] {
    var files = ["run.h5", "run-state.json", "summary.txt"]
    for (t, names) in exports { files += (perTarget + names).map { "\(t)/\($0)" } }
    return files.sorted()
  }

  static func files(_ directory: String) -> [String] {
    let e = FileManager.default.enumerator(atPath: directory)!
    return e.compactMap { $0 as? String }.filter {
      var d: ObjCBool = false
      return FileManager.default.fileExists(atPath: directory + "/" + $0, isDirectory: &d) && !d.boolValue
    }.sorted()
  }

  /// VALIDATION.json without its timing and the plan's path (the values that differ between two directories).
  static func validation(_ path: String) throws -> NSDictionary {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    return object.filter { $0.key != "elapsed_seconds" && $0.key != "plan" } as NSDictionary
  }

  static func h5dumpAttribute(_ name: String, _ file: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
    p.arguments = ["-a", name, file]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = Pipe()
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }

  static func sha256(_ path: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    p.arguments = [path]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
  }

  /// `--candidates` narrows the one measurement; each target plans with the listed formats it stores.
  @Test func candidatesNarrowTheMeasurementForEveryTarget() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let dir = folder.path + "/narrow"
    let r = try Self.run(Self.arguments(dir, bpw: "6") + ["--candidates", "f16,q8_0,q4_0,int8,int4-g32"], folder)
    #expect(r.status == 0, "\(r.stderr)")
    let formats = { (t: String) throws -> Set<String> in
      let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(t)/plan.json")))
      let layers = (object as! [String: Any])["layers"] as! [String: [String: Any]]
      return Set(layers.values.map { $0["format"] as! String })
    }
    #expect(try formats("llama-cpp").isSubset(of: ["f16", "q8_0", "q4_0"]))
    #expect(try formats("gptqmodel").isSubset(of: ["f16", "int8", "int4-g32"]))
    let bad = try Self.run(Self.arguments(folder.path + "/bad") + ["--candidates", "int4-g33x"], folder)
    #expect(bad.status != 0 && bad.stderr.split(separator: "\n").count == 1 && bad.stderr.contains("--candidates"), "\(bad.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/bad"))
  }

  @Test func wholeRunThenKilledRunAndRerun() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let whole = folder.path + "/whole", killed = folder.path + "/killed"

    let r = try Self.run(Self.arguments(whole), folder)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(Self.files(whole) == Self.expectedFiles())
    #expect(r.stdout.contains("llama-cpp") && r.stdout.contains("gptqmodel") && r.stdout.contains("plan KLD [95% CI]"), "\(r.stdout)")
    #expect(r.stderr.contains("[1/9] measure") && r.stderr.contains("[9/9] export gptqmodel"), "plain progress lines off a terminal")
    // One measurement for both: the embedding is planned for llama.cpp only.
    let llama = try String(contentsOfFile: whole + "/llama-cpp/plan.json", encoding: .utf8)
    let gptq = try String(contentsOfFile: whole + "/gptqmodel/plan.json", encoding: .utf8)
    #expect(llama.contains("model.embed_tokens") && !gptq.contains("model.embed_tokens"))
    #expect(llama.contains("\"target\" : \"llama-cpp\"") && gptq.contains("\"target\" : \"gptqmodel\""))
    // The run file holds the last target's plan and its validation.
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") {
      let sha = try Self.sha256(whole + "/gptqmodel/plan.json")
      #expect(try Self.h5dumpAttribute("/plan/plan_sha256", whole + "/run.h5").contains(sha))
      #expect(try Self.h5dumpAttribute("/validation/plan_sha256", whole + "/run.h5").contains(sha))
    }

    // The same command again: every stage skipped, nothing rewritten.
    let plan = try Data(contentsOf: URL(fileURLWithPath: whole + "/llama-cpp/plan.json"))
    let again = try Self.run(Self.arguments(whole), folder)
    #expect(again.status == 0 && again.stderr.contains("done earlier, skipped"), "\(again.stderr)")
    #expect(!again.stderr.contains("measure …"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: whole + "/llama-cpp/plan.json")) == plan)

    // Killed (SIGKILL) right after the measurement, then the same command: the rest, with the same results.
    let k = try Self.run(Self.arguments(killed), folder, environment: ["BITPLAN_RUN_KILL_AFTER": "measure"])
    #expect(k.status == 9, "killed by SIGKILL: \(k.stderr)")
    #expect(Self.files(killed) == ["run-state.json", "run.h5"])
    let resumed = try Self.run(Self.arguments(killed), folder)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stderr.contains("measure: done earlier, skipped"))
    #expect(Self.files(killed) == Self.expectedFiles())
    for t in ["llama-cpp", "gptqmodel"] {
      #expect(
        try Data(contentsOf: URL(fileURLWithPath: "\(killed)/\(t)/plan.json"))
          == Data(contentsOf: URL(fileURLWithPath: "\(whole)/\(t)/plan.json")), "\(t) plan byte-identical")
      #expect(try Self.validation("\(killed)/\(t)/VALIDATION.json") == Self.validation("\(whole)/\(t)/VALIDATION.json"))
      for name in Self.exports[t]! {
        #expect(
          try Data(contentsOf: URL(fileURLWithPath: "\(killed)/\(t)/\(name)"))
            == Data(contentsOf: URL(fileURLWithPath: "\(whole)/\(t)/\(name)")), "\(t)/\(name) byte-identical")
      }
    }

    // Other arguments on the same directory: one line, nothing touched; --restart starts again.
    let before = try Data(contentsOf: URL(fileURLWithPath: whole + "/run-state.json"))
    let other = try Self.run(Self.arguments(whole, bpw: "4.5"), folder)
    #expect(other.status == 64 && other.stderr.split(separator: "\n").count == 1, "\(other.stderr)")
    #expect(other.stderr.contains("--bpw 5 → 4.5") && other.stderr.contains("--restart"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: whole + "/run-state.json")) == before)
    let restarted = try Self.run(Self.arguments(whole, bpw: "4.5", target: "gptqmodel") + ["--restart", "--json"], folder)
    #expect(restarted.status == 0, "\(restarted.stderr)")
    let summary = try JSONSerialization.jsonObject(with: Data(restarted.stdout.utf8)) as! [String: Any]
    let targets = summary["targets"] as! [[String: Any]]
    #expect(targets.count == 1 && targets[0]["target"] as? String == "gptqmodel")
    let planned = targets[0]["plan"] as! [String: Any]
    #expect((planned["bits_per_weight"] as! Double) <= 4.5)
    #expect(FileManager.default.fileExists(atPath: whole + "/plan.json"), "one target: its files in DIR itself")
  }

  /// A finished `bitplan run --target any` in `folder/r`: the directory and the arguments that made it.
  static func finishedRun(in folder: URL) throws -> (dir: String, args: [String]) {
    let dir = folder.path + "/r"
    let args = arguments(dir, target: "any")
    let first = try run(args, folder)
    try #require(first.status == 0, "\(first.stderr)")
    return (dir, args)
  }

  /// A run begun by another build of bitplan (another `build` in run-state.json) is started again, not resumed:
  /// that build may have computed other numbers. A state without the field (written before it existed) resumes.
  @Test func anotherBuildStartsTheRunAgain() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let (dir, args) = try Self.finishedRun(in: folder)
    let statePath = dir + "/run-state.json"
    func state() throws -> [String: Any] {
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as! [String: Any]
    }
    func write(_ object: [String: Any]) throws {
      try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: statePath))
    }
    let build = try #require(try state()["build"] as? String)
    #expect(build.count == 64)
    var other = try state()
    other["build"] = String(repeating: "0", count: 64)
    try write(other)
    let again = try Self.run(args, folder)
    #expect(again.status == 0, "\(again.stderr)")
    #expect(again.stderr.contains("bitplan run: -o '\(dir)' was begun by another build of bitplan; starting it again"), "\(again.stderr)")
    #expect(!again.stderr.contains("done earlier, skipped"), "\(again.stderr)")
    #expect(try state()["build"] as? String == build)
    var legacy = try state()
    legacy["build"] = nil
    try write(legacy)
    let resumed = try Self.run(args, folder)
    #expect(resumed.status == 0 && resumed.stderr.components(separatedBy: "done earlier, skipped").count == 6, "\(resumed.stderr)")
  }

  /// Resuming checks every finished stage's files against the size and SHA-256 recorded when it wrote them: a
  /// changed or missing file has its stage (and every later one) done again, with one line saying why; a folder or
  /// a link in place of a file is refused (65, one line naming it, nothing touched). A state file from before the
  /// records falls back to reading the files.
  @Test func resumeRedoesTheStagesWhoseFilesChanged() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let (dir, args) = try Self.finishedRun(in: folder)
    func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)) }
    func write(_ text: String, _ name: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
    let plan = try bytes("plan.json"), validation = try Self.validation(dir + "/VALIDATION.json")

    // Each damage, then the same command: the line that says why, the stage and the later ones done again.
    let cases: [(damage: () throws -> Void, line: String, skipped: [String])] = [
      ({ try write("{\n", "plan.json") }, "bitplan run: plan.json changed since it was written (2 bytes, \(plan.count) when written): allocating again, then the 3 stages after it", ["measure"]),
      ({ try write("[\n", "VALIDATION.json") }, "bitplan run: VALIDATION.json changed since it was written (2 bytes, ", ["measure", "allocate any"]),
      ({ try FileManager.default.removeItem(atPath: dir + "/report.md") }, "bitplan run: report.md is missing: writing the report again, then the 1 stage after it", ["measure", "allocate any", "validate any"]),
      ({ try FileHandle(forWritingAtPath: dir + "/run.h5")!.truncate(atOffset: 1000) }, "bitplan run: run.h5 changed since it was written (1000 bytes, ", []),
    ]
    for (damage, line, skipped) in cases {
      try damage()
      let r = try Self.run(args, folder)
      #expect(r.status == 0, "\(line): \(r.stderr)")
      #expect(r.stderr.contains(line), "\(r.stderr)")
      for stage in ["measure", "allocate any", "validate any", "report any", "export any"] {
        #expect(r.stderr.contains("\(stage): done earlier, skipped") == skipped.contains(stage), "\(line): \(stage): \(r.stderr)")
      }
      #expect(try bytes("plan.json") == plan, "\(line): the plan as first written")
      #expect(try Self.validation(dir + "/VALIDATION.json") == validation, "\(line)")
      #expect(Self.files(dir) == ["VALIDATION.json", "plan-tensors.json", "plan.json", "report.html", "report.md", "run-state.json", "run.h5", "summary.txt"])
    }
    let again = try Self.run(args, folder)
    #expect(again.status == 0 && again.stderr.components(separatedBy: "done earlier, skipped").count == 6, "\(again.stderr)")

    // Not a file where a stage wrote one: refused before any work, nothing changed (the model behind the link too).
    func expectRefused(_ name: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
      let state = try bytes("run-state.json"), model = try Self.sha256(Self.model)
      let r = try Self.run(args, folder)
      #expect(r.status == 65, "\(r.stderr)", sourceLocation: sourceLocation)
      #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("Error: '\(dir)/\(name)' is \(what), not the file an earlier bitplan run wrote there"), "\(r.stderr)", sourceLocation: sourceLocation)
      let (stateAfter, modelAfter) = (try bytes("run-state.json"), try Self.sha256(Self.model))
      #expect(r.stdout.isEmpty && stateAfter == state && modelAfter == model, sourceLocation: sourceLocation)
    }
    try FileManager.default.removeItem(atPath: dir + "/report.md")
    try FileManager.default.createDirectory(atPath: dir + "/report.md", withIntermediateDirectories: false)
    try expectRefused("report.md", "a folder")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/report.md").isEmpty)
    try FileManager.default.removeItem(atPath: dir + "/report.md")
    let saved = folder.path + "/run.h5.saved"
    try FileManager.default.moveItem(atPath: dir + "/run.h5", toPath: saved)
    try FileManager.default.createSymbolicLink(atPath: dir + "/run.h5", withDestinationPath: Self.model)
    try expectRefused("run.h5", "a symbolic link")
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/run.h5") == Self.model)
    try FileManager.default.removeItem(atPath: dir + "/run.h5")
    try FileManager.default.moveItem(atPath: saved, toPath: dir + "/run.h5")
    let restored = try Self.run(args, folder)
    #expect(restored.status == 0 && restored.stderr.contains("report.md is missing: writing the report again"), "\(restored.stderr)")

    // A state file without the records (an older bitplan): the files are read; a damaged one is done again.
    let stateFile = dir + "/run-state.json"
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stateFile))) as! [String: Any]
    object["files"] = nil
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: stateFile))
    try write("[", "VALIDATION.json")
    let legacy = try Self.run(args, folder)
    #expect(legacy.status == 0 && legacy.stderr.contains("bitplan run: VALIDATION.json is not valid ("), "\(legacy.stderr)")
    #expect(legacy.stderr.contains("validating again, then the 2 stages after it") && legacy.stdout.contains("plan KLD"), "\(legacy.stderr)")
    #expect(try Self.validation(dir + "/VALIDATION.json") == validation)
  }

  @Test func badInputsAreOneLineErrorsAndWriteNothing() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let out = folder.path + "/out"
    let file = folder.path + "/file"
    try Data("x".utf8).write(to: URL(fileURLWithPath: file))
    let occupied = folder.path + "/occupied"
    try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
    try Data("keep".utf8).write(to: URL(fileURLWithPath: occupied + "/notes.txt"))
    func replacing(_ args: [String], _ option: String, _ value: String) -> [String] {
      var a = args
      a[a.firstIndex(of: option)! + 1] = value
      return a
    }
    let base = Self.arguments(out)
    let cases: [([String], String)] = [
      (replacing(base, "--calib", folder.path + "/missing.txt"), "--calib"),
      (replacing(base, "--target", "llama-cpp,tpu"), "--target"),
      (base + ["--quantizer", "gptq4"], "--quantizer"),
      (base + ["--budget", "1MiB"], "exactly one of --budget and --bpw"),
      (replacing(base, "--bpw", "abc"), "abc"),
      (replacing(base, "-o", file), "not a directory"),
      (replacing(base, "-o", occupied), "not empty"),
      (["run", folder.path + "/nomodel.gguf"] + Array(base.dropFirst(2)), "MODEL"),
    ]
    for (args, fragment) in cases {
      let r = try Self.run(args, folder)
      #expect(r.status != 0 && r.status != 9, "\(args)")
      let lines = r.stderr.split(separator: "\n")
      #expect(lines.count == 1 && r.stderr.contains(fragment), "\(fragment): \(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: out), "\(fragment): nothing written")
    }
    #expect(Self.files(occupied) == ["notes.txt"])
  }

  @Test func allocateRecordStoresThePlanInTheRunOnly() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let run = folder.path + "/RUN.h5"
    let m = try Self.run(
      ["measure", Self.model, "--calib", Self.calib, "--tokens", "64", "--hvp-tokens", "32", "--probes", "4", "-o", run], folder)
    #expect(m.status == 0, "\(m.stderr)")
    let r = try Self.run(["allocate", run, "--bpw", "5", "-o", folder.path + "/P.json", "--record"], folder)
    #expect(r.status == 0 && r.stdout.contains("/plan in"), "\(r.stderr)")
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") {
      #expect(try Self.h5dumpAttribute("/plan/plan_sha256", run).contains(Self.sha256(folder.path + "/P.json")))
    }
    // Without --record the run file is not touched.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: run))
    let plain = try Self.run(["allocate", run, "--bpw", "4", "-o", folder.path + "/Q.json"], folder)
    let after = try Data(contentsOf: URL(fileURLWithPath: run))
    #expect(plain.status == 0 && after == bytes)
    // A PROBLEM.json cannot hold a plan: one line, no PLAN.json written.
    let problem = BitplanProcess.fixture("problem-small.json")
    let refused = try Self.run(["allocate", problem, "--budget", "100", "-o", folder.path + "/R.json", "--record"], folder)
    #expect(refused.status == 64 && refused.stderr.contains("--record") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/R.json"))
  }
}
