import Foundation
import Sensitivity
import Testing
import _TestSupport

/// `bitplan measure` end to end on the committed tiny model: SIGKILL at random moments and resume to the numbers of
/// an uninterrupted run, `--json`, and one-line typed errors that leave no run file behind.
@Suite struct MeasureCLITests {
  static var calib: String { TestModels.sharedData + "/prideprejudice.txt" }

  /// A small but complete run: 4 calibration windows, 24 probes, 2 candidates, an audit of 4 (held-out text = the
  /// calibration text after the calibration tokens). Checkpoints after every unit, so kills land in every stage.
  static func arguments(_ output: String) -> [String] {
    [
      "measure", BitplanProcess.fixture("tiny-llama"), "--calib", calib, "--tokens", "128", "--hvp-tokens", "32",
      "--probes", "24", "--candidates", "int8,int4-g32", "--audit", "4", "--seed", "11", "--checkpoint-interval", "0",
      "-o", output,
    ]
  }

  /// The run with `created` cleared (the only field a resumed run may differ in: it keeps the first start time).
  static func normalized(_ path: String) throws -> MeasuredRun {
    var run = try RunStore.read(path)
    run.provenance.created = ""
    return run
  }

  /// Dense, and streamed (issue 18: under a `BITPLAN_MEMORY_LIMIT` that makes the tiny model read from its file a
  /// weight at a time, its gradient sum on disk in generations of side files): killed runs resume to the numbers of
  /// an uninterrupted run of the same kind, and leave no side file behind.
  @Test(arguments: [false, true])
  func killedMeasureResumesToTheUninterruptedNumbers(streamed: Bool) throws {
    let reference = try BitplanProcess.temporaryDirectory(), folder = try BitplanProcess.temporaryDirectory()
    defer { for f in [reference, folder] { try? FileManager.default.removeItem(at: f) } }
    var environment: [String: String] = [:]
    var arguments = { (output: String) in Self.arguments(output) }
    if streamed {
      // the memory estimate counts three times the calibration text: a short one
      let text = reference.path + "/calib.txt"
      try String(try String(contentsOfFile: Self.calib, encoding: .utf8).prefix(20_000)).write(
        toFile: text, atomically: true, encoding: .utf8)
      environment["BITPLAN_MEMORY_LIMIT"] = "2500000"
      arguments = { output in Self.arguments(output).map { $0 == Self.calib ? text : $0 } }
    }
    let uninterrupted = try BitplanProcess.run(arguments(reference.path + "/RUN.h5"), environment: environment)
    #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
    if streamed { #expect(uninterrupted.stderr.contains("read from its file a weight at a time"), "\(uninterrupted.stderr)") }
    let path = folder.path + "/RUN.h5"
    var rng = SplitMix64(seed: 7)
    var kills = 0
    // Kill up to 6 runs, each at a random moment 0-300 ms after it wrote its first checkpoint.
    for _ in 0..<6 where !FileManager.default.fileExists(atPath: path) {
      let process = BitplanProcess.process(arguments(path), environment: environment)
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      let before = Self.fileNumber(path + ".partial")
      try process.run()
      let deadline = Date().addingTimeInterval(60)
      while Self.fileNumber(path + ".partial") == before && process.isRunning && Date() < deadline { usleep(2000) }
      usleep(UInt32.random(in: 0..<300_000, using: &rng))
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      if process.terminationReason == .uncaughtSignal { kills += 1 }
    }
    #expect(kills >= 1, "at least one run was killed while running")
    let hadPartial = FileManager.default.fileExists(atPath: path + ".partial")
    let resumed = try BitplanProcess.run(arguments(path), environment: environment)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    if hadPartial { #expect(resumed.stdout.contains("resumed the run cut short in"), "\(resumed.stdout)") }
    #expect(try Self.normalized(path) == Self.normalized(reference.path + "/RUN.h5"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["RUN.h5"], "no partial files left")
  }

  @Test func jsonSummaryAndSameSeedSameNumbers() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let a = try BitplanProcess.run(Self.arguments(folder.path + "/A.h5") + ["--json"])
    #expect(a.status == 0, "\(a.stderr)")
    #expect(a.stderr.isEmpty, "no progress output when stderr is not a terminal: \(a.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any]
    #expect(json["layers"] as? Int == 14)
    #expect(json["probes_used"] as? Int == 24)
    #expect(json["calibration_windows"] as? Int == 4)
    #expect(json["audited"] as? Int == 4)
    #expect((json["stage_seconds"] as? [String: Double])?.keys.contains("hessian") == true)
    let b = try BitplanProcess.run(Self.arguments(folder.path + "/B.h5"))
    #expect(b.status == 0, "\(b.stderr)")
    #expect(try Self.normalized(folder.path + "/A.h5") == Self.normalized(folder.path + "/B.h5"))
    let run = try RunStore.read(folder.path + "/A.h5")
    #expect(run.provenance.auditTokens == 128 && run.provenance.auditSHA256 == run.provenance.calibSHA256)
    #expect(run.calibrationMethod.allSatisfy { $0.allSatisfy { !$0.isEmpty } })
    #expect(run.audit?.spearmanNLL.count == 5)
  }

  /// Issue 18: a model too large to hold in Float (here the tiny model, under a `BITPLAN_MEMORY_LIMIT` of 2.5 MB that
  /// makes it so) is read from its file a weight at a time, its gradient sum kept on disk and the Hutchinson
  /// diagonal left out unless asked (stderr says so): the same numbers as the dense run with `--no-hessian-diagonal`.
  @Test func aStreamedModelMeasuresTheDenseNumbers() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    // a short calibration text: the memory estimate counts three times the text's size
    let text = folder.path + "/calib.txt"
    try String(try String(contentsOfFile: Self.calib, encoding: .utf8).prefix(20_000)).write(toFile: text, atomically: true, encoding: .utf8)
    func arguments(_ output: String) -> [String] {
      [
        "measure", BitplanProcess.fixture("tiny-llama"), "--calib", text, "--tokens", "64", "--hvp-tokens", "32",
        "--probes", "4", "--candidates", "int8,int4-g32", "--seed", "11", "-o", output,
      ]
    }
    let dense = try BitplanProcess.run(arguments(folder.path + "/dense.h5") + ["--no-hessian-diagonal"])
    #expect(dense.status == 0, "\(dense.stderr)")
    let streamed = try BitplanProcess.run(arguments(folder.path + "/streamed.h5"), environment: ["BITPLAN_MEMORY_LIMIT": "2500000"])
    #expect(streamed.status == 0, "\(streamed.stderr)")
    #expect(streamed.stderr.contains("the Hutchinson diagonal (taylor_diag) is not kept"), "\(streamed.stderr)")
    let (a, b) = (try Self.normalized(folder.path + "/dense.h5"), try Self.normalized(folder.path + "/streamed.h5"))
    // bit patterns: taylor_diag is NaN in both (no diagonal)
    func bits(_ x: [[Double]]) -> [[UInt64]] { x.map { $0.map(\.bitPattern) } }
    #expect(a.provenance == b.provenance)
    #expect(a.hessianTrace == b.hessianTrace && bits(a.probeValues) == bits(b.probeValues))
    #expect(a.fisherTrace == b.fisherTrace && a.inputTrace == b.inputTrace)
    #expect(bits(a.weightError) == bits(b.weightError) && bits(a.outputError) == bits(b.outputError))
    #expect(a.proxies.mapValues(bits) == b.proxies.mapValues(bits))
  }

  /// Bad input: a non-zero exit status, one line on stderr, no final run file.
  @Test(arguments: [
    (["--calib", "/nonexistent/calib.txt"], "--calib '/nonexistent/calib.txt': cannot be read"),
    (["--calib", MeasureCLITests.calib, "--candidates", "int4-g48"], "--candidates"),
    (["--calib", MeasureCLITests.calib, "--candidates", "int4-g4096"], "badCandidate"),
    (["--calib", MeasureCLITests.calib, "--hvp-tokens", "600"], "--hvp-tokens"),
  ])
  func badInputIsOneLineTypedError(extra: [String], expected: String) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let r = try BitplanProcess.run(
      ["measure", BitplanProcess.fixture("tiny-llama"), "-o", folder.path + "/RUN.h5"] + extra)
    #expect(r.status != 0)
    let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage") && !$0.hasPrefix("  See") && !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].contains(expected), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/RUN.h5"))
  }

  static func fileNumber(_ path: String) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? UInt64
  }
}
