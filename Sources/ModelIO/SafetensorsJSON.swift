import Foundation

/// Typed access to the values `JSONSerialization` returns, shared by the safetensors header, the shard index and
/// `config.json`. JSON booleans and numbers both arrive as `NSNumber`; these helpers tell them apart, so that
/// `true` is never read as the integer 1 nor `2.0` as a dimension.
enum SafetensorsJSON {
  /// An integer as JSON wrote it: in `Int` range, or too large for it.
  enum Integer: Equatable {
    case value(Int)
    case outOfRange
  }

  /// The top-level object of `bytes`, or nil when they are not valid UTF-8 holding one JSON object.
  static func object(_ bytes: UnsafeRawBufferPointer) -> [String: Any]? {
    // JSONSerialization would also guess UTF-16/32; the formats we read are UTF-8 only.
    guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
    let data = Data(bytes)
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
  }

  /// Why `bytes` are not one UTF-8 JSON object, as "line L, column C: what" (JSONSerialization's byte offset
  /// turned into a position a person can find).
  static func syntaxError(_ bytes: UnsafeRawBufferPointer) -> String {
    guard String(validating: bytes, as: UTF8.self) != nil else { return "not UTF-8 text" }
    let data = Data(bytes)
    do {
      _ = try JSONSerialization.jsonObject(with: data)
      return "line 1, column 1: the top level is not a JSON object"
    } catch {
      let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
      var offset = bytes.count
      if let range = text.range(of: "character "), let n = Int(text[range.upperBound...].prefix { $0.isNumber }) {
        offset = n
      }
      return "\(location(offset, in: Array(bytes))): not valid JSON (\(text))"
    }
  }

  /// "line L, column C" (1-based; columns count characters) of byte `offset` in `bytes`.
  static func location(_ offset: Int, in bytes: [UInt8]) -> String {
    var (line, column) = (1, 1)
    for b in bytes.prefix(max(0, offset)) {
      if b == UInt8(ascii: "\n") {
        line += 1
        column = 1
      } else if b & 0xC0 != 0x80 {
        column += 1
      }
    }
    return "line \(line), column \(column)"
  }

  /// True for a JSON `true`/`false`.
  static func isBool(_ value: Any) -> Bool {
    guard let n = value as? NSNumber else { return false }
    return String(cString: n.objCType) == "c"
  }

  /// A JSON boolean, or nil for anything else.
  static func bool(_ value: Any) -> Bool? { isBool(value) ? (value as? NSNumber)?.boolValue : nil }

  /// A JSON integer (no fraction, no exponent form that JSONSerialization read as a double), or nil.
  static func integer(_ value: Any) -> Integer? {
    guard let n = value as? NSNumber, !isBool(value) else { return nil }
    switch String(cString: n.objCType) {
    case "d", "f": return nil
    case "Q": return Int(exactly: n.uint64Value).map(Integer.value) ?? .outOfRange
    default: return .value(n.intValue)
    }
  }

  /// A JSON number of either kind as `Double`, or nil (booleans are not numbers).
  static func number(_ value: Any) -> Double? {
    guard let n = value as? NSNumber, !isBool(value) else { return nil }
    return n.doubleValue
  }

  /// A JSON string, or nil.
  static func string(_ value: Any) -> String? { value as? String }

  /// True for JSON `null`.
  static func isNull(_ value: Any) -> Bool { value is NSNull }

  /// `text` as a JSON string literal, with `"`, `\` and control characters escaped.
  static func quoted(_ text: String) -> String {
    var out = "\""
    for u in text.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }
}
