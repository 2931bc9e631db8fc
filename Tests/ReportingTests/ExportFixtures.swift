import Allocation
import Foundation
import GGML
import ModelIO
import TensorCore

/// Tensor tables and plans for the exporter tests: SmolLM2-135M's layout (DESIGN.md's verification facts: d 576,
/// ffn 1536, 3 KV heads of 64, vocabulary 49152, tied embeddings), stored Q4_1 with a Q8_0 embedding like the GGUF
/// `make test` downloads, without any weights.
enum ExportFixtures {
  static let hidden = 576, ffn = 1536, kv = 192, vocab = 49152

  /// The GGUF tensor table of a SmolLM2-shaped model with `blocks` blocks, in the file's order.
  static func smolTensors(blocks: Int = 30) -> [TensorInfo] {
    func info(_ gguf: String, _ shape: [Int], _ type: GGMLType) -> TensorInfo {
      let rowBytes = type.rowSizeInBytes(shape.last!)!
      return TensorInfo(
        fileName: gguf, name: NameMapping.hfName(forGGUF: gguf) ?? gguf, shape: shape, dtype: type.name,
        sizeInBytes: rowBytes * shape.dropLast().reduce(1, *))
    }
    var out = [info("token_embd.weight", [vocab, hidden], .q8_0), info("output_norm.weight", [hidden], .f32)]
    for b in 0..<blocks {
      out += [
        info("blk.\(b).attn_norm.weight", [hidden], .f32),
        info("blk.\(b).attn_q.weight", [hidden, hidden], .q4_1),
        info("blk.\(b).attn_k.weight", [kv, hidden], .q4_1),
        info("blk.\(b).attn_v.weight", [kv, hidden], .q4_1),
        info("blk.\(b).attn_output.weight", [hidden, hidden], .q4_1),
        info("blk.\(b).ffn_norm.weight", [hidden], .f32),
        info("blk.\(b).ffn_gate.weight", [ffn, hidden], .q4_1),
        info("blk.\(b).ffn_up.weight", [ffn, hidden], .q4_1),
        info("blk.\(b).ffn_down.weight", [hidden, ffn], .q4_1),
      ]
    }
    return out
  }

  /// The plan layer names of the model's linear layers (and the embedding when `embedding`).
  static func layerNames(blocks: Int, embedding: Bool = false) -> [String] {
    var names = embedding ? ["model.embed_tokens"] : []
    for b in 0..<blocks {
      names += ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
        "mlp.up_proj", "mlp.down_proj"].map { "model.layers.\(b).\($0)" }
    }
    return names
  }

  /// A plan with the given formats (bytes and losses are placeholders the exporters do not read).
  static func plan(_ formats: [String: String], sha: String? = nil) -> PlanDocument {
    let json: [String: Any] = [
      "format_version": 1, "model": NSNull(), "model_sha256": sha as Any? ?? NSNull(), "budget_bytes": 1000,
      "total_bytes": 900, "bits_per_weight": 4.25, "solver": "exact", "score": "fisher_diag",
      "predicted_loss_delta": 0.125,
      "layers": formats.mapValues { format -> [String: Any] in
        ["format": format, "bits": NSNull(), "group_size": NSNull(), "symmetric": NSNull(), "bytes": 100,
          "predicted_loss_delta": 3.6341114497562043e-06]
      },
    ]
    let data = try! JSONSerialization.data(withJSONObject: json)
    return try! JSONDecoder().decode(PlanDocument.self, from: data)
  }

  /// `formats` chosen per layer with a seeded generator.
  static func randomPlan(_ names: [String], seed: UInt64, choices: (String) -> [String]) -> [String: String] {
    var rng = SplitMix64(seed: seed)
    var out: [String: String] = [:]
    for name in names {
      let options = choices(name)
      out[name] = options[Int(rng.next() % UInt64(options.count))]
    }
    return out
  }

  /// The committed SmolLM2 plan (int formats, made by `bitplan allocate`).
  static var committedPlanPath: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("reports/smollm2-plan.json").path
  }

  /// Whether `pattern` matches `name` from its start (Python `re.match`, PCRE `match`).
  static func matchesFromStart(_ pattern: String, _ name: String) -> Bool {
    guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
    return regex.firstMatch(in: name, options: [.anchored], range: NSRange(name.startIndex..., in: name)) != nil
  }

  /// Whether `pattern` matches anywhere in `name` (C++ `std::regex_search`).
  static func searches(_ pattern: String, _ name: String) -> Bool {
    guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
    return regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
  }
}
