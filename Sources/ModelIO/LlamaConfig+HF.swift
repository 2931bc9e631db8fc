/// Reading a Hugging Face `config.json` of a llama-family model.
///
/// Required keys: `hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads`, `vocab_size`
/// (positive integers). Defaults follow `transformers`' `LlamaConfig` when a key is absent: `num_key_value_heads`
/// = heads, `head_dim` = hidden / heads, `rms_norm_eps` 1e-6, `rope_theta` 10000 (also read from
/// `rope_parameters.rope_theta`, the transformers 5 spelling), `tie_word_embeddings` false,
/// `max_position_embeddings` 2048, `bos_token_id` 1, `eos_token_id` 2 (the first of a list; `null` gives nil).
/// Features the engine does not implement are refused rather than ignored: a `model_type` other than `llama`
/// (or, without `model_type`, `architectures` not naming `LlamaForCausalLM`), RoPE scaling other than
/// `default`, a `hidden_act` other than `silu`, and attention or MLP biases give `.unsupported`.
extension LlamaConfig {
  /// Parses the file at `path`.
  /// - Throws: `.io` when it cannot be read; see `init(hfConfig:path:)`.
  public init(hfConfigPath path: String) throws(ModelIOError) {
    let source = try ByteSource(path: path)
    try self.init(hfConfig: Array(UnsafeRawBufferPointer(start: source.base, count: source.count)), path: path)
  }

  /// Parses the bytes of a `config.json`.
  /// - Throws: `.badConfig` naming the key for a missing required key, a value of the wrong type or an
  ///   inconsistent one (heads not dividing hidden size, say); `.unsupported` for an architecture or feature we
  ///   do not run.
  public init(hfConfig bytes: [UInt8], path: String? = nil) throws(ModelIOError) {
    guard let json = bytes.withUnsafeBytes({ SafetensorsJSON.object($0) }) else {
      let why = bytes.withUnsafeBytes { SafetensorsJSON.syntaxError($0) }
      throw ModelIOError(.badConfig, "config.json is not one UTF-8 JSON object: \(why)", path: path)
    }
    let keys = HFKeys(json: json, path: path)
    let modelType = try keys.string("model_type")
    let architectures = try keys.strings("architectures")
    if modelType == nil && architectures == nil {
      throw ModelIOError(.badConfig, "missing key 'model_type' (and no 'architectures')", path: path)
    }
    // model_type decides when present; architectures only stands in for it when it is absent.
    if modelType.map({ $0 != "llama" }) ?? !(architectures ?? []).contains("LlamaForCausalLM") {
      throw ModelIOError(
        .unsupported, "model_type '\(modelType ?? "?")', architectures \(architectures ?? []): only llama is supported",
        path: path)
    }
    if let act = try keys.string("hidden_act"), act != "silu" {
      throw ModelIOError(.unsupported, "hidden_act '\(act)': only silu is supported", path: path)
    }
    for key in ["attention_bias", "mlp_bias"] where try keys.bool(key) == true {
      throw ModelIOError(.unsupported, "'\(key)' is true: biases are not supported", path: path)
    }
    let ropeParameters = try keys.object("rope_parameters")
    for (key, table) in [("rope_scaling", try keys.object("rope_scaling")), ("rope_parameters", ropeParameters)] {
      guard let table else { continue }
      let (ropeType, legacyType) = (try table.string("rope_type"), try table.string("type"))
      let type = ropeType ?? legacyType ?? "default"
      if type != "default" {
        throw ModelIOError(.unsupported, "\(key) of type '\(type)': only unscaled RoPE is supported", path: path)
      }
    }
    let hidden = try keys.positive("hidden_size")
    let heads = try keys.positive("num_attention_heads")
    let kvHeads = try keys.positive("num_key_value_heads", default: heads)
    if heads % kvHeads != 0 {
      throw ModelIOError(
        .badConfig, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)", path: path)
    }
    if try keys.integer("head_dim") == nil && hidden % heads != 0 {
      throw ModelIOError(
        .badConfig, "hidden_size \(hidden) is not a multiple of num_attention_heads \(heads) and head_dim is absent",
        path: path)
    }
    let (topTheta, nestedTheta) = (try keys.number("rope_theta"), try ropeParameters?.number("rope_theta"))
    let theta = topTheta ?? nestedTheta ?? 10000
    let epsilon = try keys.number("rms_norm_eps") ?? 1e-6
    if !(theta > 0) || !(epsilon > 0) {
      throw ModelIOError(.badConfig, "rope_theta \(theta) and rms_norm_eps \(epsilon) must be positive", path: path)
    }
    self.init(
      hiddenSize: hidden, intermediateSize: try keys.positive("intermediate_size"),
      layerCount: try keys.positive("num_hidden_layers"), headCount: heads, kvHeadCount: kvHeads,
      headDim: try keys.positive("head_dim", default: hidden / heads), vocabSize: try keys.positive("vocab_size"),
      rmsNormEpsilon: Float(epsilon), ropeTheta: Float(theta),
      tieWordEmbeddings: try keys.bool("tie_word_embeddings") ?? false,
      maxPositionEmbeddings: try keys.positive("max_position_embeddings", default: 2048),
      bosTokenId: try keys.tokenId("bos_token_id", default: 1), eosTokenId: try keys.tokenId("eos_token_id", default: 2)
    )
  }
}

