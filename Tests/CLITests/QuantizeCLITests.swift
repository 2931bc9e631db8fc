import Foundation
import Testing
import _TestSupport

/// `bitplan quantize` end to end on a tiny model written by `bitplan tiny-model` (hidden 256, so K-quants fit):
/// the summary, the output read back by `inspect` and run by `validate`, and one-line typed refusals with no output.
@Suite struct QuantizeCLITests {
  static func plan(_ path: String, _ layers: [String: String], sha: String? = nil) throws {
    let entries = layers.map { "\"\($0.key)\": {\"format\": \"\($0.value)\", \"bytes\": 0, \"predicted_loss_delta\": 0}" }
    let text = """
      {"format_version": 1, "model": "tiny", "model_sha256": \(sha.map { "\"\($0)\"" } ?? "null"), "budget_bytes": 0,
       "total_bytes": 0, "bits_per_weight": 0, "solver": "exact", "score": "output_error", "predicted_loss_delta": 0,
       "layers": {\(entries.joined(separator: ",\n"))}}
      """
    try text.write(toFile: path, atomically: true, encoding: .utf8)
  }

  @Test func quantizesInspectsAndValidates() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let made = try BitplanProcess.run(["tiny-model", folder.path, "--hidden", "256", "--intermediate", "512"])
    #expect(made.status == 0, "\(made.stderr)")
    let model = folder.path + "/tiny-llama.gguf"
    let layers = [
      "model.embed_tokens": "q8_0", "model.layers.0.self_attn.q_proj": "q4_k", "model.layers.0.mlp.down_proj": "q6_k",
      "model.layers.1.mlp.up_proj": "q4_0", "model.layers.1.self_attn.v_proj": "f16",
    ]
    try Self.plan(folder.path + "/PLAN.json", layers)
    let r = try BitplanProcess.run(["quantize", model, folder.path + "/PLAN.json", "-o", folder.path + "/out.gguf"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("20 tensors, 5 planned (5 re-encoded, 0 already in their type)"), "\(r.stdout)")
    #expect(r.stdout.contains("f32 → q6_K ×1"), "\(r.stdout)")

    let inspect = try BitplanProcess.run(["inspect", folder.path + "/out.gguf", "--json"])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
    let types = Dictionary(uniqueKeysWithValues: (json["tensors"] as! [[String: Any]]).map { ($0["file_name"] as! String, $0["dtype"] as! String) })
    #expect(types["blk.0.attn_q.weight"] == "Q4_K" && types["blk.0.ffn_down.weight"] == "Q6_K" && types["token_embd.weight"] == "Q8_0")
    #expect(types["blk.1.attn_v.weight"] == "F16" && types["blk.1.ffn_up.weight"] == "Q4_0" && types["blk.1.ffn_gate.weight"] == "F32")

    // validate runs a plan on the quantized file (its layers dequantized from their new types).
    try Self.plan(folder.path + "/PLAN-out.json", ["model.layers.0.mlp.gate_proj": "q8_0", "model.layers.1.self_attn.o_proj": "q4_0"])
    let v = try BitplanProcess.run(
      ["validate", folder.path + "/out.gguf", folder.path + "/PLAN-out.json", "--eval", TestModels.sharedData + "/emma.txt",
       "--tokens", "32", "--windows", "2", "--bootstrap", "50", "--baselines", "none", "--no-cache", "-o", folder.path + "/V.json"])
    #expect(v.status == 0, "\(v.stderr)")
  }

