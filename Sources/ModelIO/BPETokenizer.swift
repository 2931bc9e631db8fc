/// A byte-level BPE tokenizer (GPT-2 family: SmolLM2, Llama 3, Qwen2, ...), built from GGUF `tokenizer.ggml.*`
/// metadata (model "gpt2") or from a Hugging Face `tokenizer.json` (model type BPE with a ByteLevel pre-tokenizer).
///
/// Encoding: text -> words (the declared `PreTokenizer`) -> UTF-8 bytes of each word -> one token per byte (GPT-2
/// byte alphabet) -> BPE merges by rank (`BPEMerges`). Decoding concatenates the bytes of the tokens.
///
/// Special tokens: by default `encode` treats all text as plain text, so `<|im_start|>` written in a document
/// becomes ordinary tokens; this is llama.cpp's default for perplexity (`parse_special = false`) and reproduces the
/// reference ids of `pp-window-ids.txt`. With `parseSpecial: true` the text of every control and user-defined token
/// (GGUF token types 3 and 4; Hugging Face `added_tokens`) is matched first, longest match first, and emitted as
/// its id, as `transformers` does for added tokens.
public struct BPETokenizer: Sendable {
  /// GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`).
  public enum TokenType: Int32, Sendable, CaseIterable, Codable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
  }

  /// Token strings, indexed by id, in the byte-level spelling (`Ġthe`), or plain text for special tokens.
  public let tokens: [String]
  /// The type of each token, indexed by id.
  public let tokenTypes: [TokenType]
  /// How raw text is split into words before merging.
  public let preTokenizer: PreTokenizer
  /// Whether a word that is itself a token is emitted whole, without merging (llama.cpp `ignore_merges`,
  /// Hugging Face `model.ignore_merges`).
  public let ignoreMerges: Bool
  public let bosTokenId: Int?
  public let eosTokenId: Int?
  /// Whether the model asks for BOS at the start of a sequence (GGUF `tokenizer.ggml.add_bos_token`).
  public let addBOS: Bool

  let merges: BPEMerges
  let idForToken: [String: Int32]
  /// The id of the one-scalar token for each byte; -1 for a byte without one.
  let byteTokenIds: [Int32]
  /// Bytes the vocabulary has no token for. Text containing them does not round-trip: each becomes
  /// `unknownTokenId`, or nothing when that is `nil` (GGUF, and SmolLM2's tokenizer.json).
  public let bytesWithoutToken: [UInt8]
  /// The token for bytes without one (Hugging Face `model.unk_token`); `nil` drops them.
  public let unknownTokenId: Int?
  /// The bytes each token stands for (special tokens: their UTF-8 text), all tokens' end to end: token `id`'s are
  /// `tokenBytes[tokenByteOffsets[id] ..< tokenByteOffsets[id + 1]]`. One array, not one per token: 49,152 small
  /// arrays cost SmolLM2's tokenizer about 2 MiB of headers and allocator rounding.
  let tokenBytes: [UInt8]
  /// `vocabularySize + 1` offsets into `tokenBytes`.
  let tokenByteOffsets: [Int32]
  let specialTokens: BPESpecialTokenMatcher

  public var vocabularySize: Int { tokens.count }

  /// From GGUF metadata: `tokenizer.ggml.tokens`, `.merges` ("left right", rank = index), `.token_type`, `.pre`,
  /// `.bos_token_id`, `.eos_token_id`, `.add_bos_token`. Throws `.unsupported` for an unknown `pre` and
  /// `.badTokenizer` for malformed tokens or merges (an empty vocabulary, a duplicate token string, a merge that is
  /// not two tokens separated by one space, a merge whose parts or result are not tokens, a token type outside 0...6,
  /// a BOS/EOS id out of range, `addBOS` without a BOS id). Bytes without a token are allowed (`bytesWithoutToken`).
  public init(
    tokens: [String], merges: [String], tokenTypes: [Int32]?, pre: String, bosTokenId: Int?, eosTokenId: Int?,
    addBOS: Bool
  ) throws(ModelIOError) {
    let preTokenizer = try PreTokenizer(ggufName: pre)
    var pairs: [(String, String)] = []
    pairs.reserveCapacity(merges.count)
    for (rank, merge) in merges.enumerated() {
      let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ModelIOError(.badTokenizer, "merge \(rank) '\(merge)' is not two tokens separated by one space")
      }
      pairs.append((String(parts[0]), String(parts[1])))
    }
    var types: [TokenType] = []
    if let tokenTypes {
      guard tokenTypes.count == tokens.count else {
        throw ModelIOError(.badTokenizer, "\(tokenTypes.count) token types for \(tokens.count) tokens")
      }
      for (id, raw) in tokenTypes.enumerated() {
        guard let type = TokenType(rawValue: raw) else {
          throw ModelIOError(.badTokenizer, "token \(id) has unknown token type \(raw)")
        }
        types.append(type)
      }
    } else {
      types = Array(repeating: .normal, count: tokens.count)
    }
    try self.init(
      tokens: tokens, mergePairs: pairs, tokenTypes: types, preTokenizer: preTokenizer,
      ignoreMerges: preTokenizer.ignoresMergesByDefault, bosTokenId: bosTokenId, eosTokenId: eosTokenId,
      addBOS: addBOS, specialIds: types.indices.filter { types[$0] == .control || types[$0] == .userDefined })
  }

  /// The common initializer: validates everything and builds the lookup tables.
  init(
    tokens: [String], mergePairs: [(String, String)], tokenTypes: [TokenType], preTokenizer: PreTokenizer,
    ignoreMerges: Bool, bosTokenId: Int?, eosTokenId: Int?, addBOS: Bool, specialIds: [Int],
    unknownTokenId: Int? = nil
  ) throws(ModelIOError) {
    guard !tokens.isEmpty, tokens.count <= Int(Int32.max) else {
      throw ModelIOError(.badTokenizer, "vocabulary of \(tokens.count) tokens")
    }
    for (name, id) in [("BOS", bosTokenId), ("EOS", eosTokenId)] {
      if let id, !(0..<tokens.count).contains(id) {
        throw ModelIOError(.badTokenizer, "\(name) token id \(id) outside the vocabulary of \(tokens.count)")
      }
    }
    if addBOS && bosTokenId == nil { throw ModelIOError(.badTokenizer, "add_bos is set but there is no BOS id") }
    var idForToken: [String: Int32] = [:]
    idForToken.reserveCapacity(tokens.count)
    for (id, token) in tokens.enumerated() {
      if let first = idForToken.updateValue(Int32(id), forKey: token) {
        throw ModelIOError(.badTokenizer, "token '\(token)' appears twice (ids \(first) and \(id))")
      }
    }
    // Vocabularies may lack bytes never seen in training (SmolLM2 has no token for 21 bytes, among them the
    // controls 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D). Such bytes become `unknownTokenId`, or are dropped when there
    // is none, as Hugging Face `tokenizers` and llama.cpp do.
    let byteTokenIds = (0..<256).map { idForToken[String(ByteLevel.scalarForByte[$0])] ?? -1 }
    let missing = byteTokenIds.indices.filter { byteTokenIds[$0] < 0 }
    if let unknownTokenId, !(0..<tokens.count).contains(unknownTokenId) {
      throw ModelIOError(.badTokenizer, "unknown token id \(unknownTokenId) outside the vocabulary of \(tokens.count)")
    }
    var table = BPEMerges()
    for (rank, (left, right)) in mergePairs.enumerated() {
      guard let l = idForToken[left], let r = idForToken[right], let m = idForToken[left + right] else {
        throw ModelIOError(.badTokenizer, "merge \(rank) '\(left) \(right)': part or result is not a token")
      }
      table.append(left: l, right: r, merged: m, rank: Int32(rank))
    }
    var tokenBytes: [UInt8] = []
    var tokenByteOffsets: [Int32] = [0]
    tokenByteOffsets.reserveCapacity(tokens.count + 1)
    let special = Set(specialIds)
    for (id, token) in tokens.enumerated() {
      if !special.contains(id), let bytes = ByteLevel.decode(token) {
        tokenBytes.append(contentsOf: bytes)
      } else {
        tokenBytes.append(contentsOf: token.utf8)
      }
      guard tokenBytes.count <= Int(Int32.max) else {
        throw ModelIOError(.badTokenizer, "the vocabulary's tokens hold more than \(Int32.max) bytes")
      }
      tokenByteOffsets.append(Int32(tokenBytes.count))
    }
    self.tokens = tokens
    self.tokenTypes = tokenTypes
    self.preTokenizer = preTokenizer
    self.ignoreMerges = ignoreMerges
    self.bosTokenId = bosTokenId
    self.eosTokenId = eosTokenId
    self.addBOS = addBOS
    self.merges = table
    self.idForToken = idForToken
    self.byteTokenIds = byteTokenIds
    self.bytesWithoutToken = missing.map(UInt8.init)
    self.unknownTokenId = unknownTokenId
    self.tokenBytes = tokenBytes
    self.tokenByteOffsets = tokenByteOffsets
    self.specialTokens = BPESpecialTokenMatcher(specialIds.map { (Array(tokens[$0].utf8), $0) })
  }

  /// Throws `.unsupported` unless GGUF `tokenizer.ggml.model` names byte-level BPE ("gpt2"), the only model this
  /// type reads; SentencePiece ("llama", e.g. Gemma 3) and WordPiece ("bert") are other tokenizers.
  public static func checkGGUFModel(_ model: String) throws(ModelIOError) {
    guard model == "gpt2" else {
      throw ModelIOError(.unsupported, "tokenizer model '\(model)' is not supported; supported: gpt2 (byte-level BPE)")
    }
  }

  /// The id of a token string (byte-level spelling), if it is in the vocabulary.
  public func id(of token: String) -> Int? { idForToken[token].map(Int.init) }
}
