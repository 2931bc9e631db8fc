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

  /// `readValuesDroppingPages(ofTensor:into:)` (what a streamed model's reader calls, decoding into the buffer the
  /// engine keeps) gives `tensor(named:)`'s values bit for bit: every tensor of a GGUF (q/k rows un-permuted through
  /// the fallback), an HF folder, a bare safetensors file and, when present, SmolLM2's Q4_1/Q6_K/F32 GGUF; a buffer
  /// of another size is a typed error.
  @Test func valuesReadInPlaceEqualTheTensors() throws {
    let folder = temporaryFolder("read-into")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try TinyLlama.writeGGUF(folder + "/tiny.gguf", config: TinyLlama.configuration(), seed: 5)
    var paths = [folder + "/tiny.gguf", Self.fixtures + "/tiny-llama", Self.fixtures + "/tiny-llama/model.safetensors"]
    if FileManager.default.fileExists(atPath: TestModels.smolLM2Path) { paths.append(TestModels.smolLM2Path) }
    for path in paths {
      let file = try ModelFile(path: path)
      for info in file.tensorInfos {
        let name = NameMapping.hfName(forGGUF: info.name) ?? info.name
        let expected = try file.tensor(named: name).storage
        var read = [Float](repeating: .nan, count: expected.count)
        try read.withUnsafeMutableBufferPointer { try file.readValuesDroppingPages(ofTensor: name, into: $0) }
        #expect(read.map(\.bitPattern) == expected.map(\.bitPattern), "\(path): \(name)")
      }
      let name = NameMapping.hfName(forGGUF: file.tensorInfos[0].name) ?? file.tensorInfos[0].name
      var short = [Float](repeating: 0, count: 3)
      #expect(throws: ModelIOError.self) {
        try short.withUnsafeMutableBufferPointer { try file.readValuesDroppingPages(ofTensor: name, into: $0) }
      }
      #expect(throws: ModelIOError.self) {
        try short.withUnsafeMutableBufferPointer { try file.readValuesDroppingPages(ofTensor: "no.such.tensor", into: $0) }
      }
    }
  }

  /// A tensor's mapped pages leave the resident set when dropped (`dropResidentPages(ofTensor:)`, what a streamed
  /// model does once it has read a weight) and read back the same values; for GGUF, an HF folder and a bare
  /// safetensors file, and a name the model lacks is ignored.
  @Test func droppedTensorPagesLeaveTheResidentSetAndReadBackTheSame() throws {
    let folder = temporaryFolder("drop-pages")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try TinyLlama.writeGGUF(folder + "/tiny.gguf", config: TinyLlama.configuration(), seed: 5)
    for path in [folder + "/tiny.gguf", Self.fixtures + "/tiny-llama", Self.fixtures + "/tiny-llama/model.safetensors"] {
      let file = try ModelFile(path: path)
      let names = file.tensorInfos.map { NameMapping.hfName(forGGUF: $0.name) ?? $0.name }
      let before = try names.map { try file.tensor(named: $0).storage }
      for name in names { file.dropResidentPages(ofTensor: name) }
      file.dropResidentPages(ofTensor: "no.such.tensor")
      #expect(try names.map { try file.tensor(named: $0).storage } == before, "\(path)")
    }
    // resident bytes of the GGUF's mapping, from /proc/self/smaps: every tensor's pages once read, then only the
    // header's (the metadata and tokenizer, read while opening) once every tensor is dropped
    guard case .gguf(let gguf) = try ModelFile(path: folder + "/tiny.gguf") else { Issue.record("not a GGUF"); return }
    let file = ModelFile.gguf(gguf)
    func resident() throws -> Int {
      let start = UInt(bitPattern: gguf.source.base)
      var inMapping = false
      // (read to its end: /proc files state a size of 0)
      let smaps = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
      for line in String(decoding: smaps, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
          let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
          inMapping = bounds.count == 2 && bounds[0] <= start && start < bounds[1]
        } else if inMapping, fields.first == "Rss:", fields.count > 1, let kb = Int(fields[1]) {
          return kb * 1024
        }
      }
      return -1
    }
    let names = file.tensorInfos.map { NameMapping.hfName(forGGUF: $0.name) ?? $0.name }
    for name in names { _ = try file.tensor(named: name) }
    let read = try resident()
    for name in names { file.dropResidentPages(ofTensor: name) }
    let dropped = try resident()
    #expect(read >= gguf.source.count - gguf.dataOffset, "\(read) bytes resident after reading every tensor")
    #expect(dropped >= 0 && dropped <= gguf.dataOffset + 4096, "\(dropped) bytes resident after dropping them")
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
