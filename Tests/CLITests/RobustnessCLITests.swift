import Foundation
import Testing
import _TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Issue 12: every output path, number and file a user can get wrong gives a one-line error with its documented
/// exit status, before any work, and leaves every existing file as it was (inputs, folders, devices, FIFOs).
@Suite struct RobustnessCLITests {
  /// A scratch folder with copies of the fixtures, a measured run, a subfolder and a FIFO.
  final class Workspace {
    let root: String
    init() throws {
      root = try BitplanProcess.temporaryDirectory().path
      let fm = FileManager.default
      try fm.copyItem(atPath: BitplanProcess.fixture("tiny-llama"), toPath: root + "/tiny-llama")
      try fm.copyItem(atPath: BitplanProcess.fixture("tiny-llama.gguf"), toPath: root + "/tiny-llama.gguf")
      try fm.copyItem(atPath: BitplanProcess.fixture("problem-small.json"), toPath: root + "/problem.json")
      let text = try String(contentsOfFile: TestModels.sharedData + "/prideprejudice.txt", encoding: .utf8)
      try String(text.prefix(20_000)).write(toFile: root + "/calib.txt", atomically: false, encoding: .utf8)
      try fm.createDirectory(atPath: root + "/sub", withIntermediateDirectories: false)
      guard mkfifo(root + "/fifo", 0o644) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Every entry under the root: its kind and, for regular files, its bytes.
    func snapshot() throws -> [String: Data] {
      var out: [String: Data] = [:]
      let fm = FileManager.default
      for name in fm.subpaths(atPath: root) ?? [] {
        let path = root + "/" + name
        var st = stat()
        guard lstat(path, &st) == 0 else { continue }
        switch st.st_mode & S_IFMT {
        case S_IFREG: out[name] = try Data(contentsOf: URL(fileURLWithPath: path))
        case S_IFDIR: out[name] = Data("<folder>".utf8)
        case S_IFIFO: out[name] = Data("<fifo>".utf8)
        default: out[name] = Data("<other>".utf8)
        }
      }
      return out
    }
  }

