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
  /// `vocab` ≥ 258: the byte-level tokens, `<|bos|>`, `<|eos|>`, then control tokens `<|extra_N|>` (a synthetic
  /// model of a real model's vocabulary size; text still tokenizes byte by byte).
  public static func configuration(
    layers: Int = 2, hidden: Int = 64, heads: Int = 4, kvHeads: Int = 2, intermediate: Int = 128,
    tied: Bool = true, vocab: Int = 258
  ) -> LlamaConfig {
    LlamaConfig(
      hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers, headCount: heads, kvHeadCount: kvHeads,
      headDim: hidden / heads, vocabSize: max(vocab, 258), rmsNormEpsilon: 1e-5, ropeTheta: 10_000, tieWordEmbeddings: tied,
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

  /// One tensor of the seeded stream: name, shape, where its values start in the stream (checkpoint order, one
  /// draw per value) and the uniform range they are drawn from (center ± scale).
  public struct TensorSpec: Sendable {
    public var name: String
    public var shape: [Int]
    /// Draws of the stream before this tensor's first value.
    public var first: Int
    var scale: Float
    var center: Float
    /// Values of the tensor.
    public var count: Int { shape.reduce(1, *) }
  }

  /// The tensors `tensors(config:seed:)` makes, in checkpoint order, without their values.
  ///
  /// Linear weights are uniform in ±√(3/in) · 0.5 (variance 1/(4·in), so activations neither vanish nor explode
  /// through a few layers); norm weights are 1 ± 0.1; embeddings are uniform in ±0.5.
  public static func tensorSpecs(config c: LlamaConfig) -> [TensorSpec] {
    var specs: [TensorSpec] = []
    var first = 0
    func add(_ name: String, _ shape: [Int], _ scale: Float, _ center: Float = 0) {
      specs.append(TensorSpec(name: name, shape: shape, first: first, scale: scale, center: center))
      first += shape.reduce(1, *)
    }
    func linear(_ name: String, out: Int, in inn: Int) { add(name, [out, inn], 0.5 * (3 / Float(inn)).squareRoot()) }
    let d = c.hiddenSize, qDim = c.headCount * c.headDim, kvDim = c.kvHeadCount * c.headDim
    add("model.embed_tokens.weight", [c.vocabSize, d], 0.5)
    for l in 0..<c.layerCount {
      let p = "model.layers.\(l)."
      add(p + "input_layernorm.weight", [d], 0.1, 1)
      linear(p + "self_attn.q_proj.weight", out: qDim, in: d)
      linear(p + "self_attn.k_proj.weight", out: kvDim, in: d)
      linear(p + "self_attn.v_proj.weight", out: kvDim, in: d)
      linear(p + "self_attn.o_proj.weight", out: d, in: qDim)
      add(p + "post_attention_layernorm.weight", [d], 0.1, 1)
      linear(p + "mlp.gate_proj.weight", out: c.intermediateSize, in: d)
      linear(p + "mlp.up_proj.weight", out: c.intermediateSize, in: d)
      linear(p + "mlp.down_proj.weight", out: d, in: c.intermediateSize)
    }
    add("model.norm.weight", [d], 0.1, 1)
    if !c.tieWordEmbeddings { linear("lm_head.weight", out: c.vocabSize, in: d) }
    return specs
  }

  /// Values `range` of a tensor (row-major positions), written to `out`: the SplitMix64 stream jumped to the
  /// tensor's first draw (its state after n draws is seed + n·γ), so any rows can be made without the others.
  public static func fill(
    _ spec: TensorSpec, seed: UInt64, values range: Range<Int>, into out: UnsafeMutableBufferPointer<Float>
  ) {
    precondition(range.lowerBound >= 0 && range.upperBound <= spec.count && out.count >= range.count, "values \(range) of \(spec.count)")
    var rng = SplitMix64(seed: seed &+ UInt64(spec.first + range.lowerBound) &* 0x9E37_79B9_7F4A_7C15)
    for i in 0..<range.count { out[i] = spec.center + spec.scale * (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) }
  }

  /// Seeded weights for `config`, HF names, in checkpoint order (`tensorSpecs`, each filled by `fill`).
  public static func tensors(config c: LlamaConfig, seed: UInt64) -> [NamedTensor] {
    tensorSpecs(config: c).map { spec in
      var values = [Float](repeating: 0, count: spec.count)
      values.withUnsafeMutableBufferPointer { fill(spec, seed: seed, values: 0..<spec.count, into: $0) }
      return NamedTensor(name: spec.name, shape: spec.shape, values: values)
    }
  }

  /// The byte-level vocabulary: GPT-2's 256 byte symbols in byte order, then `<|bos|>`, `<|eos|>`, then
  /// `<|extra_N|>` up to `count` tokens.
  public static func vocabulary(count: Int = 258) -> [String] {
    ByteLevel.scalarForByte.map { String(Character($0)) } + ["<|bos|>", "<|eos|>"] + (258..<max(count, 258)).map { "<|extra_\($0)|>" }
  }
}