/// Typed lookups in one JSON object of a config, each failing with `.badConfig` naming the key.
private struct HFKeys {
  let json: [String: Any]
  let path: String?

  private func wrong(_ key: String, _ kind: String) -> ModelIOError {
    ModelIOError(.badConfig, "'\(key)' must be \(kind), found \(json[key].map { "\($0)" } ?? "nothing")", path: path)
  }

  /// The value of `key`, nil when absent or `null`.
  private func value(_ key: String) -> Any? {
    guard let v = json[key], !SafetensorsJSON.isNull(v) else { return nil }
    return v
  }

  func string(_ key: String) throws(ModelIOError) -> String? {
    guard let v = value(key) else { return nil }
    guard let s = SafetensorsJSON.string(v) else { throw wrong(key, "a string") }
    return s
  }

  func strings(_ key: String) throws(ModelIOError) -> [String]? {
    guard let v = value(key) else { return nil }
    guard let a = v as? [Any], let s = Optional(a.compactMap(SafetensorsJSON.string)), s.count == a.count else {
      throw wrong(key, "an array of strings")
    }
    return s
  }

  func bool(_ key: String) throws(ModelIOError) -> Bool? {
    guard let v = value(key) else { return nil }
    guard let b = SafetensorsJSON.bool(v) else { throw wrong(key, "true or false") }
    return b
  }

  func number(_ key: String) throws(ModelIOError) -> Double? {
    guard let v = value(key) else { return nil }
    guard let d = SafetensorsJSON.number(v), d.isFinite else { throw wrong(key, "a number") }
    return d
  }

  func integer(_ key: String) throws(ModelIOError) -> Int? {
    guard let v = value(key) else { return nil }
    guard case .value(let i) = SafetensorsJSON.integer(v) else { throw wrong(key, "an integer") }
    return i
  }

  func object(_ key: String) throws(ModelIOError) -> HFKeys? {
    guard let v = value(key) else { return nil }
    guard let o = v as? [String: Any] else { throw wrong(key, "an object") }
    return HFKeys(json: o, path: path)
  }

  /// A positive integer; `default` when absent, else a missing key is an error naming it.
  func positive(_ key: String, default fallback: Int? = nil) throws(ModelIOError) -> Int {
    guard let i = try integer(key) ?? fallback else {
      throw ModelIOError(.badConfig, "missing key '\(key)'", path: path)
    }
    if i <= 0 { throw wrong(key, "a positive integer") }
    return i
  }

  /// A token id: an integer, the first of a list of integers, nil for `null`, `default` when absent.
  func tokenId(_ key: String, default fallback: Int) throws(ModelIOError) -> Int? {
    guard let v = json[key] else { return fallback }
    if SafetensorsJSON.isNull(v) { return nil }
    let first: Any? = if let list = v as? [Any] { list.first } else { v }
    guard let f = first, case .value(let id) = SafetensorsJSON.integer(f), id >= 0 else {
      throw wrong(key, "a token id or a list of them")
    }
    return id
  }
}
