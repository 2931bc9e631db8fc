import Foundation
import GGML
import ModelIO
@testable import Pipeline
import TensorCore
import Testing
import Validation
import _TestSupport

/// `bitplan quantize`'s library side on tiny synthetic GGUFs: planned tensors get their planned type and the bytes
/// ggml's reference encoders make of the dequantized values, everything else is kept, and every refusal leaves no
/// file.
@Suite struct GGUFQuantizeTests {
  /// A tiny llama GGUF whose rows K-quants can hold (hidden 256, ffn 512), matrices stored as Q8_0 (so planned
  /// tensors are requantized, as from a downloaded GGUF), norms F32; its path.
  static func quantizedSource(_ folder: String, hidden: Int = 256) throws -> String {
    let config = TinyLlama.configuration(hidden: hidden, intermediate: 2 * hidden)
    try TinyLlama.writeGGUF(folder + "/f32.gguf", config: config, seed: 7)
    let f32 = try GGUFFile(path: folder + "/f32.gguf")
    var r = GGUFRewriter(source: f32)
    for t in f32.tensors where LlamaFileType.isQuantizable(t) { try r.setType(.q8_0, ofTensor: t.name) }
    try r.write(to: folder + "/model.gguf")
    return folder + "/model.gguf"
  }

  /// A PLAN.json for `layers` (name → format), recording `sha` as the model's checksum.
  static func writePlan(_ path: String, _ layers: [String: String], sha: String?) throws {
    var entries: [String: Any] = [:]
    for (name, format) in layers {
      entries[name] = ["format": format, "bits": NSNull(), "group_size": NSNull(), "symmetric": NSNull(), "bytes": 0, "predicted_loss_delta": 0.0]
    }
    let doc: [String: Any] = [
      "format_version": 1, "model": NSNull(), "model_sha256": sha.map { $0 as Any } ?? NSNull(), "budget_bytes": 0,
      "total_bytes": 0, "bits_per_weight": 0.0, "solver": "test", "score": "none", "predicted_loss_delta": 0.0,
      "layers": entries,
    ]
    try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: path))
  }

  static let mixedPlan = [
    "model.embed_tokens": "q5_0", "model.layers.0.self_attn.q_proj": "q4_k", "model.layers.0.self_attn.k_proj": "q3_k",
    "model.layers.0.mlp.down_proj": "q6_k", "model.layers.1.mlp.up_proj": "q4_1", "model.layers.1.self_attn.v_proj": "f16",
    "model.layers.1.self_attn.o_proj": "q8_0",  // its stored type: copied
    "model.layers.1.mlp.gate_proj": "q2_k",
  ]

  @Test func plannedTensorsGetTheirTypeAndGGMLBytes() throws {
    let folder = temporaryFolder("quantize-mixed")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try Self.quantizedSource(folder)
    let sha = try Measurement.modelSHA256(path: model)
    try Self.writePlan(folder + "/plan.json", Self.mixedPlan, sha: sha)
    let summary = try GGUFQuantize.run(model: model, plan: folder + "/plan.json", output: folder + "/out.gguf")
    let source = try GGUFFile(path: model), out = try GGUFFile(path: folder + "/out.gguf")

    #expect(out.tensors.map(\.name) == source.tensors.map(\.name))
    #expect(out.tensors.map(\.shape) == source.tensors.map(\.shape))
    var planned: [String: GGMLType] = [:]
    for (layer, format) in Self.mixedPlan {
      planned[NameMapping.ggufName(forHF: layer + ".weight")!] = GGMLType(name: format)!
    }
    for (s, o) in zip(source.tensors, out.tensors) {
      guard let type = planned[s.name] else {
        let kept = try out.rawData(named: s.name) == source.rawData(named: s.name)
        #expect(o.type == s.type && kept, "\(s.name) kept")
        continue
      }
      #expect(o.type == type, "\(s.name)")
      // The bytes of ggml's reference encoder, row by row, applied to the reference decoder's values.
      let values = try GGMLDequantize.reference(s.type, try source.rawData(named: s.name), count: s.elementCount)
      let rowBytes = type.rowSizeInBytes(s.rowLength)!
      var expected = [UInt8](repeating: 0, count: rowBytes * s.elementCount / s.rowLength)
      if type == .f16 {
        expected = values.flatMap { v in withUnsafeBytes(of: Half.f16Bits(v).littleEndian) { Array($0) } }
      } else {
        values.withUnsafeBufferPointer { x in
          expected.withUnsafeMutableBytes { e in
            for r in 0..<s.elementCount / s.rowLength {
              GGMLEncode.reference(
                type, UnsafeBufferPointer(rebasing: x[r * s.rowLength..<(r + 1) * s.rowLength]),
                into: UnsafeMutableRawBufferPointer(rebasing: e[r * rowBytes..<(r + 1) * rowBytes]))
            }
          }
        }
      }
      if type == s.type { expected = try source.rawData(named: s.name) }  // copied, not re-encoded
      #expect(try out.rawData(named: s.name) == expected, "\(s.name) as \(type.name)")
    }

    // Metadata: the source's in order, then quantization_version and file_type moved to the end (gguf_set_val_u32).
    let moved = ["general.quantization_version", "general.file_type"]
    #expect(out.metadataKeys == source.metadataKeys.filter { !moved.contains($0) } + moved)
    for key in source.metadataKeys where !moved.contains(key) { #expect(out.metadata[key] == source.metadata[key], "\(key)") }
    #expect(out.metadata["general.quantization_version"] == .uint32(2))
    // Q8_0 still holds the most weights among the quantized matrices (embedding re-encoded as Q5_0 is 258·256).
    #expect(out.metadata["general.file_type"] == .uint32(LlamaFileType.of(out.tensors).rawValue))
    #expect(summary.fileType == Int(LlamaFileType.of(out.tensors).rawValue))
    #expect(summary.planned.count == Self.mixedPlan.count)
    #expect(summary.planned.filter(\.copied).map(\.layer) == ["model.layers.1.self_attn.o_proj"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["f32.gguf", "model.gguf", "out.gguf", "plan.json"])
  }

  /// Each refusal: a one-line typed error naming what is wrong, and no output (no temporary file either).
  @Test func refusalsLeaveNoFile() throws {
    let folder = temporaryFolder("quantize-refuse")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try Self.quantizedSource(folder)
    let narrow = try Self.quantizedSource(temporaryFolder("quantize-narrow"), hidden: 64)
    defer { try? FileManager.default.removeItem(atPath: (narrow as NSString).deletingLastPathComponent) }
    let sha = try Measurement.modelSHA256(path: model)
    let before = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()

    func refused(_ layers: [String: String], sha: String?, model m: String? = nil, output: String? = nil) -> String {
      do {
        try Self.writePlan(folder + "/plan.json", layers, sha: sha)
        _ = try GGUFQuantize.run(model: m ?? model, plan: folder + "/plan.json", output: output ?? folder + "/out.gguf")
        return "written"
      } catch { return "\(error)" }
    }
    let q = "model.layers.0.self_attn.q_proj"
    let nonGGML = refused([q: "int4-g128"], sha: sha)
    #expect(nonGGML.contains(q) && nonGGML.contains("int4-g128") && nonGGML.contains("not a llama.cpp type"), "\(nonGGML)")
    let kQuant = refused([q: "q4_k"], sha: nil, model: narrow)
    #expect(kQuant.contains(q) && kQuant.contains("q4_k") && kQuant.contains("rows of 64"), "\(kQuant)")
    let otherModel = refused([q: "q4_0"], sha: String(repeating: "ab", count: 32))
    #expect(otherModel.contains("was made for the model with sha256 abababababab"), "\(otherModel)")
    let unknown = refused(["model.layers.9.mlp.up_proj": "q4_0"], sha: sha)
    #expect(unknown.contains("model.layers.9.mlp.up_proj") && unknown.contains("lacks"), "\(unknown)")
    let norm = refused(["model.layers.0.input_layernorm": "q8_0"], sha: sha)
    #expect(norm.contains("lacks"), "\(norm)")
    let empty = refused([:], sha: sha)
    #expect(empty.contains("plans no layers"), "\(empty)")
    let sameAsModel = refused([q: "q4_0"], sha: sha, output: model)
    #expect(sameAsModel.contains("is also the input MODEL"), "\(sameAsModel)")
    let sameAsPlan = refused([q: "q4_0"], sha: sha, output: folder + "/plan.json")
    #expect(sameAsPlan.contains("is also the input PLAN.json"), "\(sameAsPlan)")
    try TinyLlama.writeHFFolder(folder + "/hf", config: TinyLlama.configuration(), seed: 1)
    let hf = refused([q: "q4_0"], sha: nil, model: folder + "/hf")
    #expect(hf.hasPrefix("unsupported:") && hf.contains("convert_hf_to_gguf.py"), "\(hf)")
    try FileManager.default.removeItem(atPath: folder + "/hf")
    try FileManager.default.removeItem(atPath: folder + "/plan.json")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == before)
    // The typed errors behind the messages.
    try Self.writePlan(folder + "/plan.json", [q: "nf4-g64"], sha: sha)
    #expect(throws: PlanValidationError.self) {
      try GGUFQuantize.run(model: model, plan: folder + "/plan.json", output: folder + "/out.gguf")
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.gguf"))
  }

  /// The real SmolLM2 (skipped without it): a small mixed plan over the 576- and 1536-column rows, re-read.
  @Test(.enabled(if: TestModels.exists(TestModels.smolLM2Path), "needs SmolLM2 (BITPLAN_MODEL)"))
  func realSmolLM2MixedPlan() throws {
    let folder = temporaryFolder("quantize-smollm2")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = TestModels.smolLM2Path
    let plan = [
      "model.embed_tokens": "q8_0",  // stored as Q8_0: copied
      "model.layers.0.self_attn.q_proj": "q5_0", "model.layers.0.mlp.down_proj": "q6_k",
      "model.layers.29.mlp.down_proj": "q2_k", "model.layers.3.mlp.up_proj": "f16", "model.layers.5.self_attn.k_proj": "q8_0",
    ]
    try Self.writePlan(folder + "/plan.json", plan, sha: try Measurement.modelSHA256(path: model))
    let summary = try GGUFQuantize.run(model: model, plan: folder + "/plan.json", output: folder + "/out.gguf")
    let source = try GGUFFile(path: model), out = try GGUFFile(path: folder + "/out.gguf")
    #expect(out.tensors.count == 272 && out.tensors.map(\.name) == source.tensors.map(\.name))
    #expect(out.info(named: "blk.0.ffn_down.weight")?.type == .q6_K)
    #expect(out.info(named: "blk.29.ffn_down.weight")?.type == .q2_K)
    #expect(out.info(named: "blk.3.ffn_up.weight")?.type == .f16)
    #expect(out.info(named: "blk.1.ffn_down.weight")?.type == .q4_1)
    #expect(try out.rawData(named: "token_embd.weight") == source.rawData(named: "token_embd.weight"))
    let down = source.info(named: "blk.0.ffn_down.weight")!
    let expected = try GGMLRequantize.reference(
      try source.rawBytes(of: down), from: .q4_1, to: .q6_K, count: down.elementCount, rowLength: down.rowLength)
    #expect(try out.rawData(named: "blk.0.ffn_down.weight") == expected)
    #expect(summary.fileTypeName == "Q4_1")  // most weights are still Q4_1
    #expect(try out.llamaConfig().layerCount == 30)
    let text = try out.tensor(named: "blk.0.attn_q.weight")
    #expect(text.shape == [576, 576])
  }
}

