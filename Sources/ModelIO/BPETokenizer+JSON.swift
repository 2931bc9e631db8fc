/// Loading a Hugging Face `tokenizer.json` (the `tokenizers` library's serialization).
extension BPETokenizer {
  /// From the bytes of a `tokenizer.json` whose model is byte-level BPE. Reads `model.vocab`, `model.merges`
  /// (`"a b"` strings or `["a", "b"]` pairs), `model.ignore_merges`, `model.unk_token`, `added_tokens` (all of them
  /// are special for `parseSpecial`), and maps `pre_tokenizer` to a `PreTokenizer`:
  ///
  /// - `ByteLevel(use_regex: true)` -> `gpt2`
  /// - `Sequence[Digits(individual_digits: true), ByteLevel(use_regex: true)]` -> `smollm`
  /// - `Sequence[Split(Regex: P, behavior: Isolated), ByteLevel(use_regex: false)]` -> the case whose pattern is P
  ///
  /// BOS is read from a `TemplateProcessing` post-processor that puts one special token before `$A` (Llama 3);
  /// `bosTokenId`/`eosTokenId` override it (the ids live in `tokenizer_config.json`, which this does not read).
  /// Throws `.unsupported` for another model type, a normalizer, `add_prefix_space`, byte fallback or an
  /// unknown pre-tokenizer, and `.badTokenizer` for malformed JSON or vocabulary; errors carry `path`.
  public init(
    tokenizerJSON bytes: [UInt8], path: String?, bosTokenId: Int? = nil, eosTokenId: Int? = nil
  ) throws(ModelIOError) {
    do {
      try self.init(parsing: try TokenizerJSON.parse(bytes), bosTokenId: bosTokenId, eosTokenId: eosTokenId)
    } catch {
      throw path.map { error.at($0) } ?? error
    }
  }

  private init(parsing root: TokenizerJSON, bosTokenId: Int?, eosTokenId: Int?) throws(ModelIOError) {
    guard let model = root["model"]?.object else { throw ModelIOError(.badTokenizer, "no 'model' object") }
    let type = model["type"]?.string ?? "BPE"
    guard type == "BPE" else { throw ModelIOError(.unsupported, "tokenizer model '\(type)' is not supported; supported: BPE") }
    if let normalizer = root["normalizer"], !normalizer.isNull {
      let name = normalizer["type"]?.string ?? "?"
      throw ModelIOError(.unsupported, "normalizer '\(name)' is not supported; supported: none (null)")
    }
    if model["byte_fallback"]?.bool == true { throw ModelIOError(.unsupported, "BPE byte_fallback is not supported") }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
      if let value = model[key], !value.isNull, value.string != "" {
        throw ModelIOError(.unsupported, "BPE \(key) is not supported")
      }
    }
    let preTokenizer = try BPETokenizer.preTokenizer(root["pre_tokenizer"] ?? .null)

    // Vocabulary: model.vocab plus added_tokens, which may extend it (Llama 3's specials are only there).
    guard let vocab = model["vocab"]?.object else { throw ModelIOError(.badTokenizer, "no 'model.vocab' object") }
    var byId: [Int: String] = [:]
    func add(_ token: String, _ id: Int?) throws(ModelIOError) {
      guard let id, id < 1 << 24 else { throw ModelIOError(.badTokenizer, "token '\(token)' has no valid id") }
      if let other = byId.updateValue(token, forKey: id), other != token {
        throw ModelIOError(.badTokenizer, "id \(id) names two tokens, '\(other)' and '\(token)'")
      }
    }
    for (token, id) in vocab { try add(token, id.int) }
    var specialIds: [Int] = []
    for added in root["added_tokens"]?.array ?? [] {
      guard let content = added["content"]?.string, let id = added["id"]?.int else {
        throw ModelIOError(.badTokenizer, "added token without 'content' and 'id'")
      }
      try add(content, id)
      specialIds.append(id)
    }
    let count = (byId.keys.max() ?? -1) + 1
    guard byId.count == count else {
      throw ModelIOError(.badTokenizer, "token ids are not contiguous: \(byId.count) tokens, largest id \(count - 1)")
    }
    let tokens = (0..<count).map { byId[$0]! }  // every id in 0..<count is present (checked just above)

