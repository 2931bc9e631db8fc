import Foundation
import Testing
import _TestSupport

/// `bitplan validate` and `ppl --plan` end to end on the committed tiny model (2 blocks, d 64): the table and
/// VALIDATION.json, baselines within the plan's bytes, the base cache, and one-line typed errors with no output.
@Suite struct ValidateCLITests {
  static var eval: String { TestModels.sharedData + "/emma.txt" }
  static let kinds = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

  /// A plan for the tiny model: every layer in `format`, except the down projections in `down`.
  static func writePlan(
    _ path: String, format: String, down: String? = nil, sha: String? = nil, extra: String? = nil, target: String? = nil
  ) throws {
    var layers: [String] = []
    for b in 0..<2 {
      for k in kinds {
        let module = k.hasSuffix("proj") && ["gate_proj", "up_proj", "down_proj"].contains(k) ? "mlp" : "self_attn"
        let f = k == "down_proj" ? (down ?? format) : format
        layers.append("\"model.layers.\(b).\(module).\(k)\": {\"format\": \"\(f)\", \"bytes\": 0, \"predicted_loss_delta\": 0}")
      }
    }
    if let extra { layers.append("\"\(extra)\": {\"format\": \"int8\", \"bytes\": 0, \"predicted_loss_delta\": 0}") }
    let text = """
      {"format_version": 1, "model": "tiny", "model_sha256": \(sha.map { "\"\($0)\"" } ?? "null"), "budget_bytes": 0,
       "total_bytes": 0, "bits_per_weight": 0, "solver": "exact", "score": "output_error", "predicted_loss_delta": 0,
       \(target.map { "\"target\": \"\($0)\"," } ?? "")
       "layers": {\(layers.joined(separator: ",\n"))}}
      """
    try text.write(toFile: path, atomically: true, encoding: .utf8)
  }