/// `GGUFQuantize` with an importance matrix (`--imatrix`): what llama-quantize --imatrix writes.
@Suite struct GGUFQuantizeImportanceTests {
  /// A GGUF importance matrix as llama-imatrix writes it: for each (tensor, column count), `T.in_sum2` (seeded
  /// positive sums over 64 tokens) and `T.counts` = [64], with the metadata llama-quantize requires.
  static func writeImatrix(_ path: String, _ entries: [(String, Int)], seed: UInt64 = 5) throws {
    var w = GGUFWriter()
    try w.add("general.type", .string("imatrix"))
    try w.add("imatrix.datasets", .array(.string, [.string("calibration.txt")]))
    try w.add("imatrix.chunk_count", .uint32(4))
    try w.add("imatrix.chunk_size", .uint32(16))
    for (n, (name, columns)) in entries.enumerated() {
      let sums = randomFloats(columns, seed: seed + UInt64(n)).map { $0 * $0 * 64 + 0.5 }
      try w.addTensor(name + ".in_sum2", Tensor(shape: [columns], storage: sums))
      try w.addTensor(name + ".counts", Tensor(shape: [1], storage: [64]))
    }
    try w.write(to: path)
  }

  /// `GGMLEncode.weighted` (or, without `importance`, `GGMLEncode.reference`) row by row of `values`.
  static func encoded(_ type: GGMLType, _ values: [Float], rowLength: Int, importance: [Float]?) -> [UInt8] {
    let rows = values.count / rowLength, rowBytes = type.rowSizeInBytes(rowLength)!
    var out = [UInt8](repeating: 0, count: rows * rowBytes)
    values.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBytes { o in
        for r in 0..<rows {
          let row = UnsafeBufferPointer(rebasing: x[r * rowLength..<(r + 1) * rowLength])
          let dst = UnsafeMutableRawBufferPointer(rebasing: o[r * rowBytes..<(r + 1) * rowBytes])
          if let importance {
            importance.withUnsafeBufferPointer { GGMLEncode.weighted(type, row, importance: $0, into: dst) }
          } else {
            GGMLEncode.reference(type, row, into: dst)
          }
        }
      }
    }
    return out
  }

  @Test func plannedTensorsAreWeighedByTheirEntries() throws {
    let folder = temporaryFolder("quantize-imatrix")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try GGUFQuantizeTests.quantizedSource(folder)
    let source = try GGUFFile(path: model)
    try GGUFQuantizeTests.writePlan(folder + "/plan.json", GGUFQuantizeTests.mixedPlan, sha: nil)
    // An entry for every matrix but blk.1.ffn_gate.weight; token_embd's of the wrong size (ignored, as llama.cpp
    // ignores it); one for a tensor the model lacks (counted, unused).
    let matrices = source.tensors.filter { LlamaFileType.isQuantizable($0) && $0.name.hasPrefix("blk.") }
    var entries = matrices.filter { $0.name != "blk.1.ffn_gate.weight" }.map { ($0.name, $0.rowLength) }
    entries += [("token_embd.weight", 32), ("blk.9.attn_q.weight", 256)]
    try Self.writeImatrix(folder + "/imatrix.gguf", entries)
    let matrix = try ImportanceMatrix(path: folder + "/imatrix.gguf")

    let summary = try GGUFQuantize.run(
      model: model, plan: folder + "/plan.json", output: folder + "/out.gguf", importanceMatrix: folder + "/imatrix.gguf")
    let out = try GGUFFile(path: folder + "/out.gguf")
    var weighed: [String] = []
    for layer in GGUFQuantizeTests.mixedPlan.keys.sorted() {
      let name = NameMapping.ggufName(forHF: layer + ".weight")!
      let s = source.info(named: name)!, o = out.info(named: name)!
      let bytes = try out.rawData(named: name)
      guard o.type != s.type else {
        #expect(bytes == (try source.rawData(named: name)), "\(name) copied")
        continue
      }
      let values = try GGMLDequantize.reference(s.type, try source.rawData(named: name), count: s.elementCount)
      guard o.type.canQuantize else { continue }  // f16: the conversion, checked by GGUFQuantizeTests
      let plain = Self.encoded(o.type, values, rowLength: s.rowLength, importance: nil)
      let weights = matrix.weights[name].flatMap { $0.count == s.rowLength ? $0 : nil }
      if let weights, GGMLRequantize.usesImportance(o.type) {
        #expect(bytes == Self.encoded(o.type, values, rowLength: s.rowLength, importance: weights), "\(name) weighed")
        #expect(bytes != plain, "\(name) differs from the unweighted encoding")
        weighed.append(layer)
      } else {
        #expect(bytes == plain, "\(name) as without the matrix")
      }
    }
    // Weighed: q_proj q4_K, k_proj q3_K, down_proj q6_K, up_proj q4_1; not gate (no entry), the embedding (size),
    // v_proj (f16), o_proj (copied).
    #expect(weighed.count == 4)
    #expect(summary.planned.filter(\.importance).map(\.layer).sorted() == weighed)
    #expect(summary.importanceEntries == entries.count && summary.importanceMatrix == folder + "/imatrix.gguf")
    // The metadata llama-quantize adds, after general.file_type.
    #expect(Array(out.metadataKeys.suffix(6)) == [
      "general.quantization_version", "general.file_type", "quantize.imatrix.file", "quantize.imatrix.dataset",
      "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count",
    ])
    #expect(out.metadata["quantize.imatrix.file"] == .string(folder + "/imatrix.gguf"))
    #expect(out.metadata["quantize.imatrix.dataset"] == .string("calibration.txt"))
    #expect(out.metadata["quantize.imatrix.entries_count"] == .uint32(UInt32(entries.count)))
    #expect(out.metadata["quantize.imatrix.chunks_count"] == .uint32(4))
  }

  /// A plan whose layers `measure --quantizer imatrix` chose (`"quantizer": "imatrix"`) needs the importance
  /// matrix, and one that covers them: without either, one line and no file; with it, those layers are weighed and
  /// the summary says so. q8_0 (no importance path) needs none.
  @Test func imatrixLayersOfThePlanNeedTheMatrix() throws {
    let folder = temporaryFolder("quantize-imatrix-plan")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try GGUFQuantizeTests.quantizedSource(folder)
    let plan = folder + "/plan.json"
    let layers: [String: (String, String)] = [
      "model.layers.0.self_attn.q_proj": ("q4_k", "imatrix"), "model.layers.0.mlp.up_proj": ("q8_0", "imatrix"),
      "model.layers.1.mlp.up_proj": ("q4_0", "rtn"),
    ]
    var entries: [String: Any] = [:]
    for (name, (format, quantizer)) in layers {
      entries[name] = ["format": format, "bytes": 0, "predicted_loss_delta": 0.0, "quantizer": quantizer]
    }
    let doc: [String: Any] = [
      "format_version": 1, "model": NSNull(), "model_sha256": NSNull(), "budget_bytes": 0, "total_bytes": 0,
      "bits_per_weight": 0, "solver": "exact", "score": "fisher_diag", "predicted_loss_delta": 0, "layers": entries,
    ]
    try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: plan))
    let source = try GGUFFile(path: model)
    let names = ["blk.0.attn_q.weight", "blk.1.ffn_up.weight"]
    func run(_ matrix: String?) -> Result<QuantizeSummary, any Error> {
      Result { try GGUFQuantize.run(model: model, plan: plan, output: folder + "/out.gguf", importanceMatrix: matrix) }
    }
    let without = run(nil)
    #expect("\(without)".contains("model.layers.0.self_attn.q_proj is quantized by imatrix: give --imatrix FILE"), "\(without)")
    try Self.writeImatrix(folder + "/other.gguf", [(names[1], source.info(named: names[1])!.rowLength)])
    let uncovered = run(folder + "/other.gguf")
    #expect("\(uncovered)".contains("no entry for blk.0.attn_q.weight"), "\(uncovered)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/out.gguf"))
    try Self.writeImatrix(folder + "/imatrix.gguf", names.map { ($0, source.info(named: $0)!.rowLength) })
    let summary = try run(folder + "/imatrix.gguf").get()
    let byLayer = Dictionary(uniqueKeysWithValues: summary.planned.map { ($0.layer, $0) })
    #expect(byLayer["model.layers.0.self_attn.q_proj"]?.quantizer == "imatrix" && byLayer["model.layers.0.self_attn.q_proj"]?.importance == true)
    #expect(byLayer["model.layers.0.mlp.up_proj"]?.quantizer == "rtn", "q8_0 takes no weights")
    #expect(byLayer["model.layers.1.mlp.up_proj"]?.quantizer == "rtn" && byLayer["model.layers.1.mlp.up_proj"]?.importance == true,
      "an rtn layer with an entry is weighed too, as llama-quantize --imatrix weighs it")
  }

  /// An entry whose size is not the tensor's row length: one line naming the tensor, and no output file; the
  /// importance matrix is an input `-o` may not name.
  @Test func refusals() throws {
    let folder = temporaryFolder("quantize-imatrix-refuse")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = try GGUFQuantizeTests.quantizedSource(folder)
    try GGUFQuantizeTests.writePlan(folder + "/plan.json", ["model.layers.0.self_attn.q_proj": "q4_k"], sha: nil)
    try Self.writeImatrix(folder + "/imatrix.gguf", [("blk.0.attn_q.weight", 128)])
    let before = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    func refusal(output: String) -> Error? {
      do {
        _ = try GGUFQuantize.run(
          model: model, plan: folder + "/plan.json", output: output, importanceMatrix: folder + "/imatrix.gguf")
        return nil
      } catch { return error }
    }
    let size = refusal(output: folder + "/out.gguf")
    #expect((size as? ModelIOError)?.code == .sizeMismatch, "\(String(describing: size))")
    #expect("\(size!)" == "sizeMismatch: importance matrix entry 'blk.0.attn_q.weight' has 128 values, the tensor's rows "
      + "take 256 (llama-quantize refuses it too) (\(folder)/imatrix.gguf)")
    let same = refusal(output: folder + "/imatrix.gguf")
    #expect((same as? FileCheckError)?.code == .outputIsInput && "\(same!)".contains("is also the input --imatrix"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == before)
    // The planned tensor kept in its stored type is not looked up: llama-quantize copies it.
    try GGUFQuantizeTests.writePlan(folder + "/plan.json", ["model.layers.0.self_attn.q_proj": "q8_0"], sha: nil)
    #expect(refusal(output: folder + "/out.gguf") == nil)
  }
}
