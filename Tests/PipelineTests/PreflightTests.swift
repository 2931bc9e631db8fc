import Foundation
import ModelIO
import Pipeline
import TensorCore
import Testing
import _TestSupport

/// Numbers from the command line are range-checked against the model before they size anything: tokens against
/// the context length, the whole run against the machine's memory.
@Suite struct PreflightTests {
  static let tiny = TestModels.repositoryRoot + "/fixtures/tiny-llama"

  private func code(_ body: () throws -> Void) -> ResourceError.Code? {
    do { try body() } catch let error as ResourceError { return error.code } catch { return nil }
    return nil
  }

  @Test func tokensMustFitTheContext() throws {
    let config = TinyLlama.configuration()  // 512 positions
    #expect(code { try Preflight.checkTokens(512, config: config, option: "--tokens") } == nil)
    #expect(code { try Preflight.checkTokens(513, config: config, option: "--tokens") } == .tooManyTokens)
    #expect(code { try Preflight.checkTokens(Int.max, config: config, option: "--tokens") } == .tooManyTokens)
    for path in [Self.tiny, Self.tiny + ".gguf"] {
      #expect(code { try Preflight.check(model: path, tokens: 600, workload: .perplexity) } == .tooManyTokens)
      #expect(code { try Preflight.check(model: path, tokens: 512, workload: .sensitivity(hvpTokens: 128)) } == nil)
    }
    let error = try #require(throws: ResourceError.self) {
      try Preflight.checkTokens(600, config: config, option: "--tokens")
    }
    #expect(error.message == "--tokens 600 exceeds the model's context length of 512 positions; use at most 512")
  }

  /// A command of several stages (`run`) checks every window before the first stage, naming the option that set it.
  @Test func everyWindowIsCheckedNamingItsOption() throws {
    for path in [Self.tiny, Self.tiny + ".gguf"] {
      let config = try Preflight.checkTokens(model: path, [("--tokens", 512), ("--eval-tokens", 64)])
      #expect(config.maxPositionEmbeddings == 512)
      let error = try #require(throws: ResourceError.self) {
        try Preflight.checkTokens(model: path, [("--tokens", 64), ("--eval-tokens", 100_000)])
      }
      #expect(error.code == .tooManyTokens && error.path == path)
      #expect(error.message == "--eval-tokens 100000 exceeds the model's context length of 512 positions; use at most 512")
    }
  }

  /// The estimate against what we measured on SmolLM2-135M (134.5M weights) with the forward's packed weights
  /// (AVX2 kernel, Zen 3): `bench engine` peaked at 2.47 GiB after a 512-token forward + backward, `measure --probes
  /// 4` at 4.03 GiB with the defaults and 2.37 GiB with `--no-hessian-diagonal` (3.55 and 1.96 before packing); a
  /// perplexity window of 512 needs the two weight copies and one block's activations (1.16 GiB measured).
  /// It grows with the square of the tokens (attention).
  @Test func memoryEstimateMatchesMeasuredPeaks() {
    let smol = LlamaConfig(
      hiddenSize: 576, intermediateSize: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, headDim: 64,
      vocabSize: 49152, rmsNormEpsilon: 1e-5, ropeTheta: 100_000, tieWordEmbeddings: true, maxPositionEmbeddings: 8192)
    let gib = 1_073_741_824.0
    let parameters = 134_515_008.0
    let ppl = Preflight.estimatedBytes(config: smol, parameters: parameters, tokens: 512, workload: .perplexity) / gib
    #expect(ppl > 1.0 && ppl < 1.5, "\(ppl) GiB")
    let measure = Preflight.estimatedBytes(
      config: smol, parameters: parameters, tokens: 512, workload: .sensitivity(hvpTokens: 128)) / gib
    #expect(measure > 4.03 && measure < 5.0, "\(measure) GiB")
    let streamed = Preflight.estimatedBytes(
      config: smol, parameters: parameters, tokens: 512,
      workload: .sensitivity(hvpTokens: 128, keepsHessianDiagonal: false)) / gib
    #expect(streamed > 2.37 && streamed < 2.9, "\(streamed) GiB")
    // the 1B-shape bf16 model streamed from its file (scripts/bench_scale.sh): 2.66 GiB measured at 512 tokens,
    // 128 for the HVPs, two candidates, four probes, without the diagonal (tables decoded in place)
    let llama1B = LlamaConfig(
      hiddenSize: 2048, intermediateSize: 8192, layerCount: 16, headCount: 32, kvHeadCount: 8, headDim: 64,
      vocabSize: 128_256, rmsNormEpsilon: 1e-5, ropeTheta: 500_000, tieWordEmbeddings: true, maxPositionEmbeddings: 8192)
    let block: [Int] = [4_194_304, 1_048_576, 1_048_576, 4_194_304, 16_777_216, 16_777_216, 16_777_216]  // q k v o gate up down
    var matrices: [Int] = [262_668_288]  // the tied table, 128,256 × 2048
    for _ in 0..<16 { matrices += block }
    let streamedWeights = Preflight.estimatedBytes(
      config: llama1B, parameters: 1_235_814_400, tokens: 512, workload: .sensitivity(hvpTokens: 128, keepsHessianDiagonal: false),
      streamedWeightBytes: Preflight.streamedWeightBytes(config: llama1B, matrices: matrices)) / gib
    #expect(streamedWeights > 2.66 && streamedWeights < 3.2, "\(streamedWeights) GiB")
    let huge = Preflight.estimatedBytes(
      config: smol, parameters: parameters, tokens: 100_000, workload: .sensitivity(hvpTokens: 100_000)) / gib
    #expect(huge > 10_000, "\(huge) GiB")
    let absurd = Preflight.estimatedBytes(config: smol, parameters: parameters, tokens: Int.max, workload: .perplexity)
    #expect(absurd.isFinite && absurd > 1e30)
    #expect(Preflight.availableMemoryBytes() > 0)
  }

  /// `[BOS] + count − 1` with a count near Int.max is an error, not an overflow trap.
  @Test func hugeWindowsAreErrorsNotTraps() throws {
    let tokenizer = try ModelFile(path: Self.tiny).tokenizer()
    let error = try #require(throws: WindowError.self) {
      _ = try TokenWindow.make(text: "short text", tokenizer: tokenizer, count: Int.max, source: "--text 'a.txt'")
    }
    #expect(error.description.contains("--text 'a.txt': the text gives only 11 tokens"))
  }

  @Test func aFolderAsTextIsOneLineNamingTheOption() throws {
    let error = try #require(throws: FileCheckError.self) {
      _ = try TokenWindow.readText(TestModels.repositoryRoot + "/fixtures", option: "--text")
    }
    #expect(error.code == .notAFile && error.description.hasPrefix("--text '") && error.description.hasSuffix("is a folder, not a file"))
  }
}

