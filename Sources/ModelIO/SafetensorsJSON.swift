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
