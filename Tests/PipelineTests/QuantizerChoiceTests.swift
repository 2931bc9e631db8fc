import Allocation
import Foundation
import GGML
import Quantization
import Sensitivity
import Testing
import Validation
import _TestSupport

@testable import Pipeline

/// Which quantizer each (layer, format) gets, and which layers share AWQ's scales.
@Suite struct QuantizerChoiceTests {
  @Test func choicesParse() {
    #expect(QuantizerChoice("rtn") == .method(.rtn) && QuantizerChoice("gptq") == .method(.gptq))
    #expect(QuantizerChoice("awq") == .method(.awq) && QuantizerChoice("best") == .best)
    #expect(QuantizerChoice("GPTQ") == nil && QuantizerChoice("") == nil)
    #expect(QuantizerChoice.best.methods == [.rtn, .gptq, .awq], "round to nearest first: ties keep it")
    #expect(QuantizerChoice.best.description == "best")
  }

  @Test func awqGroupsAreTheLayersReadingOneInput() {
    let names = [
      "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
      "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
      "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "lm_head",
    ]
    #expect(LayerQuantizer.awqGroup(of: names[1], in: names) == [0, 1, 2])
    #expect(LayerQuantizer.awqGroup(of: names[5], in: names) == [4, 5])
    #expect(LayerQuantizer.awqGroup(of: names[3], in: names) == nil && LayerQuantizer.awqGroup(of: names[6], in: names) == nil)
    #expect(LayerQuantizer.awqGroup(of: names[8], in: names) == [7, 8], "block 1 has no v_proj planned: q and k share")
    #expect(LayerQuantizer.awqGroup(of: "lm_head", in: names) == nil)
    // A plan of only one member of a group: it reads its input alone.
    #expect(LayerQuantizer.awqGroup(of: names[0], in: [names[0], names[3]]) == nil)
  }

  func plan(_ layers: [String: (String, String?)]) -> PlanDocument {
    let problem = AllocationProblem(
      layers: layers.keys.sorted().map { name in
        AllocationProblem.Layer(
          name: name, parameterCount: 64,
          options: [.init(format: layers[name]!.0, bytes: 10, loss: 1, quantizer: layers[name]!.1)])
      }, model: "m")
    let solved = try! problem.solve(budget: 1000)
    return PlanDocument(plan: solved, problem: problem)
  }

  @Test func validationTakesThePlansQuantizerUnlessTold() throws {
    let q4 = try QuantFormat(parsing: "int4-g32"), q8 = try QuantFormat(parsing: "int8")
    let mixed = plan(["a": ("int4-g32", "gptq"), "b": ("int8", "rtn")])
    let asPlanned = try PlanValidation.quantizerLookup(nil, plan: mixed, run: nil, runPath: nil)
    #expect(asPlanned("a", q4) == .gptq && asPlanned("b", q8) == .rtn)
    #expect(asPlanned("a", q8) == .rtn, "a baseline's format on a mixed plan: round to nearest")
    let uniform = plan(["a": ("int4-g32", "gptq"), "b": ("int8", "gptq")])
    let asUniform = try PlanValidation.quantizerLookup(nil, plan: uniform, run: nil, runPath: nil)
    #expect(asUniform("a", q8) == .gptq, "a plan all by GPTQ gets GPTQ baselines")
    let old = plan(["a": ("int4-g32", nil)])
    #expect(try PlanValidation.quantizerLookup(nil, plan: old, run: nil, runPath: nil)("a", q4) == .rtn)
    let told = try PlanValidation.quantizerLookup(.method(.awq), plan: mixed, run: nil, runPath: nil)
    #expect(told("b", q8) == .awq && told("a", q4) == .awq)
    #expect { try PlanValidation.quantizerLookup(.best, plan: mixed, run: nil, runPath: nil) } throws: {
      ($0 as? PlanValidationError)?.code == .badSettings && "\($0)".contains("--quantizer best")
    }
  }

  /// Up to one window the calibration is measure's window itself; beyond, consecutive windows of 512, each with BOS.
  @Test func calibrationWindowsCutTheTextInOrder() throws {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let path = TestModels.sharedData + "/prideprejudice.txt"
    let bos = try #require(loaded.tokenizer.bosTokenId)
    let one = try PackedQuantizer.calibrationWindows(path: path, tokenizer: loaded.tokenizer, count: 300)
    #expect(one == [try PackedQuantizer.calibrationTokens(path: path, tokenizer: loaded.tokenizer, count: 300)])
    let three = try PackedQuantizer.calibrationWindows(path: path, tokenizer: loaded.tokenizer, count: 1100)
    #expect(three.map(\.count) == [512, 512, 76] && three.allSatisfy { $0.first == bos })
    let ids = try PackedQuantizer.calibrationTokens(path: path, tokenizer: loaded.tokenizer, count: 1098).dropFirst()
    #expect(three.flatMap { $0.dropFirst() } == Array(ids), "the windows are the text's ids in order, none skipped")
  }

  @Test func ggufRefusesAWQAndBest() throws {
    let types: [String: (tensor: String, type: GGMLType)] = [
      "model.layers.0.mlp.up_proj": ("blk.0.ffn_up.weight", .q4_0), "model.layers.0.mlp.down_proj": ("blk.0.ffn_down.weight", .q8_0),
    ]
    let p = plan(["model.layers.0.mlp.up_proj": ("q4_0", "awq"), "model.layers.0.mlp.down_proj": ("q8_0", "rtn")])
    #expect { try GGUFQuantize.inputAwareLayers(p, path: "P", types: types, quantizer: nil) } throws: {
      "\($0)".contains("model.layers.0.mlp.up_proj is quantized by awq")
    }
    #expect(throws: PlanValidationError.self) { try GGUFQuantize.inputAwareLayers(p, path: "P", types: types, quantizer: .best) }
    #expect(try GGUFQuantize.inputAwareLayers(p, path: "P", types: types, quantizer: .method(.rtn)) == [])
  }
}
