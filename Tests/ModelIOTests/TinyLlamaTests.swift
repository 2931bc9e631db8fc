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

  /// The streaming writers (`bitplan tiny-model`, any size) write in F32 exactly the files of the in-memory ones,
  /// for a shape with an untied head, GQA and a vocabulary beyond the byte tokens; `fill` gives any rows alone.
  @Test func streamedFilesEqualTheInMemoryWriters() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = TinyLlama.configuration(layers: 3, hidden: 96, heads: 6, kvHeads: 2, intermediate: 200, tied: false, vocab: 300)
    try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
    try TinyLlama.writeHFFolder(dir + "/a/hf", config: config, seed: 9)
    try TinyLlama.writeGGUF(dir + "/a/m.gguf", config: config, seed: 9)
    try FileManager.default.createDirectory(atPath: dir + "/b", withIntermediateDirectories: true)
    try TinyLlama.streamHFFolder(dir + "/b/hf", config: config, seed: 9)
    try TinyLlama.streamGGUF(dir + "/b/m.gguf", config: config, seed: 9)
    for file in ["hf/config.json", "hf/model.safetensors", "hf/tokenizer.json", "m.gguf"] {
      let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/" + file))
      let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/" + file))
      #expect(a == b, "\(file)")
    }
    #expect(try TinyLlama.ggufBytes(config: config, seed: 9, type: .f32) == (try Data(contentsOf: URL(fileURLWithPath: dir + "/b/m.gguf"))).count)
    #expect(try ModelFile(path: dir + "/b/m.gguf").llamaConfig().vocabSize == 300)
    let specs = TinyLlama.tensorSpecs(config: config)
    let whole = TinyLlama.tensors(config: config, seed: 9)
    let down = specs.firstIndex { $0.name == "model.layers.2.mlp.down_proj.weight" }!
    var rows = [Float](repeating: 0, count: 2 * 200)
    rows.withUnsafeMutableBufferPointer { TinyLlama.fill(specs[down], seed: 9, values: 7 * 200..<9 * 200, into: $0) }
    #expect(rows == Array(whole[down].values[(7 * 200)..<(9 * 200)]))
  }

  /// F16 and BF16 models hold the F32 model's values rounded to nearest even, read back through both readers
  /// (GGUF keeps norms in F32, safetensors stores them in the matrix type), and the files are the sizes announced.
  @Test(arguments: [TinyLlama.StoredType.f16, .bf16])
  func halfPrecisionModelsHoldTheRoundedValues(type: TinyLlama.StoredType) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = TinyLlama.configuration(layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96, tied: true)
    try TinyLlama.streamHFFolder(dir + "/hf", config: config, seed: 3, type: type)
    try TinyLlama.streamGGUF(dir + "/m.gguf", config: config, seed: 3, type: type)
    let round = { (x: Float) in type == .f16 ? Half.float(fromF16: Half.f16Bits(x)) : Half.float(fromBF16: Half.bf16Bits(x)) }
    let hf = try ModelFile(path: dir + "/hf"), gguf = try ModelFile(path: dir + "/m.gguf")
    #expect(try gguf.llamaConfig() == config && (try hf.llamaConfig()) == config)
    for t in TinyLlama.tensors(config: config, seed: 3) {
      let matrix = t.shape.count == 2
      #expect(try hf.tensor(named: t.name).storage == t.values.map(round), "\(t.name) (safetensors)")
      #expect(try gguf.tensor(named: t.name).storage == (matrix ? t.values.map(round) : t.values), "\(t.name) (GGUF)")
    }
    #expect(gguf.tensorInfos.filter { $0.dtype == type.rawValue.uppercased() }.count == 1 + 2 * 7)
    let sizes = (try FileManager.default.attributesOfItem(atPath: dir + "/m.gguf")[.size] as! Int,
                 try FileManager.default.attributesOfItem(atPath: dir + "/hf/model.safetensors")[.size] as! Int)
    #expect(sizes.0 == (try TinyLlama.ggufBytes(config: config, seed: 3, type: type)))
    #expect(sizes.1 == (try TinyLlama.safetensorsBytes(config: config, type: type)))
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
