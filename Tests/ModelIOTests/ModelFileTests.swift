import Foundation
import TensorCore
import Testing
import _TestSupport

@testable import ModelIO

/// `ModelFile`: files recognised by content, a bare safetensors file listed like a GGUF, and declared counts
/// checked against the tensors present before anything is sized by them.
@Suite struct ModelFileTests {
  static let fixtures = TestModels.repositoryRoot + "/fixtures"

  private func code(_ body: () throws -> Void) -> ModelIOError.Code? {
    do { try body() } catch let error as ModelIOError { return error.code } catch { return nil }
    return nil
  }

  @Test func aBareSafetensorsFileIsListedWithUnknownArchitecture() throws {
    let folder = temporaryFolder("bare")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // By content, not by name: the same bytes under another name open the same way.
    try FileManager.default.copyItem(atPath: Self.fixtures + "/tiny-llama/model.safetensors", toPath: folder + "/weights.bin")
    for path in [Self.fixtures + "/tiny-llama/model.safetensors", folder + "/weights.bin"] {
      let file = try ModelFile(path: path)
      guard case .safetensorsFile = file else { Issue.record("\(path) opened as \(file.formatName)"); continue }
      #expect(file.architecture == nil)
      #expect(file.tensorInfos.count == 20 && file.tensorInfos.reduce(0) { $0 + $1.parameterCount } == 90_560)
      #expect(file.tensorInfos.allSatisfy { $0.dtype == "F32" && $0.sizeInBytes == 4 * $0.parameterCount })
      #expect(file.formatName.contains("no config.json"))
      #expect(code { _ = try file.llamaConfig() } == .unsupported)
      #expect(code { _ = try file.tokenizer() } == .unsupported)
    }
    _ = FileManager.default.createFile(atPath: folder + "/junk.safetensors", contents: Data("hello world".utf8))
    #expect(code { _ = try ModelFile(path: folder + "/junk.safetensors") } != nil)
    _ = FileManager.default.createFile(atPath: folder + "/junk.txt", contents: Data("hello world".utf8))
    #expect(code { _ = try ModelFile(path: folder + "/junk.txt") } == .badMagic)
  }

  /// A config claiming more or fewer blocks than the file holds is refused (both ways), at once: 10¹² blocks
  /// must not make the loader list 10¹³ tensor names.
  @Test(arguments: [1, 3, 1_000_000_000_000])
  func hfBlockCountMustMatchTheTensors(blocks: Int) throws {
    let folder = temporaryFolder("blocks")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try copyFixtureFolder(to: folder) { $0.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": \(blocks)") }
    let error = try #require(throws: ModelIOError.self) { _ = try ModelFile(path: folder).llamaConfig() }
    #expect(error.code == .badConfig)
    #expect(error.message == "the config declares \(blocks) transformer blocks, the file holds tensors for blocks 0…1")
  }

  @Test func headsAndVocabularyMustMatchTheShapes() throws {
    let folder = temporaryFolder("heads")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try copyFixtureFolder(to: folder) { $0.replacingOccurrences(of: "\"num_key_value_heads\": 2", with: "\"num_key_value_heads\": 4") }
    let heads = try #require(throws: ModelIOError.self) { _ = try ModelFile(path: folder).llamaConfig() }
    #expect(heads.code == .badConfig && heads.message.contains("k_proj") && heads.message.contains("[32, 64]"))
    try copyFixtureFolder(to: folder) { $0.replacingOccurrences(of: "\"vocab_size\": 258", with: "\"vocab_size\": 9223372036854775807") }
    #expect(code { _ = try ModelFile(path: folder).llamaConfig() } == .badConfig)
    try copyFixtureFolder(to: folder) { $0 }
    #expect(try ModelFile(path: folder).llamaConfig() == TinyLlama.configuration())
  }

  @Test(arguments: [1, 3, 1_000_000_000_000])
  func ggufBlockCountMustMatchTheTensors(blocks: Int) throws {
    let gguf = try GGUFLlamaTests.tinyLlama(
      extra: [("llama.block_count", .uint64(UInt64(blocks)))], drop: ["llama.block_count"])
    let error = try #require(throws: ModelIOError.self) { _ = try ModelFile.gguf(gguf).llamaConfig() }
    #expect(error.code == .badConfig && error.message.contains("declares \(blocks) transformer blocks"), "\(error)")
  }

  @Test func configSyntaxErrorsGiveLineAndColumn() throws {
    let folder = temporaryFolder("syntax")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try copyFixtureFolder(to: folder) { $0.replacingOccurrences(of: "\"vocab_size\": 258,", with: "\"vocab_size\": 258,,") }
    let error = try #require(throws: ModelIOError.self) { _ = try ModelFile(path: folder).llamaConfig() }
    #expect(error.code == .badConfig && error.message.contains("line 10, column 21"), "\(error)")
    #expect(error.path == folder + "/config.json")
  }

  /// The fixture folder with its config.json passed through `edit`.
  private func copyFixtureFolder(to folder: String, edit: (String) -> String) throws {
    for name in ["model.safetensors", "tokenizer.json"] where !FileManager.default.fileExists(atPath: folder + "/" + name) {
      try FileManager.default.copyItem(atPath: Self.fixtures + "/tiny-llama/" + name, toPath: folder + "/" + name)
    }
    let config = try String(contentsOfFile: Self.fixtures + "/tiny-llama/config.json", encoding: .utf8)
    try edit(config).write(toFile: folder + "/config.json", atomically: false, encoding: .utf8)
  }

}
