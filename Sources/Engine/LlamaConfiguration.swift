/// Hyper-parameters of a llama-family decoder as the engine needs them (`LlamaModel.Configuration`).
///
/// The lead fills this from ModelIO's `LlamaConfig`; the engine does not import ModelIO.
public struct LlamaConfiguration: Sendable, Codable, Equatable {
  /// Model width d (residual stream).
  public var hidden: Int
  /// MLP width F (gate/up output, down input).
  public var intermediate: Int
  /// Number of decoder blocks.
  public var layers: Int
  /// Query heads H.
  public var heads: Int
  /// Key/value heads (GQA); query head `h` reads kv head `h / (heads / kvHeads)`.
  public var kvHeads: Int
  /// Per-head width; must be even (RoPE rotates pairs `(i, i + headDim/2)`).
  public var headDim: Int
  /// Vocabulary size V.
  public var vocab: Int
  /// RMSNorm ε.
  public var rmsEps: Double
  /// RoPE base θ: frequency of pair `i` is θ^(−2i/headDim).
  public var ropeTheta: Double
  /// The LM head reuses `model.embed_tokens.weight` (no `lm_head.weight`).
  public var tied: Bool

  public init(
    hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, vocab: Int,
    rmsEps: Double, ropeTheta: Double, tied: Bool
  ) {
    self.hidden = hidden
    self.intermediate = intermediate
    self.layers = layers
    self.heads = heads
    self.kvHeads = kvHeads
    self.headDim = headDim
    self.vocab = vocab
    self.rmsEps = rmsEps
    self.ropeTheta = ropeTheta
    self.tied = tied
  }

  /// Checks the relations the forward pass relies on.
  /// - Throws: `EngineError.badConfiguration` naming the offending fields.
  public func validate() throws(EngineError) {
    let sizes = [hidden, intermediate, layers, heads, kvHeads, headDim, vocab]
    guard sizes.allSatisfy({ $0 > 0 }) else {
      throw EngineError(.badConfiguration, "all sizes must be positive, got \(self)")
    }
    guard heads % kvHeads == 0 else {
      throw EngineError(.badConfiguration, "heads \(heads) not divisible by kvHeads \(kvHeads)")
    }
    guard headDim % 2 == 0 else { throw EngineError(.badConfiguration, "headDim \(headDim) is odd") }
    guard rmsEps > 0, ropeTheta > 0 else {
      throw EngineError(.badConfiguration, "rmsEps \(rmsEps) and ropeTheta \(ropeTheta) must be positive")
    }
  }

  /// Hugging Face tensor names and shapes `[out, in]` (or `[n]` for norms) that a model with this configuration
  /// has, in checkpoint order: embedding, then per block the two norms and seven linear weights, then the final
  /// norm and (untied only) `lm_head.weight`.
  public var expectedTensors: [(name: String, shape: [Int])] {
    var list: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, hidden])]
    for l in 0..<layers {
      let p = "model.layers.\(l)."
      list.append((p + "input_layernorm.weight", [hidden]))
      list.append((p + "post_attention_layernorm.weight", [hidden]))
      for (suffix, shape) in linearShapes { list.append((p + suffix + ".weight", shape)) }
    }
    list.append(("model.norm.weight", [hidden]))
    if !tied { list.append(("lm_head.weight", [vocab, hidden])) }
    return list
  }

  /// Module paths (relative to `model.layers.N.`) and `[out, in]` shapes of the seven linear layers of a block, in
  /// the order the forward pass uses them.
  var linearShapes: [(String, [Int])] {
    let (q, kv) = (heads * headDim, kvHeads * headDim)
    return [
      ("self_attn.q_proj", [q, hidden]), ("self_attn.k_proj", [kv, hidden]), ("self_attn.v_proj", [kv, hidden]),
      ("self_attn.o_proj", [hidden, q]), ("mlp.gate_proj", [intermediate, hidden]),
      ("mlp.up_proj", [intermediate, hidden]), ("mlp.down_proj", [hidden, intermediate]),
    ]
  }
}