  @Test func refusalsAreOneLineWithNoOutput() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(try BitplanProcess.run(["tiny-model", folder.path]).status == 0)  // hidden 64: no K-quant fits
    let model = folder.path + "/tiny-llama.gguf"
    let plan = folder.path + "/PLAN.json"
    let out = folder.path + "/out.gguf"
    let cases: [([String: String], [String], Int32, String)] = [
      (["model.layers.0.mlp.up_proj": "int4-g32"], ["-o", out], 64, "int4-g32 is not a llama.cpp type"),
      (["model.layers.0.mlp.up_proj": "q4_k"], ["-o", out], 64, "rows of 64 values are not whole blocks of 256"),
      (["model.layers.0.mlp.up_proj": "q4_0"], ["-o", model], 64, "is also the input MODEL"),
      (["model.layers.0.mlp.up_proj": "q4_0"], ["-o", plan], 64, "is also the input PLAN.json"),
      (["model.layers.7.mlp.up_proj": "q4_0"], ["-o", out], 64, "which the model lacks"),
    ]
    for (layers, args, status, message) in cases {
      try Self.plan(plan, layers)
      let r = try BitplanProcess.run(["quantize", model, plan] + args)
      #expect(r.status == status, "\(message): \(r.stderr)")
      #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(message), "\(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: out))
    }
    let hf = try BitplanProcess.run(["quantize", folder.path + "/tiny-llama", plan, "-o", out])
    #expect(hf.status == 65 && hf.stderr.contains("convert_hf_to_gguf.py"), "\(hf.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["PLAN.json", "tiny-llama", "tiny-llama.gguf"])
  }
  /// A legacy `.dat` importance matrix (llama-imatrix --output-format dat): per entry its name, call count 1 and
  /// `columns` seeded positive means; then the chunk count and dataset trailer.
  static func legacyImatrix(_ path: String, _ entries: [(String, Int)]) throws {
    var out: [UInt8] = []
    func int(_ v: Int) { withUnsafeBytes(of: Int32(v).littleEndian) { out += $0 } }
    int(entries.count)
    for (n, (name, columns)) in entries.enumerated() {
      int(name.utf8.count)
      out += Array(name.utf8)
      int(1)
      int(columns)
      for v in randomFloats(columns, seed: UInt64(n) + 3) { withUnsafeBytes(of: (v * v + 0.1).bitPattern.littleEndian) { out += $0 } }
    }
    int(8)
    int(8)
    out += Array("calib.md".utf8)
    try Data(out).write(to: URL(fileURLWithPath: path))
  }

  /// `--imatrix`: the summary says how many tensors were weighed; a wrong-sized entry, an output naming the matrix
  /// and a missing matrix are one-line refusals with no output.
  @Test func importanceMatrix() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(try BitplanProcess.run(["tiny-model", folder.path, "--hidden", "256", "--intermediate", "512"]).status == 0)
    let model = folder.path + "/tiny-llama.gguf", plan = folder.path + "/PLAN.json", out = folder.path + "/out.gguf"
    let imatrix = folder.path + "/imatrix.dat"
    try Self.plan(plan, [
      "model.embed_tokens": "q8_0", "model.layers.0.self_attn.q_proj": "q4_k", "model.layers.0.mlp.down_proj": "q6_k",
      "model.layers.1.mlp.up_proj": "q4_0", "model.layers.1.self_attn.v_proj": "f16",
    ])
    try Self.legacyImatrix(imatrix, [("blk.0.attn_q.weight", 256), ("blk.0.ffn_down.weight", 512), ("blk.1.attn_v.weight", 256)])
    let r = try BitplanProcess.run(["quantize", model, plan, "--imatrix", imatrix, "-o", out])
    #expect(r.status == 0, "\(r.stderr)")
    // attn_q and ffn_down are weighed; attn_v has an entry but f16 does not read it; the others have none.
    #expect(r.stdout.contains("importance matrix \(imatrix) (3 entries): 2 of the 5 re-encoded tensors quantized with it"), "\(r.stdout)")
    let json = try BitplanProcess.run(["quantize", model, plan, "--imatrix", imatrix, "-o", out, "--json"])
    let summary = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
    #expect(summary["importance_entries"] as? Int == 3, "\(json.stdout)")
    try FileManager.default.removeItem(atPath: out)

    try Self.legacyImatrix(imatrix, [("blk.0.attn_q.weight", 128)])
    let cases: [([String], Int32, String)] = [
      (["-o", out], 65, "importance matrix entry 'blk.0.attn_q.weight' has 128 values, the tensor's rows take 256"),
      (["-o", imatrix], 64, "is also the input --imatrix"),
    ]
    for (args, status, message) in cases {
      let e = try BitplanProcess.run(["quantize", model, plan, "--imatrix", imatrix] + args)
      #expect(e.status == status, "\(message): \(e.stderr)")
      #expect(e.stderr.split(separator: "\n").count == 1 && e.stderr.contains(message), "\(e.stderr)")
      #expect(!FileManager.default.fileExists(atPath: out))
    }
    let missing = try BitplanProcess.run(["quantize", model, plan, "--imatrix", folder.path + "/none.dat", "-o", out])
    #expect(missing.status == 66 && missing.stderr.contains("--imatrix"), "\(missing.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["PLAN.json", "imatrix.dat", "tiny-llama", "tiny-llama.gguf"])
  }
}
