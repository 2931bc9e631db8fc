import Foundation
import TensorCore
import Testing
import _TestSupport

/// `bitplan export`: one line and a non-zero exit for a plan the runtime cannot express, nothing written; the
/// llama-cpp recipe for the real SmolLM2 GGUF, parsed as llama-quantize parses it (tools/quantize/quantize.cpp
/// `parse_tensor_type_file`: whitespace-separated `PATTERN=TYPE`, pattern lower-cased, `regex_search`).
@Suite struct ExportCLITests {
  static let committedPlan = BitplanProcess.repositoryRoot.appendingPathComponent("reports/smollm2-plan.json").path
  /// sha256 of SmolLM2-135M-Instruct.Q4_1.gguf, as the committed plan records it.
  static let smolSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

  static func writePlan(_ formats: [String: String], model: String? = nil, sha: String?, to path: String) throws {
    let json: [String: Any] = [
      "format_version": 1, "model": model as Any? ?? NSNull(), "model_sha256": sha as Any? ?? NSNull(),
      "budget_bytes": 0, "total_bytes": 0, "bits_per_weight": 0, "solver": "exact", "score": "hand-made",
      "predicted_loss_delta": 0,
      "layers": formats.mapValues {
        ["format": $0, "bits": NSNull(), "group_size": NSNull(), "symmetric": NSNull(), "bytes": 0, "predicted_loss_delta": 0]
      },
    ]
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
  }

