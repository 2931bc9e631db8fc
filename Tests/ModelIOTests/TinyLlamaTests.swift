import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import ModelIO

/// The tiny models under fixtures/ are what `TinyLlama` writes (`bitplan tiny-model fixtures`), and the HF folder
/// and the GGUF file hold the same model.
@Suite struct TinyLlamaTests {
  static let fixtures = TestModels.repositoryRoot + "/fixtures"

  @Test func committedFixturesAreWhatTheGeneratorWrites() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = TinyLlama.configuration()
    try TinyLlama.writeHFFolder(dir + "/tiny-llama", config: config, seed: 1)
    try TinyLlama.writeGGUF(dir + "/tiny-llama.gguf", config: config, seed: 1)
    for file in ["tiny-llama/config.json", "tiny-llama/model.safetensors", "tiny-llama/tokenizer.json", "tiny-llama.gguf"] {
      let fresh = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
      let committed = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/" + file))
      #expect(fresh == committed, "\(file) differs: regenerate with `bitplan tiny-model fixtures`")
    }
  }

  @Test func folderAndGGUFHoldTheSameModel() throws {
    let hf = try ModelFile(path: Self.fixtures + "/tiny-llama")
    let gguf = try ModelFile(path: Self.fixtures + "/tiny-llama.gguf")
    let config = try hf.llamaConfig()
    #expect(config == TinyLlama.configuration())
    #expect(try gguf.llamaConfig() == config)
    #expect(hf.tensorInfos.count == 20 && gguf.tensorInfos.count == 20)
    #expect(Set(hf.tensorInfos.map(\.name)) == Set(gguf.tensorInfos.map(\.name)))
    let generated = Dictionary(uniqueKeysWithValues: TinyLlama.tensors(config: config, seed: 1).map { ($0.name, $0) })
    for info in hf.tensorInfos {
      let a = try hf.tensor(named: info.name), b = try gguf.tensor(named: info.name)
      // F32 both ways, and the GGUF q/k permutation is undone exactly: bit-identical.
      #expect(a == b, "\(info.name)")
      #expect(a.storage == generated[info.name]!.values, "\(info.name)")
    }
  }

  @Test func bothTokenizersAgreeAndRoundTrip() throws {
    let a = try ModelFile(path: Self.fixtures + "/tiny-llama").tokenizer()
    let b = try ModelFile(path: Self.fixtures + "/tiny-llama.gguf").tokenizer()
    let text = "It is a truth universally acknowledged — 42 times, naïvely.\n"
    let ids = a.encode(text)
    #expect(ids == b.encode(text))
    #expect(ids.count == text.utf8.count)  // no merges: one token per byte
    #expect(try a.decode(ids) == text)
    #expect(b.bosTokenId == 256 && b.eosTokenId == 257)
  }
}
