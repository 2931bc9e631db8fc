#if canImport(TensorCore)
  import TensorCore
#endif

/// Llama-family views of a GGUF file: hyper-parameters from `llama.*` metadata, and tensors under their Hugging
/// Face names with the Q/K rows back in HF order.
extension GGUFFile {
  /// The model's hyper-parameters from `llama.*` and `tokenizer.ggml.*` metadata.
  ///
  /// `rope.freq_base` defaults to 10000 and `attention.head_count_kv` to the head count, as in llama.cpp;
  /// `headDim` is `attention.key_length` when present, else `embedding_length / head_count`; the vocabulary is
  /// `vocab_size`, else the length of `tokenizer.ggml.tokens`; embeddings are tied when there is no `output.weight`.
  /// - Throws: `.unsupported` when `general.architecture` is not `llama`; `.badConfig` for a missing or
  ///   non-positive required key; `.badHeader` for a key of the wrong type.
  public func llamaConfig() throws(ModelIOError) -> LlamaConfig {
    let arch = try architecture()
    guard arch == "llama" else {
      throw ModelIOError(.unsupported, "architecture '\(arch ?? "none")', expected 'llama'", path: path)
    }
    func required(_ key: String) throws(ModelIOError) -> Int {
      guard let v = try int("llama." + key) else {
        throw ModelIOError(.badConfig, "metadata 'llama.\(key)' is missing", path: path)
      }
      guard v > 0 else { throw ModelIOError(.badConfig, "metadata 'llama.\(key)' is \(v)", path: path) }
      return v
    }
    let hidden = try required("embedding_length")
    let heads = try required("attention.head_count")
    let kvHeads = try int("llama.attention.head_count_kv") ?? heads
    guard kvHeads > 0, heads % kvHeads == 0 else {
      throw ModelIOError(.badConfig, "\(heads) heads cannot share \(kvHeads) KV heads", path: path)
    }
    let headDim = try int("llama.attention.key_length") ?? hidden / heads
    guard headDim > 0 else { throw ModelIOError(.badConfig, "head dimension \(headDim)", path: path) }
    guard let eps = try float("llama.attention.layer_norm_rms_epsilon") else {
      throw ModelIOError(.badConfig, "metadata 'llama.attention.layer_norm_rms_epsilon' is missing", path: path)
    }
    let theta = try float("llama.rope.freq_base") ?? 10000
    if !(theta > 0) || !(eps > 0) || !theta.isFinite || !eps.isFinite {
      throw ModelIOError(
        .badConfig, "metadata 'llama.rope.freq_base' \(theta) and 'llama.attention.layer_norm_rms_epsilon' \(eps) "
          + "must be positive and finite", path: path)
    }
    var vocab = try int("llama.vocab_size")
    if vocab == nil { vocab = try stringArray("tokenizer.ggml.tokens")?.count }
    guard let vocab, vocab > 0 else {
      throw ModelIOError(.badConfig, "no llama.vocab_size and no tokenizer.ggml.tokens", path: path)
    }
    return LlamaConfig(
      hiddenSize: hidden, intermediateSize: try required("feed_forward_length"), layerCount: try required("block_count"),
      headCount: heads, kvHeadCount: kvHeads, headDim: headDim, vocabSize: vocab, rmsNormEpsilon: eps,
      ropeTheta: theta, tieWordEmbeddings: info(named: "output.weight") == nil,
      maxPositionEmbeddings: try int("llama.context_length") ?? 0,
      bosTokenId: try int("tokenizer.ggml.bos_token_id"), eosTokenId: try int("tokenizer.ggml.eos_token_id"))
  }

  /// What `bitplan inspect` lists: HF names (GGUF name when unmapped), PyTorch shapes, ggml spelling (`Q4_1`),
  /// stored bytes; in file order.
  public var tensorInfos: [TensorInfo] {
    tensors.map {
      TensorInfo(
        fileName: $0.name, name: NameMapping.hfName(forGGUF: $0.name) ?? $0.name, shape: $0.shape, dtype: $0.type.name,
        sizeInBytes: $0.sizeInBytes)
    }
  }

  /// The tensor with HF name `hfName`, dequantized, in PyTorch order, with `q_proj`/`k_proj` rows un-permuted
  /// back to HF order when the file is a llama GGUF. Names outside the mapping are looked up as GGUF names.
  /// - Throws: `.missingTensor` (e.g. `lm_head.weight` of a tied model), `.badConfig`/`.badShape` when the
  ///   head counts do not divide the rows, dequantization errors.
  public func hfTensor(named hfName: String) throws(ModelIOError) -> Tensor {
    let ggufName = NameMapping.ggufName(forHF: hfName) ?? hfName
    guard info(named: ggufName) != nil else {
      throw ModelIOError(.missingTensor, "no tensor '\(hfName)' (GGUF '\(ggufName)')", path: path)
    }
    let t = try tensor(named: ggufName)
    guard let projection = NameMapping.ropeProjection(hfName: hfName), try architecture() == "llama" else { return t }
    let heads = try ropeHeads(projection)
    do {
      return try NameMapping.unpermuteRoPE(t, heads: heads)
    } catch {
      throw path.map { error.at($0) } ?? error
    }
  }

  /// Every tensor, HF-named and un-permuted as by `hfTensor(named:)`.
  /// - Complexity: dequantizes the whole model; SmolLM2-135M is 538 MB of `Float`.
  public func llamaTensors() throws(ModelIOError) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for info in tensors {
      let name = NameMapping.hfName(forGGUF: info.name) ?? info.name
      out[name] = try hfTensor(named: name)
    }
    return out
  }

  /// Heads that the Q (all heads) or K (KV heads) rows were permuted by.
  func ropeHeads(_ projection: NameMapping.RoPEProjection) throws(ModelIOError) -> Int {
    guard let heads = try int("llama.attention.head_count"), heads > 0 else {
      throw ModelIOError(.badConfig, "llama.attention.head_count missing: cannot un-permute Q/K rows", path: path)
    }
    switch projection {
    case .query: return heads
    case .key: return try int("llama.attention.head_count_kv") ?? heads
    }
  }
}
