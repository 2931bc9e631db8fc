import Foundation
import ModelIO
import Pipeline
import Testing
import _TestSupport

/// DESIGN.md's reference: SmolLM2-135M-Instruct, dequantized to F32, on [BOS] + the first 511 tokens of the first
/// 20,000 characters of Pride and Prejudice: mean NLL 2.7922492 (PPL 16.318), by PyTorch/transformers.
@Suite struct PerplexityTests {
  /// The issue's tolerance on the mean NLL: Float32 forward vs PyTorch's float32 differ by reassociation only.
  static let nllTolerance = 0.002

  @Test func smolLM2PrideAndPrejudiceWindow() throws {
    try #require(TestModels.exists(TestModels.smolLM2Path), "\(TestModels.missing(TestModels.smolLM2Path))")
    let loaded = try LoadedModel.load(path: TestModels.smolLM2Path)
    let text = try TokenWindow.readText(TestModels.sharedData + "/prideprejudice.txt")
    let window = try TokenWindow.make(text: text, tokenizer: loaded.tokenizer, count: 512)
    let reference = try String(contentsOfFile: TestModels.sharedData + "/pp-window-ids.txt", encoding: .utf8)
      .split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { Int($0) }
    #expect(window == reference)
    let nll = try loaded.model.meanNLL(tokens: window)
    #expect(abs(nll - 2.7922492) <= Self.nllTolerance, "mean NLL \(nll)")
    #expect(abs(exp(nll) - 16.318) <= 0.03)
  }

  @Test func tinyModelsFromBothFormatsAgree() throws {
    let root = TestModels.repositoryRoot + "/fixtures"
    let a = try LoadedModel.load(path: root + "/tiny-llama"), b = try LoadedModel.load(path: root + "/tiny-llama.gguf")
    let text = "It is a truth universally acknowledged, that a single man in possession of a good fortune."
    let window = try TokenWindow.make(text: text, tokenizer: a.tokenizer, count: 48)
    #expect(window.first == 256 && window.count == 48)
    #expect(try a.model.meanNLL(tokens: window) == b.model.meanNLL(tokens: window))
  }

  @Test func tooShortATextIsATypedError() throws {
    let a = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    #expect(throws: WindowError.self) { try TokenWindow.make(text: "short", tokenizer: a.tokenizer, count: 64) }
  }
}
