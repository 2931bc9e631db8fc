import Allocation
import Foundation
import GGML
import ModelIO
import Testing

@testable import Reporting

/// The recipe read the way llama.cpp reads it. Consumer: llama.cpp (llama-cpp-python 0.3.36's vendored copy)
/// `tools/quantize/quantize.cpp` `parse_tensor_type_file` (whitespace-separated tokens, no comments),
/// `parse_tensor_type` (split at the first '=', pattern lower-cased by `tolower`), `parse_ggml_type`
/// (case-insensitive `ggml_type_name`), and `src/llama-quant.cpp` `llama_tensor_get_type` (`std::regex_search`,
/// the first matching rule wins).
@Suite struct LlamaCppRecipeTests {
  /// `ggml_type_name` of every type, from ggml/src/ggml.c `type_traits[]` (the names `parse_ggml_type` accepts).
  static let ggmlTypeNames = [
    "f32", "f16", "bf16", "f64", "i8", "i16", "i32", "i64", "q1_0", "q2_0", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
    "q8_1", "q8_K", "mxfp4", "nvfp4", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs",
    "iq2_s", "iq3_xxs", "iq3_s", "iq4_nl", "iq4_xs", "tq1_0", "tq2_0",
  ]

  /// llama.cpp's parse of a recipe file: `(lower-cased pattern, type name as written)` per token.
  static func parse(_ text: String) throws -> [(pattern: String, type: String)] {
    try text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).map { token in
      let s = String(token)
      let eq = try #require(s.firstIndex(of: "="), "token '\(s)' has no '='")
      let pattern = String(s[..<eq]).lowercased()  // tolower() on ASCII, as quantize.cpp does
      try #require(!pattern.isEmpty)
      return (pattern, String(s[s.index(after: eq)...]))
    }
  }

  /// The type llama.cpp gives `tensor` under `rules` (first match wins), checking that exactly one rule matches.
  static func resolvedType(_ tensor: String, _ rules: [(pattern: String, type: String)]) -> (matches: Int, type: String?) {
    let matching = rules.filter { ExportFixtures.searches($0.pattern, tensor) }
    return (matching.count, matching.first?.type)
  }

  /// Types llama.cpp can store for a `[rows, columns]` weight, as the plan grammar spells them.
  static func storable(columns: Int) -> [String] {
    ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16"] + (columns % 256 == 0 ? ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"] : [])
  }

  @Test(arguments: [1 as UInt64, 2, 3])
  func everyQuantizableTensorGetsExactlyOneRuleWithThePlannedType(seed: UInt64) throws {
    let tensors = ExportFixtures.smolTensors(blocks: 30)
    let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
    // Plan a seeded subset of the layers (every third is left out), the embedding included.
    let names = ExportFixtures.layerNames(blocks: 30, embedding: true).enumerated().filter { $0.offset % 3 != 1 }.map(\.element)
    let formats = ExportFixtures.randomPlan(names, seed: seed) { Self.storable(columns: shapes[$0 + ".weight"]!.last!) }
    let recipe = try LlamaCppRecipe(plan: ExportFixtures.plan(formats), tensors: tensors)
    let rules = try Self.parse(recipe.text)
    #expect(!recipe.text.contains("#"), "no comment syntax in a tensor-type file")
    var quantizable = 0
    for tensor in tensors {
      let (matches, type) = Self.resolvedType(tensor.fileName, rules)
      if tensor.shape.count < 2 || tensor.fileName.hasSuffix("_norm.weight") {
        #expect(matches == 0, "\(tensor.fileName) is never quantized; no rule should name it")
        continue
      }
      quantizable += 1
      #expect(matches == 1, "\(tensor.fileName): \(matches) rules match")
      let typeName = try #require(type)
      let spelled = try #require(Self.ggmlTypeNames.first { $0.lowercased() == typeName.lowercased() })
      #expect(spelled == typeName, "written as ggml_type_name spells it")
      if let planned = formats[String(tensor.name.dropLast(".weight".count))] {
        #expect(typeName.lowercased() == planned, "\(tensor.fileName)")
      } else {
        #expect(typeName.lowercased() == tensor.dtype.lowercased(), "\(tensor.fileName) keeps its stored type")
      }
    }
    #expect(quantizable == 211, "210 linear layers and the tied embedding")
    #expect(rules.count == quantizable)
  }

  @Test func kQuantOnA576WideRowIsRefusedNamingTheLayerAndTheFallback() {
    let tensors = ExportFixtures.smolTensors(blocks: 2)
    let plan = ExportFixtures.plan(["model.layers.1.mlp.down_proj": "q4_k", "model.layers.1.self_attn.q_proj": "q4_k"])
    #expect {
      try LlamaCppRecipe(plan: plan, tensors: tensors)
    } throws: { error in
      let e = error as! ExportError
      return e.code == .unsupportedShape && e.message.contains("model.layers.1.self_attn.q_proj")
        && e.message.contains("q4_K") && e.message.contains("q5_0") && !e.message.contains("\n")
    }
    // 1536-wide rows take K-quants.
    let fine = ExportFixtures.plan(["model.layers.1.mlp.down_proj": "q6_k"])
    #expect(throws: Never.self) { try LlamaCppRecipe(plan: fine, tensors: tensors) }
  }

  @Test func formatsLlamaCppCannotStoreAreRefusedWithoutTheModel() {
    for format in ["int4-g64", "int8", "affine4-g64", "nf4-g64", "int4-g32-asym"] {
      let plan = ExportFixtures.plan(["model.layers.0.mlp.up_proj": "q8_0", "model.layers.0.mlp.down_proj": format])
      #expect(throws: ExportError.self, "\(format)") { try LlamaCppRecipe.checkFormats(plan) }
      do {
        _ = try LlamaCppRecipe.checkFormats(plan)
      } catch {
        #expect(error.code == .unsupportedFormat && error.message.hasPrefix("model.layers.0.mlp.down_proj: \(format)"))
      }
    }
  }

  @Test func committedIntPlanIsRefused() throws {
    let plan = try JSONDecoder().decode(
      PlanDocument.self, from: Data(contentsOf: URL(fileURLWithPath: ExportFixtures.committedPlanPath)))
    #expect(throws: ExportError.self) { try ExportFormat.llamaCpp.checkFormats(plan) }
  }

  @Test func unknownAndUntiedHeadLayersAreRefused() {
    let tensors = ExportFixtures.smolTensors(blocks: 2)
    for layer in ["lm_head", "model.layers.7.mlp.up_proj", "model.norm"] {
      #expect(throws: ExportError.self, "\(layer)") {
        try LlamaCppRecipe(plan: ExportFixtures.plan([layer: "q8_0"]), tensors: tensors)
      }
    }
  }

  @Test func patternsSurviveLowerCasingAndMatchOnlyTheirTensor() throws {
    let names = ["blk.0.Attn_Q.weight", "blk.0.attn q=x.weight", "blk.1.ffn_down.weight", "blk.10.ffn_down.weight", "a+b(c).weight"]
    for name in names {
      let pattern = try LlamaCppRecipe.pattern(forTensor: name)
      #expect(pattern.lowercased() == pattern, "\(pattern)")
      #expect(!pattern.contains(" ") && !pattern.contains("="), "one token: \(pattern)")
      for other in names {
        #expect(ExportFixtures.searches(pattern, other) == (other == name), "\(pattern) vs \(other)")
      }
    }
    #expect(throws: ExportError.self) { try LlamaCppRecipe.pattern(forTensor: "blk.0.wéight") }
  }

  /// TYPE is the file type `bitplan quantize` writes for the same result (`LlamaFileType.of`): the quantized type
  /// holding the most weights among all quantizable tensors, planned or kept.
  @Test func fileTypeIsAQuantizedFtypeOfTheMostWeights() throws {
    let tensors = ExportFixtures.smolTensors(blocks: 2)
    var formats: [String: String] = [:]
    for b in 0..<2 { formats["model.layers.\(b).mlp.down_proj"] = "q6_k"; formats["model.layers.\(b).mlp.up_proj"] = "q5_0" }
    formats["model.layers.0.mlp.gate_proj"] = "q5_0"
    // The kept q8_0 embedding (49152·576 weights) outweighs every planned type.
    #expect(try LlamaCppRecipe(plan: ExportFixtures.plan(formats), tensors: tensors).fileType == "Q8_0")
    formats["model.embed_tokens"] = "q5_0"
    let recipe = try LlamaCppRecipe(plan: ExportFixtures.plan(formats), tensors: tensors)
    #expect(recipe.fileType == "Q5_0")
    formats["model.embed_tokens"] = "q4_k"  // 576 columns: refused, never a file type
    #expect(throws: ExportError.self) { try LlamaCppRecipe(plan: ExportFixtures.plan(formats), tensors: tensors) }
    let floats = try LlamaCppRecipe(plan: ExportFixtures.plan(["model.layers.0.mlp.down_proj": "f16"]), tensors: tensors)
    #expect(floats.fileType == "Q8_0", "patterns are ignored unless the ftype's default type is quantized")
    let command = recipe.command(recipePath: "my recipe.txt", modelPath: "m.gguf", outputPath: "out.gguf")
    #expect(command == "llama-quantize --allow-requantize --tensor-type-file 'my recipe.txt' m.gguf out.gguf Q5_0")
  }
}
