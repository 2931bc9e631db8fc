import GGML
import ModelIO
import TensorCore
import Testing
import _TestSupport

/// The llama view of a GGUF file on a tiny model built in memory: HF tensors are permuted and renamed the way
/// convert_hf_to_gguf.py does, written with GGUFWriter, and must come back unchanged through `hfTensor`.
@Suite struct GGUFLlamaTests {
  /// 2 layers, d 16, 4 heads / 2 KV heads (head dim 4), ffn 12, vocab 6, untied.
  static func hfTensors() -> [(String, Tensor)] {
    var out: [(String, Tensor)] = []
    var seed: UInt64 = 100
    func add(_ name: String, _ shape: [Int]) {
      seed += 1
      out.append((name, Tensor(shape: shape, storage: randomFloats(shape.reduce(1, *), seed: seed))))
    }
    add("model.embed_tokens.weight", [6, 16])
    for l in 0..<2 {
      add("model.layers.\(l).input_layernorm.weight", [16])
      add("model.layers.\(l).self_attn.q_proj.weight", [16, 16])
      add("model.layers.\(l).self_attn.k_proj.weight", [8, 16])
      add("model.layers.\(l).self_attn.v_proj.weight", [8, 16])
      add("model.layers.\(l).self_attn.o_proj.weight", [16, 16])
      add("model.layers.\(l).post_attention_layernorm.weight", [16])
      add("model.layers.\(l).mlp.gate_proj.weight", [12, 16])
      add("model.layers.\(l).mlp.up_proj.weight", [12, 16])
      add("model.layers.\(l).mlp.down_proj.weight", [16, 12])
    }
    add("model.norm.weight", [16])
    add("lm_head.weight", [6, 16])
    return out
  }

  static func tinyLlama(extra: [(String, GGUFValue)] = [], drop: Set<String> = []) throws(ModelIOError) -> GGUFFile {
    var w = GGUFWriter()
    let metadata: [(String, GGUFValue)] = [
      ("general.architecture", .string("llama")), ("llama.block_count", .uint32(2)),
      ("llama.embedding_length", .uint32(16)), ("llama.feed_forward_length", .uint32(12)),
      ("llama.attention.head_count", .uint32(4)), ("llama.attention.head_count_kv", .uint32(2)),
      ("llama.attention.layer_norm_rms_epsilon", .float32(1e-6)), ("llama.context_length", .uint32(64)),
      ("tokenizer.ggml.tokens", .array(.string, (0..<6).map { .string("t\($0)") })),
      ("tokenizer.ggml.bos_token_id", .uint32(1)), ("tokenizer.ggml.eos_token_id", .uint32(2)),
    ]
    for (k, v) in metadata.filter({ !drop.contains($0.0) }) + extra { try w.add(k, v) }
    for (name, t) in hfTensors() {
      var stored = t
      if name.hasSuffix("q_proj.weight") { stored = try NameMapping.permuteRoPE(t, heads: 4) }
      if name.hasSuffix("k_proj.weight") { stored = try NameMapping.permuteRoPE(t, heads: 2) }
      try w.addTensor(NameMapping.ggufName(forHF: name) ?? name, stored)
    }
    return try GGUFFile(bytes: w.serialized())
  }

