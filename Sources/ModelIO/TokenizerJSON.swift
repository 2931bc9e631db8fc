/// A JSON value, as read from a Hugging Face `tokenizer.json` (whose layout varies between library versions, so it
/// is walked as a tree rather than decoded into fixed types).
///
/// `parse` is a small RFC 8259 parser over UTF-8 bytes: every malformed input, including nesting deeper than
/// `maxDepth`, a lone surrogate escape, invalid UTF-8 or a duplicate object key, throws `.badTokenizer` with the
/// byte offset; nothing traps. Numbers are read by `Double(_:)`, which is a little more lenient than the grammar
/// (`+1`, `01`), and kept as `Double` (token ids are far below 2^53).
enum TokenizerJSON: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([TokenizerJSON])
  case object([String: TokenizerJSON])

  /// Deepest nesting accepted; real tokenizer files nest about 6 levels.
  static let maxDepth = 128

  subscript(key: String) -> TokenizerJSON? {
    if case .object(let members) = self { return members[key] }
    return nil
  }

  var string: String? { if case .string(let s) = self { return s } else { return nil } }
  var array: [TokenizerJSON]? { if case .array(let a) = self { return a } else { return nil } }
  var object: [String: TokenizerJSON]? { if case .object(let o) = self { return o } else { return nil } }
  var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  var isNull: Bool { self == .null }

  /// The value as an exact non-negative integer below 2^31, or `nil`.
  var int: Int? {
    guard case .number(let d) = self, d >= 0, d < 2_147_483_648, d == d.rounded() else { return nil }
    return Int(d)
  }

  /// Parses a whole document; trailing non-space bytes are an error.
  static func parse(_ bytes: [UInt8]) throws(ModelIOError) -> TokenizerJSON {
    var parser = Parser(bytes: bytes)
    parser.skipSpace()
    let value = try parser.value(depth: 0)
    parser.skipSpace()
    guard parser.at == bytes.count else { throw parser.fail("trailing characters after the JSON value") }
    return value
  }

  private struct Parser {
    let bytes: [UInt8]
    var at = 0

    func fail(_ what: String) -> ModelIOError {
      ModelIOError(.badTokenizer, "tokenizer.json: \(SafetensorsJSON.location(at, in: bytes)): \(what)")
    }

    mutating func skipSpace() {
      while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 {
        at += 1
      }
    }

    mutating func expect(_ literal: String, _ value: TokenizerJSON) throws(ModelIOError) -> TokenizerJSON {
      let utf8 = Array(literal.utf8)
      guard bytes.count - at >= utf8.count, Array(bytes[at..<(at + utf8.count)]) == utf8 else {
        throw fail("invalid literal")
      }
      at += utf8.count
      return value
    }

    mutating func value(depth: Int) throws(ModelIOError) -> TokenizerJSON {
      guard depth < TokenizerJSON.maxDepth else { throw fail("nesting deeper than \(TokenizerJSON.maxDepth)") }
      guard at < bytes.count else { throw fail("unexpected end of input") }
      switch bytes[at] {
      case UInt8(ascii: "{"): return try object(depth: depth)
      case UInt8(ascii: "["): return try array(depth: depth)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): return try expect("true", .bool(true))
      case UInt8(ascii: "f"): return try expect("false", .bool(false))
      case UInt8(ascii: "n"): return try expect("null", .null)
      default: return try number()
      }
    }

    mutating func object(depth: Int) throws(ModelIOError) -> TokenizerJSON {
      at += 1
      var members: [String: TokenizerJSON] = [:]
      skipSpace()
      if at < bytes.count && bytes[at] == UInt8(ascii: "}") {
        at += 1
        return .object(members)
      }
      while true {
        skipSpace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let key = try string()
        skipSpace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        at += 1
        skipSpace()
        let member = try value(depth: depth + 1)
        if members.updateValue(member, forKey: key) != nil { throw fail("duplicate key '\(key)'") }
        skipSpace()
        guard at < bytes.count else { throw fail("unterminated object") }
        if bytes[at] == UInt8(ascii: "}") {
          at += 1
          return .object(members)
        }
        guard bytes[at] == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
        at += 1
      }
    }

    mutating func array(depth: Int) throws(ModelIOError) -> TokenizerJSON {
      at += 1
      var elements: [TokenizerJSON] = []
      skipSpace()
      if at < bytes.count && bytes[at] == UInt8(ascii: "]") {
        at += 1
        return .array(elements)
      }
      while true {
        skipSpace()
        elements.append(try value(depth: depth + 1))
        skipSpace()
        guard at < bytes.count else { throw fail("unterminated array") }
        if bytes[at] == UInt8(ascii: "]") {
          at += 1
          return .array(elements)
        }
        guard bytes[at] == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
        at += 1
      }
    }

    mutating func number() throws(ModelIOError) -> TokenizerJSON {
      let start = at
      let numberBytes = Array("0123456789+-.eE".utf8)
      while at < bytes.count && numberBytes.contains(bytes[at]) { at += 1 }
      let text = String(decoding: bytes[start..<at], as: UTF8.self)
      guard !text.isEmpty, let d = Double(text), d.isFinite else {
        at = start
        throw fail("invalid value")
      }
      return .number(d)
    }

    /// A string starting at the opening quote; escapes decoded, UTF-8 validated.
    mutating func string() throws(ModelIOError) -> String {
      at += 1
      var out: [UInt8] = []
      while true {
        guard at < bytes.count else { throw fail("unterminated string") }
        let c = bytes[at]
        at += 1
        if c == UInt8(ascii: "\"") { break }
        if c < 0x20 { throw fail("control character in string") }
        guard c == UInt8(ascii: "\\") else {
          out.append(c)
          continue
        }
        guard at < bytes.count else { throw fail("unterminated escape") }
        let e = bytes[at]
        at += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var code = try hex4()
          if (0xD800...0xDBFF).contains(code) {
            guard bytes.count - at >= 6, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
              throw fail("lone high surrogate")
            }
            at += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw fail("bad low surrogate") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          }
          guard let scalar = Unicode.Scalar(code) else { throw fail("lone surrogate") }
          UTF8.encode(scalar) { out.append($0) }
        default: throw fail("invalid escape")
        }
      }
      guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
      return s
    }

    mutating func hex4() throws(ModelIOError) -> UInt32 {
      guard bytes.count - at >= 4 else { throw fail("short \\u escape") }
      var v: UInt32 = 0
      for _ in 0..<4 {
        let c = bytes[at]
        at += 1
        let digit: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
        default: throw fail("bad hex digit in \\u escape")
        }
        v = v << 4 | UInt32(digit)
      }
      return v
    }
  }
}
