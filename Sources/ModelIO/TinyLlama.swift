#if canImport(TensorCore)
  import TensorCore
#endif

/// Small, seeded llama models for tests and fixtures: the same tensor names, shapes and metadata as a real
/// checkpoint, so every reader, the engine and the CLI can be exercised in milliseconds.
///
/// The vocabulary is byte-level: the 256 GPT-2 byte symbols, then `<|bos|>` and `<|eos|>`, and no merges, so any
/// UTF-8 text tokenizes (one token per byte).
public enum TinyLlama {
  /// The default tiny shape: 2 layers, hidden 64, 4 heads / 2 kv heads of 16, ffn 128, vocab 258, tied embeddings.
  public static func configuration(
    layers: Int = 2, hidden: Int = 64, heads: Int = 4, kvHeads: Int = 2, intermediate: Int = 128,
    tied: Bool = true
  ) -> LlamaConfig {
    LlamaConfig(
      hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers, headCount: heads, kvHeadCount: kvHeads,
      headDim: hidden / heads, vocabSize: 258, rmsNormEpsilon: 1e-5, ropeTheta: 10_000, tieWordEmbeddings: tied,
      maxPositionEmbeddings: 512, bosTokenId: 256, eosTokenId: 257)
  }

  /// The number of weights `tensors(config:seed:)` makes for `config`, saturating at `Int.max`.
  public static func parameterCount(_ c: LlamaConfig) -> Int {
    let (d, f) = (Double(c.hiddenSize), Double(c.intermediateSize))
    let (q, kv) = (Double(c.headCount) * Double(c.headDim), Double(c.kvHeadCount) * Double(c.headDim))
    let perBlock = 2 * d + d * q * 2 + d * kv * 2 + 3 * d * f
    let total = Double(c.vocabSize) * d * (c.tieWordEmbeddings ? 1 : 2) + Double(c.layerCount) * perBlock + d
    return total < 9e18 ? Int(total) : Int.max
  }

  /// One named tensor in HF order (`[out, in]` for linear weights; q/k rows in HF rotate-half order).
  public struct NamedTensor: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
  }

  /// Seeded weights for `config`, HF names, in checkpoint order.
  ///
  /// Linear weights are uniform in ±√(3/in) · 0.5 (variance 1/(4·in), so activations neither vanish nor explode
  /// through a few layers); norm weights are 1 ± 0.1; embeddings are uniform in ±0.5.
  public static func tensors(config c: LlamaConfig, seed: UInt64) -> [NamedTensor] {
    var rng = SplitMix64(seed: seed)
    func uniform(_ n: Int, _ scale: Float, around center: Float = 0) -> [Float] {
      (0..<n).map { _ in center + scale * (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) }
    }
    func linear(_ name: String, out: Int, in inn: Int) -> NamedTensor {
      NamedTensor(name: name, shape: [out, inn], values: uniform(out * inn, 0.5 * (3 / Float(inn)).squareRoot()))
    }
    let d = c.hiddenSize, qDim = c.headCount * c.headDim, kvDim = c.kvHeadCount * c.headDim
    var out = [NamedTensor(name: "model.embed_tokens.weight", shape: [c.vocabSize, d], values: uniform(c.vocabSize * d, 0.5))]
    for l in 0..<c.layerCount {
      let p = "model.layers.\(l)."
      out.append(NamedTensor(name: p + "input_layernorm.weight", shape: [d], values: uniform(d, 0.1, around: 1)))
      out.append(linear(p + "self_attn.q_proj.weight", out: qDim, in: d))
      out.append(linear(p + "self_attn.k_proj.weight", out: kvDim, in: d))
      out.append(linear(p + "self_attn.v_proj.weight", out: kvDim, in: d))
      out.append(linear(p + "self_attn.o_proj.weight", out: d, in: qDim))
      out.append(NamedTensor(name: p + "post_attention_layernorm.weight", shape: [d], values: uniform(d, 0.1, around: 1)))
      out.append(linear(p + "mlp.gate_proj.weight", out: c.intermediateSize, in: d))
      out.append(linear(p + "mlp.up_proj.weight", out: c.intermediateSize, in: d))
      out.append(linear(p + "mlp.down_proj.weight", out: d, in: c.intermediateSize))
    }
    out.append(NamedTensor(name: "model.norm.weight", shape: [d], values: uniform(d, 0.1, around: 1)))
    if !c.tieWordEmbeddings { out.append(linear("lm_head.weight", out: c.vocabSize, in: d)) }
    return out
  }

  /// The byte-level vocabulary: GPT-2's 256 byte symbols in byte order, then `<|bos|>`, `<|eos|>`.
  public static func vocabulary() -> [String] {
    ByteLevel.scalarForByte.map { String(Character($0)) } + ["<|bos|>", "<|eos|>"]
  }
}