  @Test func theCommittedIntPlanIsRefusedForLlamaCppWithOneLineAndNoFile() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("recipe.txt").path
    let r = try BitplanProcess.run(["export", Self.committedPlan, "--format", "llama-cpp", "-o", out])
    #expect(r.status == 64, "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("int") && r.stderr.contains("model.layers."))
    #expect(!FileManager.default.fileExists(atPath: out))
    // Its int formats suit llm-compressor only after --tie; GPTQModel refuses int6; JSON takes anything.
    #expect(try BitplanProcess.run(["export", Self.committedPlan, "--format", "gptqmodel"]).status == 64)
    let json = try BitplanProcess.run(["export", Self.committedPlan, "--format", "json"])
    #expect(json.status == 0 && json.stdout.contains("\"gguf\" : \"blk.0.ffn_down.weight\""), "\(json.stderr)")
  }

  @Test func llamaCppRecipeForSmolLM2CoversEveryQuantizableTensorWithItsPlannedType() throws {
    let model = TestModels.smolLM2Path
    try #require(TestModels.exists(model), "\(TestModels.missing(model))")
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var generator = SplitMix64(seed: 14)
    func pick(_ options: [String]) -> String { options[Int(generator.next() % UInt64(options.count))] }
    var formats = ["model.embed_tokens": "q5_1"]
    for b in 0..<30 where b % 4 != 3 {  // every fourth block keeps its Q4_1
      for l in ["q_proj", "k_proj", "v_proj", "o_proj"] { formats["model.layers.\(b).self_attn.\(l)"] = pick(["q4_0", "q5_0", "q5_1", "q8_0", "f16"]) }
      for l in ["gate_proj", "up_proj"] { formats["model.layers.\(b).mlp.\(l)"] = pick(["q4_0", "q5_0", "q8_0"]) }
      formats["model.layers.\(b).mlp.down_proj"] = pick(["q4_k", "q6_k", "q3_k"])
    }
    let plan = dir.appendingPathComponent("plan.json").path
    let recipe = dir.appendingPathComponent("recipe.txt").path
    try Self.writePlan(formats, model: model, sha: Self.smolSHA256, to: plan)
    // The plan names its model: no --model needed.
    let r = try BitplanProcess.run(["export", plan, "--format", "llama-cpp", "-o", recipe])
    try #require(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.hasPrefix("llama-quantize --allow-requantize --tensor-type-file \(recipe) \(model) "), "\(r.stderr)")
    let rules = try String(contentsOfFile: recipe, encoding: .utf8).split(whereSeparator: \.isWhitespace).map { token in
      let eq = token.firstIndex(of: "=")!
      return (try NSRegularExpression(pattern: String(token[..<eq]).lowercased()), String(token[token.index(after: eq)...]))
    }
    #expect(rules.count == 211, "210 linear layers and token_embd")
    let inspect = try BitplanProcess.run(["inspect", model, "--json"])
    try #require(inspect.status == 0, "\(inspect.stderr)")
    let tensors = try #require(
      (try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])?["tensors"] as? [[String: Any]])
    var checked = 0
    for tensor in tensors {
      let gguf = tensor["file_name"] as! String, hf = tensor["name"] as! String, stored = tensor["dtype"] as! String
      let matching = rules.filter { $0.0.firstMatch(in: gguf, range: NSRange(gguf.startIndex..., in: gguf)) != nil }
      guard (tensor["shape"] as! [Int]).count == 2 else {
        #expect(matching.isEmpty, "\(gguf)")
        continue
      }
      #expect(matching.count == 1, "\(gguf)")
      let want = formats[String(hf.dropLast(".weight".count))] ?? stored.lowercased()
      #expect(matching.first?.1.lowercased() == want, "\(gguf)")
      checked += 1
    }
    #expect(checked == 211)
  }

  @Test func aModelWithAnotherChecksumIsRefused() throws {
    let model = TestModels.smolLM2Path
    try #require(TestModels.exists(model), "\(TestModels.missing(model))")
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let plan = dir.appendingPathComponent("plan.json").path
    let out = dir.appendingPathComponent("recipe.txt").path
    try Self.writePlan(["model.layers.0.mlp.down_proj": "q6_k"], sha: String(repeating: "ab", count: 32), to: plan)
    let r = try BitplanProcess.run(["export", plan, "--format", "llama-cpp", "--model", model, "-o", out])
    #expect(r.status == 64 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("sha256"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  @Test func outputNamingThePlanIsRefusedAndThePlanKept() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let plan = dir.appendingPathComponent("plan.json").path
    try Self.writePlan(["model.layers.0.mlp.down_proj": "int4-g128"], sha: nil, to: plan)
    let before = try Data(contentsOf: URL(fileURLWithPath: plan))
    let r = try BitplanProcess.run(["export", plan, "--format", "gptqmodel", "-o", plan])
    #expect(r.status == 64 && r.stderr.contains("-o"), "\(r.stderr)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: plan)) == before)
  }

  @Test func gptqModelWarnsAboutDifferingSiblingsAndLLMCompressorRefusesThem() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let plan = dir.appendingPathComponent("plan.json").path
    try Self.writePlan(
      ["model.layers.0.self_attn.q_proj": "int4-g128", "model.layers.0.self_attn.k_proj": "int8",
        "model.layers.0.self_attn.v_proj": "int4-g128"], sha: nil, to: plan)
    let out = dir.appendingPathComponent("quantize_config.json").path
    let gptq = try BitplanProcess.run(["export", plan, "--format", "gptqmodel", "-o", out])
    #expect(gptq.status == 0 && gptq.stderr.hasPrefix("warning: model.layers.0.self_attn"), "\(gptq.stderr)")
    #expect(FileManager.default.fileExists(atPath: out))
    let yaml = dir.appendingPathComponent("recipe.yaml").path
    let compressor = try BitplanProcess.run(["export", plan, "--format", "llm-compressor", "-o", yaml])
    #expect(compressor.status == 64 && compressor.stderr.contains("--tie"), "\(compressor.stderr)")
    #expect(!FileManager.default.fileExists(atPath: yaml))
  }

  /// `export --format llama-cpp --imatrix F --run RUN.h5` on a tiny tied model measured for llama.cpp: the importance
  /// matrix holds every measured layer and the tied token embedding (as llama.cpp's common/imatrix-loader.cpp pairs
  /// `<name>.in_sum2` with `<name>.counts`), the printed llama-quantize command passes it, and every misuse is one
  /// line with nothing written.
  @Test func llamaCppExportWritesTheRunsImportanceMatrix() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = { (name: String) in dir.appendingPathComponent(name).path }
    for (seed, name) in [("1", "a"), ("2", "b")] {
      #expect(try BitplanProcess.run(["tiny-model", path(name), "--seed", seed]).status == 0)
      let m = try BitplanProcess.run([
        "measure", path(name) + "/tiny-llama.gguf", "--calib", MeasureCLITests.calib, "--tokens", "64", "--hvp-tokens", "32",
        "--probes", "4", "--target", "llama-cpp", "--candidates", "q8_0,q4_0", "--audit", "0", "-o", path(name + ".h5"),
      ])
      try #require(m.status == 0, "\(m.stderr)")
    }
    let model = path("a") + "/tiny-llama.gguf"
    let a = try BitplanProcess.run(["allocate", path("a.h5"), "--target", "llama-cpp", "--bpw", "6", "-o", path("plan.json")])
    try #require(a.status == 0, "\(a.stderr)")
    let recipe = path("recipe.txt"), imatrix = path("imatrix.gguf")
    let r = try BitplanProcess.run([
      "export", path("plan.json"), "--format", "llama-cpp", "--model", model, "-o", recipe, "--imatrix", imatrix, "--run", path("a.h5"),
    ])
    try #require(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.hasPrefix("llama-quantize --allow-requantize --imatrix \(imatrix) --tensor-type-file \(recipe) "), "\(r.stderr)")
    let inspect = try BitplanProcess.run(["inspect", imatrix, "--json"])
    try #require(inspect.status == 0, "\(inspect.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
    let names = Set((json["tensors"] as! [[String: Any]]).map { $0["file_name"] as! String })
    var want: Set<String> = ["token_embd.weight.in_sum2", "token_embd.weight.counts"]
    for b in 0..<2 {
      for t in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
        want.formUnion(["blk.\(b).\(t).weight.in_sum2", "blk.\(b).\(t).weight.counts"])
      }
    }
    #expect(names == want)

    let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    let misuse: [([String], String)] = [
      (["--imatrix", path("x.gguf")], "give --run RUN.h5 too"),
      (["--run", path("a.h5")], "give --imatrix FILE too"),
      (["--imatrix", path("plan.json"), "--run", path("a.h5")], "is also the input PLAN.json"),
      (["--imatrix", path("x.gguf"), "--run", path("b.h5")], "not the plan's"),
      (["--imatrix", path("x.gguf"), "--run", path("missing.h5")], "--run"),
    ]
    for (extra, message) in misuse {
      let e = try BitplanProcess.run(["export", path("plan.json"), "--format", "llama-cpp", "--model", model, "-o", path("r2.txt")] + extra)
      #expect(e.status != 0 && e.stderr.split(separator: "\n").count == 1 && e.stderr.contains(message), "\(extra): \(e.stderr)")
    }
    let mlx = try BitplanProcess.run(["export", path("plan.json"), "--format", "json", "--imatrix", path("x.gguf"), "--run", path("a.h5")])
    #expect(mlx.status == 64 && mlx.stderr.contains("--format llama-cpp"), "\(mlx.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == before)
  }
}
