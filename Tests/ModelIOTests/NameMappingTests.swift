import ModelIO
import TensorCore
import Testing
import _TestSupport

@Suite struct NameMappingTests {
  static let pairs: [(String, String)] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
    ("blk.12.ffn_norm.weight", "model.layers.12.post_attention_layernorm.weight"),
    ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
    ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
    ("blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight"),
    ("blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"),
    ("blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"),
    ("blk.7.ffn_gate.weight", "model.layers.7.mlp.gate_proj.weight"),
    ("blk.7.ffn_up.weight", "model.layers.7.mlp.up_proj.weight"),
    ("blk.7.ffn_down.weight", "model.layers.7.mlp.down_proj.weight"),
  ]

  @Test func bothDirections() {
    for (gguf, hf) in Self.pairs {
      #expect(NameMapping.hfName(forGGUF: gguf) == hf)
      #expect(NameMapping.ggufName(forHF: hf) == gguf)
    }
  }

  @Test func unknownNamesAreNil() {
    for name in ["rope_freqs.weight", "blk.0.attn_q", "blk.x.attn_q.weight", "blk.-1.attn_q.weight",
                 "blk.01.attn_q.weight", "blk.0.attn_qq.weight", "token_embd.scale", ""] {
      #expect(NameMapping.hfName(forGGUF: name) == nil, "\(name)")
    }
    for name in ["model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.a.mlp.up_proj.weight", "lm_head"] {
      #expect(NameMapping.ggufName(forHF: name) == nil, "\(name)")
    }
  }

  /// One head, half = 2: GGUF rows (r0, r1, r2, r3) are HF rows (0, 2, 1, 3), i.e. HF = (g0, g2, g1, g3).
  @Test func unpermuteByHand() throws {
    let gguf = Tensor(shape: [4, 2], storage: [0, 0, 1, 1, 2, 2, 3, 3])
    let hf = try NameMapping.unpermuteRoPE(gguf, heads: 1)
    #expect(hf.storage == [0, 0, 2, 2, 1, 1, 3, 3])
  }

  /// permute ∘ unpermute = identity, for matrices and bias vectors, several head counts (seeded data).
  @Test(arguments: [(1, 8, 3), (4, 64, 5), (9, 576, 1), (3, 192, 7)])
  func permutationsAreInverse(heads: Int, rows: Int, columns: Int) throws {
    let shape = columns == 1 ? [rows] : [rows, columns]
    let t = Tensor(shape: shape, storage: randomFloats(rows * columns, seed: UInt64(rows + heads)))
    let there = try NameMapping.permuteRoPE(t, heads: heads)
    #expect(try NameMapping.unpermuteRoPE(there, heads: heads) == t)
    #expect(try NameMapping.permuteRoPE(NameMapping.unpermuteRoPE(t, heads: heads), heads: heads) == t)
    if rows / heads > 2 { #expect(there != t) }
  }

  @Test func badHeadCountIsBadShape() {
    for heads in [0, 5, -1, 12, Int.max] {
      do {
        _ = try NameMapping.unpermuteRoPE(Tensor(zeros: [12, 2]), heads: heads)
        Issue.record("12 rows into \(heads) heads")
      } catch { #expect(error.code == .badShape) }
    }
  }

  @Test func ropeProjections() {
    #expect(NameMapping.ropeProjection(hfName: "model.layers.0.self_attn.q_proj.weight") == .query)
    #expect(NameMapping.ropeProjection(hfName: "model.layers.0.self_attn.k_proj.bias") == .key)
    #expect(NameMapping.ropeProjection(hfName: "model.layers.0.self_attn.v_proj.weight") == nil)
  }
}
