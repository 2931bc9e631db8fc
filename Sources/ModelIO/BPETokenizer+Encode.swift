/// Encoding and decoding.
extension BPETokenizer {
  /// Token ids of `text`, without BOS. Special-token text is plain text unless `parseSpecial` is set (see the
  /// type's documentation). Merges are cached per distinct word for the duration of the call.
  public func encode(_ text: String, parseSpecial: Bool = false) -> [Int] {
    var ids: [Int] = []
    ids.reserveCapacity(text.utf8.count / 3 + 1)
    var cache: [[UInt8]: [Int32]] = [:]
    if parseSpecial && !specialTokens.isEmpty {
      for fragment in specialTokens.split(Array(text.utf8)) {
        switch fragment {
        case .special(let id): ids.append(id)
        case .text(let bytes): encodePlain(String(decoding: bytes, as: UTF8.self), into: &ids, cache: &cache)
        }
      }
    } else {
      encodePlain(text, into: &ids, cache: &cache)
    }
    return ids
  }

  /// `[BOS] + encode(text)`, the protocol of DESIGN.md's perplexity windows, whatever `addBOS` says (SmolLM2's GGUF
  /// says `add_bos_token = false`, yet its reference window starts with BOS = 1). Throws `.badTokenizer` when the
  /// model has no BOS token.
  public func encodeWithBOS(_ text: String, parseSpecial: Bool = false) throws(ModelIOError) -> [Int] {
    guard let bos = bosTokenId else { throw ModelIOError(.badTokenizer, "the tokenizer has no BOS token") }
    return [bos] + encode(text, parseSpecial: parseSpecial)
  }

  /// The bytes the tokens stand for, concatenated (special tokens give their text). Throws `.outOfBounds` for an
  /// id outside the vocabulary.
  public func decodeBytes(_ ids: [Int]) throws(ModelIOError) -> [UInt8] {
    var bytes: [UInt8] = []
    for id in ids {
      guard id >= 0 && id < tokens.count else {
        throw ModelIOError(.outOfBounds, "token id \(id) outside the vocabulary of \(tokens.count)")
      }
      bytes.append(contentsOf: tokenBytes[Int(tokenByteOffsets[id])..<Int(tokenByteOffsets[id + 1])])
    }
    return bytes
  }

  /// The text of `ids`: `decodeBytes` read as UTF-8, with U+FFFD where the ids cut a character in two. No spaces
  /// are cleaned up, so `decode(encode(x)) == x` for every string `x`.
  public func decode(_ ids: [Int]) throws(ModelIOError) -> String {
    String(decoding: try decodeBytes(ids), as: UTF8.self)
  }

  /// Pre-tokenizes plain text and appends the ids of each word.
  private func encodePlain(_ text: String, into ids: inout [Int], cache: inout [[UInt8]: [Int32]]) {
    let scalars = Array(text.unicodeScalars)
    var bytes: [UInt8] = []
    for word in preTokenizer.split(scalars) {
      bytes.removeAll(keepingCapacity: true)
      for scalar in scalars[word] { UTF8.encode(scalar) { bytes.append($0) } }
      if let known = cache[bytes] {
        for id in known { ids.append(Int(id)) }
        continue
      }
      let merged = encodeWord(bytes)
      cache[bytes] = merged
      for id in merged { ids.append(Int(id)) }
    }
  }

  /// The ids of one word given as UTF-8 bytes.
  func encodeWord(_ bytes: [UInt8]) -> [Int32] {
    if ignoreMerges, let whole = idForToken[ByteLevel.encode(bytes)] { return [whole] }
    return withoutMissingBytes(merges.merge(bytes.map { byteTokenIds[Int($0)] }))
  }

  /// Replaces the -1 of bytes without a token by `unknownTokenId`, or drops them.
  @inline(__always)
  func withoutMissingBytes(_ ids: [Int32]) -> [Int32] {
    guard ids.contains(-1) else { return ids }
    if let unk = unknownTokenId { return ids.map { $0 < 0 ? Int32(unk) : $0 } }
    return ids.filter { $0 >= 0 }
  }

  /// Reference encoder: the slow twin of `encode` (no cache, no special tokens, `BPEMerges.mergeReference`,
  /// `PreTokenizer.splitReference` when `referenceSplit` is set). Tests compare it with `encode`.
  func encodeReference(_ text: String, referenceSplit: Bool) throws(ModelIOError) -> [Int] {
    let words = referenceSplit ? try preTokenizer.splitReference(text) : preTokenizer.split(text)
    var ids: [Int] = []
    for word in words {
      let bytes = Array(word.utf8)
      if ignoreMerges, let whole = idForToken[ByteLevel.encode(bytes)] {
        ids.append(Int(whole))
        continue
      }
      ids += withoutMissingBytes(merges.mergeReference(bytes.map { byteTokenIds[Int($0)] })).map(Int.init)
    }
    return ids
  }
}
