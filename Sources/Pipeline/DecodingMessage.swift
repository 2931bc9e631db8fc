/// A JSON decoding error in one line, for messages that name the file: the JSON path and what was wrong
/// (`layers.0.bytes: Expected to decode Int but found a string`), or `'key' is missing`.
public func oneLineDecodingMessage(_ error: Error) -> String {
  switch error {
  case DecodingError.keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
  case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
    DecodingError.dataCorrupted(let c):
    let path = c.codingPath.map(\.stringValue).joined(separator: ".")
    return (path.isEmpty ? "" : path + ": ") + c.debugDescription
  default: return error.localizedDescription
  }
}