  @Test func configFromMetadataWithDefaults() throws {
    let config = try Self.tinyLlama().llamaConfig()
    #expect(
      config
        == LlamaConfig(
          hiddenSize: 16, intermediateSize: 12, layerCount: 2, headCount: 4, kvHeadCount: 2, headDim: 4, vocabSize: 6,
          rmsNormEpsilon: 1e-6, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 64, bosTokenId: 1,
          eosTokenId: 2))
    let explicit = try Self.tinyLlama(extra: [
      ("llama.rope.freq_base", .float32(500_000)), ("llama.vocab_size", .uint32(7)),
      ("llama.attention.key_length", .uint32(8)),
    ]).llamaConfig()
    #expect(explicit.ropeTheta == 500_000)
    #expect(explicit.vocabSize == 7)
    #expect(explicit.headDim == 8)
  }

  @Test func hfTensorsRoundTrip() throws {
    let file = try Self.tinyLlama()
    let all = try file.llamaTensors()
    #expect(all.count == Self.hfTensors().count)
    for (name, t) in Self.hfTensors() {
      #expect(try file.hfTensor(named: name) == t, "\(name)")
      #expect(all[name] == t, "\(name)")
    }
    #expect(try file.tensor(named: "blk.0.attn_q.weight") != Self.hfTensors()[2].1, "stored rows are permuted")
    #expect(file.tensorInfos.map(\.name) == Self.hfTensors().map(\.0))
  }

  @Test func configErrors() throws {
    let cases: [(Set<String>, [(String, GGUFValue)], ModelIOError.Code)] = [
      (["llama.block_count"], [], .badConfig),
      (["llama.attention.layer_norm_rms_epsilon"], [], .badConfig),
      (["general.architecture"], [("general.architecture", .string("gemma3"))], .unsupported),
      (["llama.embedding_length"], [("llama.embedding_length", .string("8"))], .badHeader),
      (["llama.attention.head_count_kv"], [("llama.attention.head_count_kv", .uint32(3))], .badConfig),
      (["tokenizer.ggml.tokens"], [], .badConfig),
    ]
    for (drop, extra, code) in cases {
      do {
        _ = try Self.tinyLlama(extra: extra, drop: drop).llamaConfig()
        Issue.record("dropping \(drop) should fail with \(code)")
      } catch { #expect(error.code == code, "\(drop): \(error)") }
    }
  }

  /// `addLlamaMetadata` + `addLlamaTensors` are the inverse of `llamaConfig()` + `llamaTensors()`, for a tied
  /// and an untied model, with F32 and F16 matrices (F16: values rounded once, norms kept F32).
  @Test(arguments: [GGMLType.f32, .f16])
  func llamaWriterRoundTrip(type: GGMLType) throws {
    for tied in [false, true] {
      let config = LlamaConfig(
        hiddenSize: 16, intermediateSize: 12, layerCount: 2, headCount: 4, kvHeadCount: 2, headDim: 4, vocabSize: 6,
        rmsNormEpsilon: 1e-5, ropeTheta: 100_000, tieWordEmbeddings: tied, maxPositionEmbeddings: 128, bosTokenId: 1,
        eosTokenId: nil)
      var hf = Dictionary(uniqueKeysWithValues: Self.hfTensors())
      if tied { hf["lm_head.weight"] = nil }
      var w = GGUFWriter()
      try w.addLlamaMetadata(config)
      try w.addLlamaTensors(hf, config: config, as: type)
      let file = try GGUFFile(bytes: w.serialized())
      #expect(try file.llamaConfig() == config)
      #expect(file.tensors.first?.name == "token_embd.weight")
      #expect(file.tensors.last?.name == (tied ? "output_norm.weight" : "output.weight"))
      #expect(file.tensors.filter { $0.dimensions.count == 1 }.allSatisfy { $0.type == .f32 })
      let back = try file.llamaTensors()
      #expect(back.count == hf.count)
      for (name, t) in hf {
        let want = t.rank >= 2 && type == .f16 ? t.storage.map { Float(Float16($0)) } : t.storage
        #expect(back[name]?.storage == want, "\(name)")
        #expect(back[name]?.shape == t.shape, "\(name)")
      }
    }
  }

  @Test func llamaWriterRejectsUnknownNames() throws {
    var w = GGUFWriter()
    let config = try Self.tinyLlama().llamaConfig()
    do {
      try w.addLlamaTensors(["model.layers.0.self_attn.rotary_emb.inv_freq": Tensor(zeros: [2])], config: config)
      Issue.record("expected .unsupported")
    } catch { #expect(error.code == .unsupported) }
  }
}