/// `allocate`'s input is recognised by content, never by name; negative predicted losses are raised to zero.
@Suite struct AllocationInputTests {
  static let problem = TestModels.repositoryRoot + "/fixtures/problem-small.json"

  @Test func kindIsReadFromTheContent() throws {
    let folder = temporaryFolder("kind")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try FileManager.default.copyItem(atPath: Self.problem, toPath: folder + "/problem.h5")
    #expect(try AllocationInput.kind(of: folder + "/problem.h5") == .json)
    let loaded = try AllocationInput.load(from: folder + "/problem.h5", score: nil)
    #expect(loaded.problem.layers.count == 14 && loaded.noisyTraceLayers == 0)
    var hdf5 = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
    hdf5.append(Data(count: 64))
    _ = FileManager.default.createFile(atPath: folder + "/run.json", contents: hdf5)
    #expect(try AllocationInput.kind(of: folder + "/run.json") == .hdf5)
    _ = FileManager.default.createFile(atPath: folder + "/junk.h5", contents: Data("hello".utf8))
    #expect(throws: InputError.self) { _ = try AllocationInput.kind(of: folder + "/junk.h5") }
    #expect(throws: FileCheckError.self) { _ = try AllocationInput.kind(of: folder) }
  }

  @Test func negativeLossesAreRaisedToZero() throws {
    let folder = temporaryFolder("negative")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let json = #"""
      {"format_version": 1, "layers": [{"name": "a", "params": 64, "candidates": [
        {"format": "int8", "bytes": 64, "error": -0.5}, {"format": "int4", "bytes": 32, "error": 0.25},
        {"format": "int2", "bytes": 16, "error": -2}]}]}
      """#
    try json.write(toFile: folder + "/p.json", atomically: false, encoding: .utf8)
    let loaded = try AllocationInput.load(from: folder + "/p.json", score: nil)
    #expect(loaded.negativeLossesClamped == 2)
    #expect(loaded.problem.layers[0].options.map(\.loss) == [0, 0.25, 0])
  }

  @Test func problemFileErrorsNameTheFileLineAndColumn() throws {
    let folder = temporaryFolder("lines")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try "{\"format_version\": 1,\n \"layers\": [ x ]}".write(toFile: folder + "/p.json", atomically: false, encoding: .utf8)
    let error = try #require(throws: (any Error).self) { _ = try AllocationInput.load(from: folder + "/p.json", score: nil) }
    #expect("\(error)".contains(folder + "/p.json: line 2, column 14: not valid JSON"), "\(error)")
  }
}
