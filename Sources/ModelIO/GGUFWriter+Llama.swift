import GGML

#if canImport(TensorCore)
  import TensorCore
#endif

/// Writing llama models: the inverse of `GGUFFile.llamaConfig()` and `GGUFFile.hfTensor(named:)`, as
/// llama.cpp's `convert_hf_to_gguf.py` lays them out (GGUF names, Q/K rows permuted for interleaved RoPE).
extension GGUFWriter {
  /// Adds `general.architecture = "llama"` and the `llama.*` / `tokenizer.ggml.*_token_id` keys that
  /// `GGUFFile.llamaConfig()` reads back into an equal `LlamaConfig`.
  ///
  /// `attention.key_length`/`value_length` are written only when `headDim` differs from `hiddenSize / headCount`;
  /// tied embeddings are expressed by leaving out `output.weight`, not by a key.
  /// - Throws: `.duplicate` when a key is already present; `.badConfig` for a count that does not fit in `u32`.
  public mutating func addLlamaMetadata(_ config: LlamaConfig) throws(ModelIOError) {
    func u32(_ key: String, _ v: Int) throws(ModelIOError) {
      guard let x = UInt32(exactly: v) else { throw ModelIOError(.badConfig, "\(key) = \(v) does not fit in u32") }
      try add(key, .uint32(x))
    }
    try add("general.architecture", .string("llama"))
    try u32("llama.block_count", config.layerCount)
    try u32("llama.context_length", config.maxPositionEmbeddings)
    try u32("llama.embedding_length", config.hiddenSize)
    try u32("llama.feed_forward_length", config.intermediateSize)
    try u32("llama.attention.head_count", config.headCount)
    try u32("llama.attention.head_count_kv", config.kvHeadCount)
    try add("llama.rope.freq_base", .float32(config.ropeTheta))
    try add("llama.attention.layer_norm_rms_epsilon", .float32(config.rmsNormEpsilon))
    try u32("llama.vocab_size", config.vocabSize)
    try u32("llama.rope.dimension_count", config.headDim)
    if config.headCount <= 0 || config.headDim != config.hiddenSize / config.headCount {
      try u32("llama.attention.key_length", config.headDim)
      try u32("llama.attention.value_length", config.headDim)
    }
    if let bos = config.bosTokenId { try u32("tokenizer.ggml.bos_token_id", bos) }
    if let eos = config.eosTokenId { try u32("tokenizer.ggml.eos_token_id", eos) }
  }

  /// Adds HF-named llama tensors under their GGUF names, `q_proj`/`k_proj` rows permuted by `config`'s head
  /// counts. Matrices are stored as `type` (`.f32`, `.f16`, `.bf16`); 1-D tensors (norms, biases) always as F32,
  /// as llama.cpp does. Order: `token_embd`, blocks in ascending order, `output_norm`, `output`.
  /// - Throws: `.unsupported` for a name outside `NameMapping`; `.badShape` when Q/K rows do not split into the
  ///   configured heads; the errors of `addTensor`.
  public mutating func addLlamaTensors(_ tensors: [String: Tensor], config: LlamaConfig, as type: GGMLType = .f32)
    throws(ModelIOError)
  {
    var named: [(gguf: String, hf: String)] = []
    for hf in tensors.keys {
      guard let gguf = NameMapping.ggufName(forHF: hf) else {
        throw ModelIOError(.unsupported, "tensor '\(hf)' has no llama GGUF name")
      }
      named.append((gguf, hf))
    }
    named.sort { Self.llamaOrder($0.gguf) < Self.llamaOrder($1.gguf) }
    for (gguf, hf) in named {
      var t = tensors[hf]!
      switch NameMapping.ropeProjection(hfName: hf) {
      case .query?: t = try NameMapping.permuteRoPE(t, heads: config.headCount)
      case .key?: t = try NameMapping.permuteRoPE(t, heads: config.kvHeadCount)
      case nil: break
      }
      try addTensor(gguf, t, as: t.rank >= 2 ? type : .f32)
    }
  }

  /// Sort key for llama.cpp's tensor order: (group, layer, position in `NameMapping.layerNames`, name).
  static func llamaOrder(_ gguf: String) -> (Int, Int, Int, String) {
    if gguf.hasPrefix("token_embd.") { return (0, 0, 0, gguf) }
    if gguf.hasPrefix("output_norm.") { return (2, 0, 0, gguf) }
    if gguf.hasPrefix("output.") { return (3, 0, 0, gguf) }
    let parts = gguf.split(separator: ".")
    let layer = parts.count > 2 ? Int(parts[1]) ?? 0 : 0
    let position = parts.count > 2 ? NameMapping.layerNames.firstIndex { $0.gguf == parts[2] } ?? 0 : 0
    return (1, layer, position, gguf)
  }
}