  /// Runs `args` (with `{}` replaced by the workspace root) and checks the status, the one line on stderr naming
  /// `mention`, an empty stdout, and that no file changed.
  func expectRefused(
    _ w: Workspace, _ args: [String], status: Int32, mention: String, environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let before = try w.snapshot()
    let r = try BitplanProcess.run(args.map { $0.replacingOccurrences(of: "{}", with: w.root) }, environment: environment)
    let shown = args.joined(separator: " ")
    #expect(r.status == status, "\(shown): status \(r.status), \(r.stderr)", sourceLocation: sourceLocation)
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("Error: "), "\(shown): \(r.stderr)", sourceLocation: sourceLocation)
    #expect(
      r.stderr.contains(mention.replacingOccurrences(of: "{}", with: w.root)), "\(shown): \(r.stderr)",
      sourceLocation: sourceLocation)
    #expect(r.stdout.isEmpty, "\(shown): \(r.stdout)", sourceLocation: sourceLocation)
    let after = try w.snapshot()
    #expect(after == before, "\(shown) changed \(Set(after.keys).symmetricDifference(before.keys).sorted())", sourceLocation: sourceLocation)
  }

  @Test func allocateNeverWritesOverItsInputOrANonFile() throws {
    let w = try Workspace()
    let p = ["allocate", "{}/problem.json", "--bpw", "4.5"]
    try expectRefused(w, p + ["-o", "{}/problem.json"], status: 64, mention: "is also the input")
    try expectRefused(w, p + ["-o", "{}/sub/../problem.json"], status: 64, mention: "is also the input")
    try expectRefused(w, p + ["-o", "{}/x.json", "--frontier", "{}/x.json"], status: 64, mention: "--frontier '{}/x.json': is the same file as -o")
    try expectRefused(w, p + ["-o", "{}/plan.json", "--frontier", "{}/problem.json"], status: 64, mention: "--frontier")
    try expectRefused(w, p + ["-o", "{}/sub"], status: 73, mention: "-o '{}/sub': is a folder")
    try expectRefused(w, p + ["-o", "{}/fifo"], status: 73, mention: "is a FIFO")
    try expectRefused(w, p + ["-o", "/dev/null"], status: 73, mention: "is a character device")
    try expectRefused(w, p + ["-o", "{}/nowhere/plan.json"], status: 73, mention: "does not exist")
    try expectRefused(w, ["allocate", "{}/sub", "--bpw", "4", "-o", "{}/p.json"], status: 66, mention: "is a folder, not a file")
    try expectRefused(w, ["allocate", "{}/calib.txt", "--bpw", "4", "-o", "{}/p.json"], status: 65, mention: "neither an HDF5 run file")
    var st = stat()
    #expect(stat("/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
  }

  @Test func measureChecksEveryPathAndNumberBeforeAnyWork() throws {
    let w = try Workspace()
    let m = ["measure", "{}/tiny-llama.gguf", "--calib", "{}/calib.txt", "--tokens", "64", "--hvp-tokens", "32", "--probes", "2"]
    try expectRefused(w, m + ["-o", "{}/tiny-llama.gguf"], status: 64, mention: "is also the input MODEL")
    try expectRefused(w, m + ["-o", "{}/calib.txt"], status: 64, mention: "is also the input --calib")
    try expectRefused(
      w, ["measure", "{}/tiny-llama", "--calib", "{}/calib.txt", "-o", "{}/tiny-llama/model.safetensors"], status: 64,
      mention: "is also the input MODEL")
    try expectRefused(w, m + ["-o", "{}/sub"], status: 73, mention: "is a folder")
    try expectRefused(w, m + ["-o", "{}/fifo"], status: 73, mention: "is a FIFO")
    try expectRefused(w, m + ["--audit", "2", "--audit-text", "{}/sub", "-o", "{}/r.h5"], status: 66, mention: "--audit-text")
    try expectRefused(w, ["measure", "{}/tiny-llama.gguf", "--calib", "{}/sub", "-o", "{}/r.h5"], status: 66, mention: "--calib '{}/sub': is a folder")
    for tokens in ["600", "9223372036854775807"] {
      try expectRefused(
        w, ["measure", "{}/tiny-llama.gguf", "--calib", "{}/calib.txt", "--tokens", tokens, "--hvp-tokens", "32", "-o", "{}/r.h5"],
        status: 64, mention: "context length of 512")
    }
    try expectRefused(w, m + ["--tokens", "-5", "-o", "{}/r.h5"], status: 64, mention: "--tokens must be at least 2, got -5")
    // The partial run and the temporary files beside RUN.h5 are outputs too.
    try FileManager.default.createDirectory(atPath: w.root + "/r.h5.partial", withIntermediateDirectories: false)
    try expectRefused(w, m + ["-o", "{}/r.h5"], status: 73, mention: "'{}/r.h5.partial': is a folder")
  }

  @Test func pplBenchAndTinyModelRangeCheckTheirNumbers() throws {
    let w = try Workspace()
    try expectRefused(w, ["ppl", "{}/tiny-llama", "--text", "{}/calib.txt", "--tokens", "100000"], status: 64, mention: "context length")
    try expectRefused(w, ["ppl", "{}/tiny-llama", "--text", "{}/calib.txt", "--tokens", "-1"], status: 64, mention: "got -1")
    try expectRefused(w, ["ppl", "{}/tiny-llama", "--text", "{}/sub"], status: 66, mention: "--text '{}/sub': is a folder, not a file")
    try expectRefused(w, ["ppl", "{}/tiny-llama/model.safetensors", "--text", "{}/calib.txt"], status: 65, mention: "no config.json")
    try expectRefused(
      w, ["ppl", "{}/tiny-llama", "--text", "{}/calib.txt", "--tokens", "512"], status: 71, mention: "of memory, the machine has",
      environment: ["BITPLAN_MEMORY_LIMIT": "1000000"])
    // A text is read whole: its size counts in the estimate (a sparse 2 GiB file, outside the snapshot).
    let big = try BitplanProcess.temporaryDirectory().path
    defer { try? FileManager.default.removeItem(atPath: big) }
    _ = FileManager.default.createFile(atPath: big + "/big.txt", contents: nil)
    try FileHandle(forWritingAtPath: big + "/big.txt")!.truncate(atOffset: 2 << 30)
    try expectRefused(
      w, ["ppl", "{}/tiny-llama", "--text", big + "/big.txt", "--tokens", "16"], status: 71, mention: "shorter text",
      environment: ["BITPLAN_MEMORY_LIMIT": "5000000000"])
    try expectRefused(w, ["bench", "engine", "--model", "{}/tiny-llama", "--ids", "{}/missing.txt"], status: 66, mention: "--ids '{}/missing.txt'")
    try expectRefused(w, ["bench", "engine", "--model", "{}/tiny-llama", "--tokens", "600"], status: 64, mention: "context length")
    try expectRefused(w, ["bench", "solver", "--write-problem", "/dev/null"], status: 73, mention: "--write-problem '/dev/null'")
    try expectRefused(w, ["bench", "solver", "--write-problem", "{}/problem.json", "--blocks", "-1"], status: 64, mention: "--blocks")
    try expectRefused(w, ["tiny-model", "{}/out", "--hidden", "-1"], status: 64, mention: "--hidden")
    try expectRefused(w, ["tiny-model", "{}/out", "--hidden", "100000"], status: 64, mention: "--hidden")
    try expectRefused(w, ["tiny-model", "{}/fifo"], status: 73, mention: "not a folder")
  }

  /// `run` checks its budget and every window against the model before any stage: usage errors (64) naming the
  /// option the user gave, and no run directory created.
  @Test func runChecksBudgetsAndWindowsBeforeAnyStage() throws {
    let w = try Workspace()
    func run(tokens: String = "64", evalTokens: String = "64", _ budget: [String]) -> [String] {
      ["run", "{}/tiny-llama.gguf", "--calib", "{}/calib.txt", "--eval", "{}/calib.txt", "--tokens", tokens,
       "--hvp-tokens", "32", "--probes", "2", "--eval-tokens", evalTokens, "--windows", "2", "--no-cache", "-o", "{}/out"]
        + budget
    }
    for bpw in ["0", "NaN", "-1", "inf"] {
      try expectRefused(w, run(["--bpw", bpw]), status: 64, mention: "--bpw: bits per weight '\(bpw)' is not a positive number")
    }
    for budget in ["1e30", "-5", "20000000TB"] {
      try expectRefused(w, run(["--budget", budget]), status: 64, mention: "--budget: cannot read budget '\(budget)'")
    }
    try expectRefused(
      w, run(evalTokens: "100000", ["--bpw", "5"]), status: 64,
      mention: "--eval-tokens 100000 exceeds the model's context length of 512 positions")
    try expectRefused(
      w, run(tokens: "600", ["--bpw", "5"]), status: 64, mention: "--tokens 600 exceeds the model's context length of 512 positions")
  }

  /// `-o` through a symbolic link to a regular file: the file it names is replaced, the link kept (as allocate does).
  @Test func anOutputLinkIsKeptAndItsFileReplaced() throws {
    let w = try Workspace()
    _ = FileManager.default.createFile(atPath: w.root + "/sub/old.h5", contents: Data("old".utf8))
    try FileManager.default.createSymbolicLink(atPath: w.root + "/run.h5", withDestinationPath: w.root + "/sub/old.h5")
    let r = try BitplanProcess.run([
      "measure", w.root + "/tiny-llama.gguf", "--calib", w.root + "/calib.txt", "--tokens", "32", "--hvp-tokens", "16",
      "--probes", "2", "--candidates", "int8", "-o", w.root + "/run.h5",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: w.root + "/run.h5") == w.root + "/sub/old.h5")
    // a run file: the checksum header ("BPRUNSHA", Documentation/RunFormat.md), then HDF5 at the user block's end
    let bytes = try Data(contentsOf: URL(fileURLWithPath: w.root + "/sub/old.h5"))
    #expect(Array(bytes.prefix(8)) == Array("BPRUNSHA".utf8), "the linked file is now the run")
    #expect(Array(bytes.dropFirst(512).prefix(4)) == [0x89, 0x48, 0x44, 0x46], "the linked file is now the run")
    #expect(try FileManager.default.contentsOfDirectory(atPath: w.root + "/sub") == ["old.h5"], "no partial or temporary left")
  }

  /// A config that declares more or fewer blocks than the file holds: one line, exit 65, before any weight is read.
  @Test func configCountsMustMatchTheTensors() throws {
    let w = try Workspace()
    let config = w.root + "/tiny-llama/config.json"
    let original = try String(contentsOfFile: config, encoding: .utf8)
    for blocks in ["1", "1000000000000"] {
      try original.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": \(blocks)")
        .write(toFile: config, atomically: false, encoding: .utf8)
      try expectRefused(
        w, ["ppl", "{}/tiny-llama", "--text", "{}/calib.txt", "--tokens", "64"], status: 65,
        mention: "declares \(blocks) transformer blocks")
    }
  }

  /// File kinds by content; JSON errors with the file, line and column; a damaged run file names its path once.
  @Test func inputErrorsNameTheFileAndWhere() throws {
    let w = try Workspace()
    let problem = try String(contentsOfFile: w.root + "/problem.json", encoding: .utf8)
    try problem.replacingOccurrences(of: "\"bytes\": 145152", with: "\"bytes\": 145152.5")
      .write(toFile: w.root + "/fraction.json", atomically: false, encoding: .utf8)
    try expectRefused(
      w, ["allocate", "{}/fraction.json", "--bpw", "4", "-o", "{}/p.json"], status: 65,
      mention: "{}/fraction.json: line 6, column 44: layers[0].candidates[0].bytes: 145152.5 is not a whole number")
    try problem.replacingOccurrences(of: "\"bytes\": 145152", with: "\"bytes\": 4611686018427387904")
      .write(toFile: w.root + "/huge.json", atomically: false, encoding: .utf8)
    try expectRefused(w, ["allocate", "{}/huge.json", "--bpw", "4", "-o", "{}/p.json"], status: 65, mention: "out of range")
    try "{\"format_version\": 1,\n \"layers\": [ x ]}".write(toFile: w.root + "/syntax.h5", atomically: false, encoding: .utf8)
    try expectRefused(
      w, ["allocate", "{}/syntax.h5", "--bpw", "4", "-o", "{}/p.json"], status: 65,
      mention: "{}/syntax.h5: line 2, column 14: not valid JSON")
    // A damaged HDF5 file: bad data (65), its path said once.
    var damaged = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
    damaged.append(Data(repeating: 0x55, count: 200))
    _ = FileManager.default.createFile(atPath: w.root + "/damaged.h5", contents: damaged)
    let before = try w.snapshot()
    let r = try BitplanProcess.run(["allocate", w.root + "/damaged.h5", "--bpw", "4", "-o", w.root + "/p.json"])
    #expect(r.status == 65 && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(r.stderr.components(separatedBy: w.root + "/damaged.h5").count == 2, "path once: \(r.stderr)")
    #expect(try w.snapshot() == before)
  }

  /// Two probes leave most Hessian traces within two standard errors of zero: allocate warns with the count,
  /// refuses the scores built on them (and waterfill) unless asked, and never uses a negative predicted ΔLoss.
  /// The run is recognised by content, whatever its name.
  @Test func noisyHessianScoresAreRefusedUnlessAsked() throws {
    let w = try Workspace()
    let measured = try BitplanProcess.run([
      "measure", w.root + "/tiny-llama.gguf", "--calib", w.root + "/calib.txt", "--tokens", "64", "--hvp-tokens", "32",
      "--probes", "2", "--candidates", "int8,int4-g32,int2-g32", "-o", w.root + "/run.json",
    ])
    try #require(measured.status == 0, "\(measured.stderr)")
    let a = ["allocate", "{}/run.json", "--bpw", "5", "-o", "{}/plan.json"]
    try expectRefused(w, a + ["--score", "hawq_trace"], status: 64, mention: "--allow-noisy-scores")
    try expectRefused(w, a + ["--score", "taylor_diag"], status: 64, mention: "layers have a trace that is negative or within two standard errors")
    try expectRefused(w, a + ["--solver", "waterfill"], status: 64, mention: "waterfill solver ranks layers by Hessian traces")
    let allowed = try BitplanProcess.run(
      a.map { $0.replacingOccurrences(of: "{}", with: w.root) } + ["--score", "hawq_trace", "--allow-noisy-scores", "--json"])
    #expect(allowed.status == 0, "\(allowed.stderr)")
    #expect(allowed.stderr.contains(" of 14 layers have a Hessian trace that is negative or within two standard errors of zero"))
    let plan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.root + "/plan.json"))) as! [String: Any]
    #expect((plan["predicted_loss_delta"] as! Double) >= 0)
    #expect((plan["layers"] as! [String: [String: Any]]).values.allSatisfy { ($0["predicted_loss_delta"] as! Double) >= 0 })
    let byDefault = try BitplanProcess.run(a.map { $0.replacingOccurrences(of: "{}", with: w.root) })
    #expect(byDefault.status == 0 && byDefault.stderr.contains("refused on this run unless --allow-noisy-scores"), "\(byDefault.stderr)")
  }

  /// A damaged PLAN.json is bad input data (65) in every command that reads one: malformed, of an unknown version,
  /// with an unknown target or quantizer, inconsistent in itself (bits against the format, negative bytes, a total
  /// that is not the sum, a layer listed twice). One line names the file, the key and the value, shortened to 64
  /// characters; nothing is written. A VALIDATION.json of an unknown version is refused the same way.
  @Test func damagedPlansAreBadInputDataInEveryCommand() throws {
    let w = try Workspace()
    let good = """
      {"format_version": 1, "model": "tiny", "model_sha256": null, "budget_bytes": 100, "total_bytes": 100,
       "bits_per_weight": 8, "solver": "exact", "score": "fisher_diag", "predicted_loss_delta": 0, "target": "any",
       "layers": {"model.layers.0.mlp.down_proj": {"format": "int8", "bits": 8, "group_size": null, "symmetric": true,
         "bytes": 100, "predicted_loss_delta": 0, "quantizer": "rtn"}}}
      """
    try good.write(toFile: w.root + "/good.json", atomically: false, encoding: .utf8)
    let exported = try BitplanProcess.run(["export", w.root + "/good.json", "--format", "json"])
    try #require(exported.status == 0, "the undamaged plan exports: \(exported.stderr)")
    func damage(_ old: String, _ new: String) -> String {
      let text = good.replacingOccurrences(of: old, with: new)
      #expect(text != good, "\(old)")
      return text
    }
    let layer = "layers['model.layers.0.mlp.down_proj']"
    let huge = String(repeating: "q", count: 10_000_000)
    let cases: [(text: String, message: String)] = [
      ("", "not valid JSON"),
      (String(good.prefix(good.count / 2)), "not valid JSON"),
      ("plan", "not valid JSON"),
      (damage("\"bytes\": 100,", "\"bytes\": \"100\","), "\(layer).bytes: Expected to decode Int"),
      (damage("\"format_version\": 1", "\"format_version\": 2"), "format_version 2 is not supported (this build reads 1)"),
      (damage("\"target\": \"any\"", "\"target\": \"bogus\""), "target 'bogus' is not a runtime this build knows (any, llama-cpp"),
      (damage("\"quantizer\": \"rtn\"", "\"quantizer\": \"bogus\""), "\(layer).quantizer 'bogus' is not a quantizer this build knows (rtn, gptq"),
      (damage("\"bits\": 8,", "\"bits\": 2,"), "\(layer).bits 2 contradicts its format int8 (8 bits)"),
      (damage("\"bytes\": 100,", "\"bytes\": -5,"), "\(layer).bytes -5 is negative"),
      (damage("\"group_size\": null", "\"group_size\": -64"), "\(layer).group_size -64 is not a positive group size"),
      (damage("\"budget_bytes\": 100", "\"budget_bytes\": -1"), "budget_bytes -1 is negative"),
      (damage("\"total_bytes\": 100", "\"total_bytes\": 99"), "total_bytes 99 is not the sum of the layers' bytes (100)"),
      (damage("\"layers\": {", "\"layers\": {\"model.layers.0.mlp.down_proj\": {\"format\": \"int4\", \"bytes\": 0, \"predicted_loss_delta\": 0},"),
       "layers has the key 'model.layers.0.mlp.down_proj' twice"),
      (damage("\"format\": \"int8\"", "\"format\": \"\(huge)\""), "\(layer).format '\(huge.prefix(64))…' is not a format name"),
    ]
    let run = BitplanProcess.repositoryRoot.path + "/reports/smollm2-run.h5"
    let commands = [
      ["export", "{}/p.json", "--format", "json", "-o", "{}/out.json"],
      ["validate", "{}/tiny-llama", "{}/p.json", "--eval", "{}/calib.txt", "--tokens", "32", "-o", "{}/v.json"],
      ["quantize", "{}/tiny-llama.gguf", "{}/p.json", "-o", "{}/q.gguf"],
      ["ppl", "{}/tiny-llama.gguf", "--text", "{}/calib.txt", "--tokens", "16", "--plan", "{}/p.json"],
      ["report", run, "--plan", "{}/p.json", "-o", "{}/report"],
    ]
    for (text, message) in cases {
      try text.write(toFile: w.root + "/p.json", atomically: false, encoding: .utf8)
      for command in commands {
        try expectRefused(w, command, status: 65, mention: "'{}/p.json': \(message)")
      }
    }
    let r = try BitplanProcess.run(["export", w.root + "/p.json", "--format", "json"])
    #expect(r.status == 65 && r.stderr.utf8.count < 400, "the 10 MB name is not echoed: \(r.stderr.utf8.count) bytes")

    let validation = try String(
      contentsOfFile: BitplanProcess.repositoryRoot.path + "/reports/smollm2-validation.json", encoding: .utf8)
    try validation.replacingOccurrences(of: "\"format_version\" : 1,", with: "\"format_version\" : 99,")
      .write(toFile: w.root + "/v99.json", atomically: false, encoding: .utf8)
    try expectRefused(
      w, ["report", run, "--validation", "{}/v99.json", "-o", "{}/report"], status: 65,
      mention: "--validation '{}/v99.json': format_version 99 is not supported")
  }

  /// The exit statuses are documented in `--help`.
  @Test func exitStatusesAreDocumented() throws {
    let r = try BitplanProcess.run(["--help"])
    let text = r.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
    for part in ["64 bad option", "65 bad input data", "66 input missing", "71 not enough memory", "73 output cannot be created"] {
      #expect(text.contains(part), "\(part)")
    }
  }
}