    guard let mergeList = model["merges"]?.array else { throw ModelIOError(.badTokenizer, "no 'model.merges' array") }
    var pairs: [(String, String)] = []
    pairs.reserveCapacity(mergeList.count)
    for (rank, merge) in mergeList.enumerated() {
      if let text = merge.string {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
          throw ModelIOError(.badTokenizer, "merge \(rank) '\(text)' is not two tokens separated by one space")
        }
        pairs.append((String(parts[0]), String(parts[1])))
      } else if let pair = merge.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
        pairs.append((a, b))
      } else {
        throw ModelIOError(.badTokenizer, "merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
      }
    }
    var unknown: Int? = nil
    if let unk = model["unk_token"], !unk.isNull {
      guard let name = unk.string, let id = tokens.firstIndex(of: name) else {
        throw ModelIOError(.badTokenizer, "model.unk_token is not a token of the vocabulary")
      }
      unknown = id
    }
    let special = Set(specialIds)
    let types = tokens.indices.map { special.contains($0) ? TokenType.control : TokenType.normal }
    let templateBOS = BPETokenizer.templateBOS(root["post_processor"] ?? .null, tokens: tokens)
    try self.init(
      tokens: tokens, mergePairs: pairs, tokenTypes: types, preTokenizer: preTokenizer,
      ignoreMerges: model["ignore_merges"]?.bool ?? false, bosTokenId: bosTokenId ?? templateBOS,
      eosTokenId: eosTokenId, addBOS: templateBOS != nil, specialIds: specialIds.sorted(), unknownTokenId: unknown)
  }

  /// The `PreTokenizer` for a `pre_tokenizer` JSON value, or `.unsupported` describing it.
  static func preTokenizer(_ json: TokenizerJSON) throws(ModelIOError) -> PreTokenizer {
    let steps = json["type"]?.string == "Sequence" ? (json["pretokenizers"]?.array ?? []) : [json]
    let names = steps.map { $0["type"]?.string ?? "null" }
    func byteLevel(_ step: TokenizerJSON, useRegex: Bool) -> Bool {
      step["type"]?.string == "ByteLevel" && (step["use_regex"]?.bool ?? true) == useRegex
        && step["add_prefix_space"]?.bool != true
    }
    switch names {
    case ["ByteLevel"] where byteLevel(steps[0], useRegex: true):
      return .gpt2
    case ["Digits", "ByteLevel"] where steps[0]["individual_digits"]?.bool == true
      && byteLevel(steps[1], useRegex: true):
      return .smollm
    case ["Split", "ByteLevel"] where byteLevel(steps[1], useRegex: false):
      let split = steps[0]
      let pattern = split["pattern"]?["Regex"]?.string
      let isolated = split["behavior"]?.string == "Isolated" && split["invert"]?.bool != true
      if isolated, let pattern, let known = PreTokenizer.allCases.first(where: { $0 != .smollm && $0.pattern == pattern }) {
        return known
      }
      throw ModelIOError(.unsupported, "pre-tokenizer Split with regex \(pattern.map { "'\($0)'" } ?? "?") is not supported; supported regexes: the gpt2, llama3 and qwen2 patterns")
    default:
      throw ModelIOError(.unsupported, "pre-tokenizer [\(names.joined(separator: ", "))] is not supported (add_prefix_space must be false); supported: ByteLevel, Sequence[Digits, ByteLevel], Sequence[Split, ByteLevel]")
    }
  }

  /// The id of the special token a `TemplateProcessing` post-processor puts before the single sequence, if any
  /// (searched inside a `Sequence` of post-processors too).
  static func templateBOS(_ json: TokenizerJSON, tokens: [String]) -> Int? {
    if json["type"]?.string == "Sequence" {
      return (json["processors"]?.array ?? []).lazy.compactMap { templateBOS($0, tokens: tokens) }.first
    }
    guard json["type"]?.string == "TemplateProcessing", let single = json["single"]?.array, single.count >= 2,
      let name = single[0]["SpecialToken"]?["id"]?.string, single[1]["Sequence"] != nil
    else { return nil }
    if let id = json["special_tokens"]?[name]?["ids"]?.array?.first?.int, id < tokens.count { return id }
    return tokens.firstIndex(of: name)
  }
}