  static func validate(_ folder: URL, plan: String, windows: Int = 4, _ extra: [String] = []) throws -> BitplanProcess.Result {
    try BitplanProcess.run(
      ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", eval, "--tokens", "64", "--windows", "\(windows)",
       "--bootstrap", "200", "-o", folder.path + "/V.json"] + extra,
      environment: ["XDG_CACHE_HOME": folder.path + "/cache"])
  }

  @Test func validatesAPlanAgainstItsBaselines() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int4-g32", down: "int8")
    let r = try Self.validate(folder, plan: plan)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("plan (exact, output_error)") && r.stdout.contains("uniform"), "\(r.stdout)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
    #expect(json["protocol"] as? String == "bitplan" && json["activations"] as? String == "int8")
    #expect((json["window_starts"] as? [Int])?.count == 4 && json["scored_per_window"] as? Int == 63)
    let models = json["models"] as! [[String: Any]]
    #expect(models.first?["name"] as? String == "plan")
    #expect(Set(models.map { $0["name"] as! String }).isSuperset(of: ["plan", "uniform"]))
    let planBytes = models[0]["bytes"] as! Int
    for m in models {
      let bytes = m["bytes"] as! Int
      #expect(bytes <= planBytes, "\(m["label"]!) fits the plan's bytes")
      let kld = m["kld"] as! [String: Double]
      #expect(kld["value"]! > 0 && kld["low"]! <= kld["value"]! && kld["value"]! <= kld["high"]!)
      #expect((m["windows"] as! [Any]).count == 4)
    }
    // The cache holds the base now; a second run reads it and gives the same numbers.
    let cached = try FileManager.default.contentsOfDirectory(atPath: folder.path + "/cache/bitplan/validation")
    #expect(cached.count == 1 && cached[0].hasSuffix(".ref"))
    let first = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))
    let again = try Self.validate(folder, plan: plan)
    #expect(again.status == 0, "\(again.stderr)")
    let second = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))
    func scored(_ d: Data) throws -> NSArray { (try JSONSerialization.jsonObject(with: d) as! [String: Any])["models"] as! NSArray }
    let (a, b) = (try scored(first), try scored(second))
    #expect(a == b)
  }

  @Test func int8PlanIsCloseToTheBaseAndFloatActivationsAreCloser() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int8")
    func kld(_ activations: String) throws -> Double {
      let r = try Self.validate(folder, plan: plan, ["--activations", activations, "--baselines", "none", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
      return ((json["models"] as! [[String: Any]])[0]["kld"] as! [String: Double])["value"]!
    }
    let (int8, f32) = (try kld("int8"), try kld("f32"))
    #expect(f32 < 1e-3 && int8 < 1e-2, "int8 weights: KLD \(f32) with float activations, \(int8) with int8 ones")
    #expect(f32 < int8, "quantizing the activations adds error")
  }

  @Test func pplWithAPlanRunsItPacked() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int2-g32")
    let base = try BitplanProcess.run(["ppl", BitplanProcess.fixture("tiny-llama"), "--text", Self.eval, "--tokens", "64", "--json"])
    let planned = try BitplanProcess.run(["ppl", BitplanProcess.fixture("tiny-llama"), "--text", Self.eval, "--tokens", "64", "--plan", plan, "--json"])
    #expect(base.status == 0 && planned.status == 0, "\(base.stderr)\(planned.stderr)")
    let a = try JSONSerialization.jsonObject(with: Data(base.stdout.utf8)) as! [String: Any]
    let b = try JSONSerialization.jsonObject(with: Data(planned.stdout.utf8)) as! [String: Any]
    #expect(a["mean_nll"] as? Double != nil && a["mean_nll"] as? Double != b["mean_nll"] as? Double, "2-bit weights change the NLL")
  }

  /// The tiny model's planned layers, `[rows, columns]`: q, k, v, o, gate, up, down per block.
  static let shapes: [(kind: String, rows: Int, columns: Int)] = [
    ("q_proj", 64, 64), ("k_proj", 32, 64), ("v_proj", 32, 64), ("o_proj", 64, 64), ("gate_proj", 128, 64),
    ("up_proj", 128, 64), ("down_proj", 64, 128),
  ]

  /// GPTQModel's stored bytes of an intB-gG layer, written out from its buffers (qweight int32 [⌈c·B/32⌉, r],
  /// qzeros int32 [g, ⌈r·B/32⌉], scales f16 [g, r], g_idx int32 [c]), independently of `Target.storedBytes`.
  static func gptqBytes(bits: Int, group: Int, rows r: Int, columns c: Int) -> Int {
    let g = c / group
    return 4 * ((c * bits + 31) / 32) * r + 4 * g * ((r * bits + 31) / 32) + 2 * g * r + 4 * c
  }

  /// A plan made for `--target gptqmodel` is validated in GPTQModel's bytes: the plan row's bytes are its stored
  /// bytes (not the grammar's), bits per weight follow, and every baseline is no larger in those bytes and uses
  /// only formats GPTQModel stores. Without a target the same plan is counted in the grammar's bytes.
  @Test func aTargetPlanIsCountedInTheTargetsBytes() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int4-g32", down: "int8-g32", target: "gptqmodel")
    let r = try Self.validate(folder, plan: plan, windows: 2)
    #expect(r.status == 0, "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
    let models = json["models"] as! [[String: Any]]
    var expected = 0, parameters = 0, grammar = 0
    for s in Self.shapes {
      let bits = s.kind == "down_proj" ? 8 : 4
      expected += 2 * Self.gptqBytes(bits: bits, group: 32, rows: s.rows, columns: s.columns)
      // The grammar's intB-g32: B bits per weight plus one f16 scale per group.
      grammar += 2 * (s.rows * s.columns * bits / 8 + s.rows * (s.columns / 32) * 2)
      parameters += 2 * s.rows * s.columns
    }
    #expect(expected != grammar)
    #expect(models[0]["bytes"] as? Int == expected)
    #expect(abs((models[0]["bits_per_weight"] as! Double) - Double(expected) * 8 / Double(parameters)) < 1e-9)
    #expect(models.count >= 2, "some baseline was built: \(r.stdout)")
    let gptq = try Regex("^(f16|int[2348](-g(32|64|128))?(-asym)?)$")
    for m in models.dropFirst() {
      #expect((m["bytes"] as! Int) <= expected, "\(m["label"]!) fits the plan's GPTQModel bytes")
      for name in (m["format_counts"] as! [String: Int]).keys {
        #expect(name.wholeMatch(of: gptq) != nil, "\(m["label"]!): \(name) is a format GPTQModel stores")
      }
    }

    // The same plan without a target: the grammar's bytes.
    try Self.writePlan(plan, format: "int4-g32", down: "int8-g32")
    let plain = try Self.validate(folder, plan: plan, windows: 2)
    #expect(plain.status == 0, "\(plain.stderr)")
    let plainJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
    #expect((plainJSON["models"] as! [[String: Any]])[0]["bytes"] as? Int == grammar)
  }

  /// A plan whose target cannot store one of its formats is refused (a plan for another runtime: 64); one that
  /// names an unknown target is bad input data (65).
  @Test(arguments: [
    ("gptqmodel", "q4_0", "which target gptqmodel cannot store", 64),
    ("tpu", "int8", "target 'tpu' is not a runtime this build knows", 65),
  ])
  func aPlanItsTargetCannotStoreIsRefused(target: String, format: String, mention: String, status: Int32) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: format, target: target)
    let r = try Self.validate(folder, plan: plan, windows: 2)
    #expect(r.status == status, "\(r.stderr)")
    let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].contains(mention), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }

  /// Bad input: non-zero exit, one line on stderr naming the problem, no VALIDATION.json.
  @Test(arguments: [
    ("sha", 64, "was made for the model with sha256 0123456789ab"),
    ("layer", 64, "'model.layers.7.mlp.down_proj', which the model lacks (2 blocks"),
    ("format", 65, "'int9' is not a format name"),
    ("short", 65, "--eval"),
    ("noKernel", 64, "nf4"),
  ])
  func badInputIsOneLineTypedError(kind: String, status: Int32, mention: String) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    var windows = 4
    switch kind {
    case "sha": try Self.writePlan(plan, format: "int8", sha: "0123456789abcdef")
    case "layer": try Self.writePlan(plan, format: "int8", extra: "model.layers.7.mlp.down_proj")
    case "format": try Self.writePlan(plan, format: "int9")
    case "short":
      try Self.writePlan(plan, format: "int8")
      windows = 100_000
    default: try Self.writePlan(plan, format: "nf4-g32")
    }
    let r = try Self.validate(folder, plan: plan, windows: windows)
    #expect(r.status == status, "\(kind): \(r.stderr)")
    let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].contains(mention), "\(kind): \(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }

  @Test func aRunOfAnotherModelIsRefused() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int8")
    let run = folder.path + "/RUN.h5"  // SmolLM2's committed run, copied: validate would write its table into it
    try FileManager.default.copyItem(atPath: BitplanProcess.repositoryRoot.appendingPathComponent("reports/smollm2-run.h5").path, toPath: run)
    let r = try Self.validate(folder, plan: plan, ["--run", run])
    #expect(r.status == 64 && r.stderr.contains("was measured on the model with sha256"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }

  @Test func outputThatIsAFolderOrAnInputIsRefused() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try Self.writePlan(plan, format: "int8")
    let before = try Data(contentsOf: URL(fileURLWithPath: plan))
    for output in [folder.path, plan] {
      let r = try BitplanProcess.run(
        ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", Self.eval, "--tokens", "64", "--windows", "2", "-o", output])
      #expect(r.status != 0 && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: plan)) == before, "the plan is left as it was")
  }
}
