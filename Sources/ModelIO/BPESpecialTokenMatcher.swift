/// Finds the text of special tokens (`<|im_start|>`) in UTF-8 bytes, for `BPETokenizer.encode(_:parseSpecial:)`.
///
/// At each position the longest special token that starts there wins; the scan then resumes after it. Matching is
/// on bytes, which is safe for UTF-8: a token's first byte is never a continuation byte, so a match never starts
/// inside a character. Hugging Face's `lstrip`/`rstrip`/`single_word` options of added tokens are not applied.
struct BPESpecialTokenMatcher: Sendable {
  enum Fragment: Equatable {
    case text([UInt8])
    case special(Int)
  }

  /// Candidates by first byte, longest first.
  private let byFirstByte: [UInt8: [(bytes: [UInt8], id: Int)]]

  var isEmpty: Bool { byFirstByte.isEmpty }

  init(_ tokens: [([UInt8], Int)]) {
    var table: [UInt8: [(bytes: [UInt8], id: Int)]] = [:]
    for (bytes, id) in tokens where !bytes.isEmpty { table[bytes[0], default: []].append((bytes, id)) }
    for key in table.keys { table[key]!.sort { $0.bytes.count > $1.bytes.count } }
    byFirstByte = table
  }

  /// `bytes` as alternating text and special-token fragments, in order; text fragments are never empty.
  func split(_ bytes: [UInt8]) -> [Fragment] {
    var fragments: [Fragment] = []
    var textStart = 0
    var i = 0
    while i < bytes.count {
      if let candidates = byFirstByte[bytes[i]],
        let hit = candidates.first(where: { c in
          c.bytes.count <= bytes.count - i && bytes[i..<(i + c.bytes.count)].elementsEqual(c.bytes)
        })
      {
        if textStart < i { fragments.append(.text(Array(bytes[textStart..<i]))) }
        fragments.append(.special(hit.id))
        i += hit.bytes.count
        textStart = i
      } else {
        i += 1
      }
    }
    if textStart < bytes.count { fragments.append(.text(Array(bytes[textStart..<bytes.count]))) }
    return fragments
  }
}
