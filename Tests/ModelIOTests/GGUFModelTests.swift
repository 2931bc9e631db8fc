import ModelIO
import TensorCore
import Testing

/// The real files: SmolLM2-135M-Instruct Q4_1 (required; `make test` fetches it) and Gemma 3 270M Q4_K_M
/// (skipped when absent). Golden digests come from gguf-py (scripts/gguf_golden.py).
@Suite struct GGUFModelTests {
  /// DESIGN.md's reference facts: 272 tensors, 134,515,008 parameters, 30 blocks, d 576, ffn 1536, 9/3 heads,
  /// head dim 64, rope base 100000, rms eps 1e-5, vocab 49152, tied embeddings.
  @Test func smolLM2Header() throws {
    guard let file = try GGUFFixtures.smolLM2() else { return }
    #expect(file.version == 3)
    #expect(file.tensors.count == 272)
    #expect(file.parameterCount == 134_515_008)
    let config = try file.llamaConfig()
    #expect(
      config
        == LlamaConfig(
          hiddenSize: 576, intermediateSize: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, headDim: 64,
          vocabSize: 49152, rmsNormEpsilon: 1e-5, ropeTheta: 100_000, tieWordEmbeddings: true,
          maxPositionEmbeddings: 8192, bosTokenId: 1, eosTokenId: 2))
    #expect(try file.stringArray("tokenizer.ggml.tokens")?.count == 49152)
    #expect(try file.stringArray("tokenizer.ggml.merges")?.count == 48900)
    #expect(try file.intArray("tokenizer.ggml.token_type")?.count == 49152)
  }

  /// `tensorInfos`: HF names, PyTorch shapes, ggml spellings, stored bytes; 210 Q4_1 + 61 F32 + 1 Q8_0.
  @Test func smolLM2TensorInfos() throws {
    guard let file = try GGUFFixtures.smolLM2() else { return }
    let infos = file.tensorInfos
    #expect(infos.count == 272)
    #expect(infos.reduce(0) { $0 + $1.parameterCount } == 134_515_008)
    var byType: [String: Int] = [:]
    for i in infos { byType[i.dtype, default: 0] += 1 }
    #expect(byType == ["Q4_1": 210, "F32": 61, "Q8_0": 1])
    let embed = try #require(infos.first { $0.name == "model.embed_tokens.weight" })
    #expect(embed.fileName == "token_embd.weight")
    #expect(embed.shape == [49152, 576])
    #expect(embed.sizeInBytes == 49152 * 18 * 34)
    let down = try #require(infos.first { $0.name == "model.layers.0.mlp.down_proj.weight" })
    #expect(down.shape == [576, 1536])
    #expect(down.dtype == "Q4_1")
    #expect(infos.allSatisfy { NameMapping.hfName(forGGUF: $0.fileName) == $0.name }, "every tensor is mapped")
    #expect(!infos.contains { $0.name == "lm_head.weight" })
  }

  /// Dequantized tensors (Q8_0 embedding, Q4_1 projections, F32 norms) equal gguf-py's bit for bit (sha256 of all
  /// values, plus the first 64 values for a readable diff); `hfTensor` un-permutes q/k rows as the script does.
  @Test func smolLM2MatchesGGUFPy() throws {
    guard let file = try GGUFFixtures.smolLM2() else { return }
    let golden = try GGUFGolden("golden/smollm2.txt")
    #expect(golden.fields["tensors"] == "272")
    #expect(golden.tensors.count >= 6)
    for entry in golden.tensors {
      let t = entry.tag == "tensor" ? try file.tensor(named: entry.name) : try file.hfTensor(named: entry.name)
      try Self.expect(t, equals: entry)
    }
    let q = try file.hfTensor(named: "model.layers.0.self_attn.q_proj.weight")
    #expect(q != (try file.tensor(named: "blk.0.attn_q.weight")), "q rows are permuted in the file")
    do {
      _ = try file.hfTensor(named: "lm_head.weight")
      Issue.record("SmolLM2 ties its embeddings: no lm_head.weight")
    } catch { #expect(error.code == .missingTensor) }
  }

  static let gemmaPath = GGUFFixtures.gemmaPath

  /// Gemma 3 270M: header parses (262,144 tokens, 236 tensors, 268,098,176 parameters); one tensor of each type
  /// (F32, Q5_0, Q4_K, Q6_K, Q8_0) equals gguf-py bit for bit; it is not llama, so `llamaConfig` refuses it.
  @Test(.enabled(if: gemmaPath != nil, "Gemma 3 GGUF not found (set BITPLAN_GEMMA or run make test)"))
  func gemma3MatchesGGUFPy() throws {
    let file = try GGUFFile(path: try #require(Self.gemmaPath))
    #expect(try file.architecture() == "gemma3")
    #expect(file.tensors.count == 236)
    #expect(file.parameterCount == 268_098_176)
    #expect(try file.int("gemma3.block_count") == 18)
    #expect(try file.stringArray("tokenizer.ggml.tokens")?.count == 262_144)
    #expect(try file.floatArray("tokenizer.ggml.scores")?.count == 262_144)
    let golden = try GGUFGolden("golden/gemma3.txt")
    #expect(golden.fields["parameters"] == "268098176")
    #expect(Set(golden.tensors.map(\.type)) == ["F32", "Q5_0", "Q4_K", "Q6_K", "Q8_0"])
    for entry in golden.tensors { try Self.expect(try file.tensor(named: entry.name), equals: entry) }
    do {
      _ = try file.llamaConfig()
      Issue.record("gemma3 is not llama")
    } catch { #expect(error.code == .unsupported) }
  }

  static func expect(_ t: Tensor, equals entry: GGUFGolden.TensorEntry, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(t.shape == entry.shape, "\(entry.name)", sourceLocation: sourceLocation)
    #expect(Array(t.storage.prefix(64).map(\.bitPattern)) == entry.first, "\(entry.name)", sourceLocation: sourceLocation)
    #expect(GGUFTestSHA256.hex(of: t.storage) == entry.sha256, "\(entry.name)", sourceLocation: sourceLocation)
  }
}
