import Allocation
import Foundation
import Testing

@testable import Reporting

/// The JSON export: the plan, unchanged, plus each layer's tensor in HF and GGUF spelling (ModelIO `NameMapping`,
/// the names llama.cpp's convert_hf_to_gguf.py writes for llama models).
@Suite struct PlanTensorNamesTests {
  @Test func keepsEveryKeyOfThePlanAndAddsBothSpellings() throws {
    let planData = try Data(contentsOf: URL(fileURLWithPath: ExportFixtures.committedPlanPath))
    let plan = try JSONDecoder().decode(PlanDocument.self, from: planData)
    let data = try PlanTensorNames.jsonData(plan: plan)
    // Decodes back to the same plan (the extra key is ignored), with every number as PLAN.json writes it.
    #expect(try JSONDecoder().decode(PlanDocument.self, from: data) == plan)
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let original = try #require(try JSONSerialization.jsonObject(with: planData) as? [String: Any])
    #expect(Set(object.keys) == Set(original.keys))
    let layers = try #require(object["layers"] as? [String: [String: Any]])
    let q = try #require(layers["model.layers.12.self_attn.q_proj"]?["tensors"] as? [String: Any])
    #expect(q["hf"] as? String == "model.layers.12.self_attn.q_proj.weight" && q["gguf"] as? String == "blk.12.attn_q.weight")
    let originalLayers = try #require(original["layers"] as? [String: [String: Any]])
    for (name, layer) in layers {
      // `quantizer` is written for every layer now (null for a plan made before quantizers were recorded).
      #expect(Set(layer.keys) == Set(originalLayers[name]!.keys).union(["tensors", "quantizer"]), "\(name)")
    }
  }

  @Test func namesTheEmbeddingAndTheHead() throws {
    let names = try PlanTensorNames.names(plan: ExportFixtures.plan(["model.embed_tokens": "q8_0", "lm_head": "q6_k", "model.layers.3.mlp.down_proj": "q4_k"]))
    #expect(names["model.embed_tokens"] == .init(hf: "model.embed_tokens.weight", gguf: "token_embd.weight"))
    #expect(names["lm_head"] == .init(hf: "lm_head.weight", gguf: "output.weight"))
    #expect(names["model.layers.3.mlp.down_proj"]?.gguf == "blk.3.ffn_down.weight")
    // With the model's table, a layer it lacks is refused.
    #expect(throws: ExportError.self) {
      try PlanTensorNames.names(plan: ExportFixtures.plan(["lm_head": "q6_k"]), tensors: ExportFixtures.smolTensors(blocks: 1))
    }
  }

  @Test func theCommittedIntPlanIsRefusedByEveryRuntimeButJSON() throws {
    let plan = try JSONDecoder().decode(
      PlanDocument.self, from: Data(contentsOf: URL(fileURLWithPath: ExportFixtures.committedPlanPath)))
    for format in ExportFormat.allCases {
      if format == .json {
        #expect(throws: Never.self) { try format.checkFormats(plan) }
      } else {
        #expect(throws: ExportError.self, "\(format)") { try format.checkFormats(plan) }
      }
    }
  }
}

/// `ExportFormat.render` with the model's tensor table checks what the plan alone cannot: layers the model lacks
/// and groups that do not divide a row.
@Suite struct ExportFormatTests {
  @Test func withTheModelGroupsMustDivideTheRows() throws {
    let tensors = ExportFixtures.smolTensors(blocks: 2)
    let plan = ExportFixtures.plan(["model.layers.0.self_attn.o_proj": "int4-g128"])  // 576 % 128 = 64
    for format in [ExportFormat.gptqmodel, .llmCompressor] {
      #expect(throws: Never.self) { try format.render(plan, tensors: []) }
      #expect { try format.render(plan, tensors: tensors) } throws: { ($0 as! ExportError).code == .unsupportedShape }
      let missing = ExportFixtures.plan(["model.layers.5.mlp.up_proj": "int4-g64"])
      #expect { try format.render(missing, tensors: tensors) } throws: { ($0 as! ExportError).code == .unknownLayer }
    }
    #expect(throws: Never.self) {
      try ExportFormat.gptqmodel.render(ExportFixtures.plan(["model.layers.0.mlp.down_proj": "int4-g128"]), tensors: tensors)
    }
  }
}
