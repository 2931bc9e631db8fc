import Foundation

/// Reading `PROBLEM.json` with errors a person can act on: every error gives the line and column in the file,
/// the JSON path of the value (`layers[3].candidates[1].bytes`) and what is wrong with it.
///
/// The file is parsed by `JSONSerialization` and checked value by value (`JSONDecoder`'s message for a fractional or
/// oversized integer is "The given data was not valid JSON" with no path); the values themselves then come from
/// `JSONDecoder`, whose doubles round-trip exactly. Byte and parameter
/// counts are whole numbers in `0...maximumCount`, so no sum over a problem can overflow.
extension ProblemFile {
  /// The largest `bytes` or `params` value read (2⁵⁰, a pebibyte); sums over layers are held below
  /// `maximumTotal`, so no total a solver forms can overflow.
  public static let maximumCount = 1 << 50
  /// The largest sum over layers of `params`, or of each layer's largest `bytes` (2⁶⁰).
  public static let maximumTotal = 1 << 60

  /// One step of a JSON path.
  enum PathStep: Equatable {
    case key(String)
    case index(Int)
  }

  /// Parses and checks the file's bytes.
  /// - Throws: `.badProblemFile` with "line L, column C: path: what is wrong".
  public static func decode(_ data: Data) throws(AllocationError) -> ProblemFile {
    let bytes = [UInt8](data)
    let root: Any
    do {
      guard String(validating: bytes, as: UTF8.self) != nil else {
        throw AllocationError(.badProblemFile, "not UTF-8 text")
      }
      root = try JSONSerialization.jsonObject(with: data)
    } catch let error as AllocationError {
      throw error
    } catch {
      let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
      let offset = Self.characterOffset(in: text) ?? bytes.count
      throw AllocationError(.badProblemFile, "\(location(offset, bytes)): not valid JSON (\(text))")
    }
    var reader = Reader(bytes: bytes)
    let checked = try reader.file(root)
    // JSONSerialization's doubles can differ from the text in the last digit; JSONDecoder's are exact. The reader
    // above has checked every type and range, so the decoder only supplies the exact numbers.
    return (try? JSONDecoder().decode(ProblemFile.self, from: data)) ?? checked
  }

  /// `N` of JSONSerialization's "… around character N." (a 0-based byte offset).
  static func characterOffset(in text: String) -> Int? {
    guard let range = text.range(of: "character ") else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber })
  }

  /// "line L, column C" (1-based; columns count characters) of byte `offset`.
  static func location(_ offset: Int, _ bytes: [UInt8]) -> String {
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

  /// Reads the tree that JSONSerialization returned, keeping the path for messages.
  struct Reader {
    let bytes: [UInt8]
    var path: [PathStep] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ what: String) -> AllocationError {
      let offset = JSONLocator.offset(of: path, in: bytes)
      let name = path.map { step in
        switch step {
        case .key(let k): ".\(k)"
        case .index(let i): "[\(i)]"
        }
      }.joined().drop { $0 == "." }
      let at = offset.map { ProblemFile.location($0, bytes) + ": " } ?? ""
      return AllocationError(.badProblemFile, at + (name.isEmpty ? "" : name + ": ") + what)
    }

    mutating func file(_ root: Any) throws(AllocationError) -> ProblemFile {
      let object = try self.object(root)
      let version = try field(object, "format_version", required: true) { (r, v) throws(AllocationError) in try r.integer(v, in: 0...Int.max) }!
      guard version == ProblemFile.formatVersion else {
        path = [.key("format_version")]
        throw fail("format_version \(version) is not supported (this tool reads \(ProblemFile.formatVersion))")
      }
      let model = try field(object, "model") { (r, v) throws(AllocationError) in try r.string(v) }
      let sha = try field(object, "model_sha256") { (r, v) throws(AllocationError) in try r.string(v) }
      let layers = try field(object, "layers", required: true) { (r, v) throws(AllocationError) in
        try r.array(v) { (r, v) throws(AllocationError) in try r.layer(v) }
      }!
      // Totals over layers must fit in Int with room to spare (budgets, frontier sums, bits per weight).
      var (bytesTotal, paramsTotal) = (0, 0)
      for layer in layers {
        bytesTotal += layer.candidates.map(\.bytes).max() ?? 0
        paramsTotal += layer.params
        if bytesTotal > ProblemFile.maximumTotal || paramsTotal > ProblemFile.maximumTotal {
          path = [.key("layers")]
          throw fail("the layers' byte or parameter counts sum past 2⁶⁰")
        }
      }
      let ties = try field(object, "ties") { (r, v) throws(AllocationError) in
        try r.array(v) { (r, v) throws(AllocationError) in
          try r.array(v) { (r, v) throws(AllocationError) in try r.string(v) }
        }
      }
      var file = ProblemFile(AllocationProblem(layers: [], score: "error", model: nil, modelSHA256: nil))
      file.formatVersion = version
      file.model = model
      file.modelSHA256 = sha
      file.layers = layers
      file.ties = ties
      return file
    }

    mutating func layer(_ value: Any) throws(AllocationError) -> Layer {
      let o = try object(value)
      let name = try field(o, "name", required: true) { (r, v) throws(AllocationError) in try r.string(v) }!
      let params = try field(o, "params", required: true) { (r, v) throws(AllocationError) in
        try r.integer(v, in: 1...ProblemFile.maximumCount)
      }!
      let sensitivity = try field(o, "sensitivity") { (r, v) throws(AllocationError) in try r.number(v) }
      let variance = try field(o, "variance") { (r, v) throws(AllocationError) in try r.number(v) }
      let candidates = try field(o, "candidates", required: true) { (r, v) throws(AllocationError) in
        try r.array(v) { (r, v) throws(AllocationError) in try r.candidate(v) }
      }!
      return Layer(name: name, params: params, sensitivity: sensitivity, variance: variance, candidates: candidates)
    }

    mutating func candidate(_ value: Any) throws(AllocationError) -> Candidate {
      let o = try object(value)
      let format = try field(o, "format", required: true) { (r, v) throws(AllocationError) in try r.string(v) }!
      let bytes = try field(o, "bytes", required: true) { (r, v) throws(AllocationError) in
        try r.integer(v, in: 0...ProblemFile.maximumCount)
      }!
      let error = try field(o, "error") { (r, v) throws(AllocationError) in try r.number(v) }
      let bits = try field(o, "bits") { (r, v) throws(AllocationError) in try r.number(v) }
      let groupSize = try field(o, "group_size") { (r, v) throws(AllocationError) in try r.integer(v, in: 1...(1 << 30)) }
      let symmetric = try field(o, "symmetric") { (r, v) throws(AllocationError) in try r.bool(v) }
      let scores = try field(o, "scores") { (r, v) throws(AllocationError) -> [String: Double] in
        let table = try r.object(v)
        var out: [String: Double] = [:]
        for key in table.keys.sorted() {
          r.path.append(.key(key))
          out[key] = try r.number(table[key]!)
          r.path.removeLast()
        }
        return out
      }
      return Candidate(
        format: format, bytes: bytes, error: error, bits: bits, groupSize: groupSize, symmetric: symmetric,
        scores: scores)
    }

    /// The value of `key` read by `read`, nil when absent or null (an error when `required`).
    mutating func field<T>(
      _ object: [String: Any], _ key: String, required: Bool = false,
      _ read: (inout Reader, Any) throws(AllocationError) -> T
    ) throws(AllocationError) -> T? {
      guard let value = object[key], !(value is NSNull) else {
        if required { throw fail("required key '\(key)' is missing") }
        return nil
      }
      path.append(.key(key))
      defer { path.removeLast() }
      return try read(&self, value)
    }

    mutating func array<T>(_ value: Any, _ read: (inout Reader, Any) throws(AllocationError) -> T)
      throws(AllocationError) -> [T]
    {
      guard let list = value as? [Any] else { throw fail("expected an array, found \(kind(value))") }
      var out: [T] = []
      for (i, element) in list.enumerated() {
        path.append(.index(i))
        out.append(try read(&self, element))
        path.removeLast()
      }
      return out
    }

    func object(_ value: Any) throws(AllocationError) -> [String: Any] {
      guard let o = value as? [String: Any] else { throw fail("expected an object, found \(kind(value))") }
      return o
    }

    func string(_ value: Any) throws(AllocationError) -> String {
      guard let s = value as? String else { throw fail("expected a string, found \(kind(value))") }
      return s
    }

    func bool(_ value: Any) throws(AllocationError) -> Bool {
      guard isBool(value), let n = value as? NSNumber else { throw fail("expected true or false, found \(kind(value))") }
      return n.boolValue
    }

    func number(_ value: Any) throws(AllocationError) -> Double {
      guard !isBool(value), let n = value as? NSNumber, n.doubleValue.isFinite else {
        throw fail("expected a number, found \(kind(value))")
      }
      return n.doubleValue
    }

    /// A whole number in `range`: not a fraction, not a boolean, not beyond `range` (then the message says so).
    func integer(_ value: Any, in range: ClosedRange<Int>) throws(AllocationError) -> Int {
      guard !isBool(value), let n = value as? NSNumber else { throw fail("expected a whole number, found \(kind(value))") }
      let exact: Int?
      switch String(cString: n.objCType) {
      case "d", "f":
        let d = n.doubleValue
        guard d == d.rounded() else { throw fail("\(d) is not a whole number") }
        exact = Int(exactly: d)
      case "Q": exact = Int(exactly: n.uint64Value)
      default: exact = n.intValue
      }
      guard let exact, range.contains(exact) else {
        throw fail("\(n) is out of range \(range.lowerBound)...\(range.upperBound)")
      }
      return exact
    }

    func isBool(_ value: Any) -> Bool {
      guard let n = value as? NSNumber else { return false }
      return String(cString: n.objCType) == "c"
    }

    func kind(_ value: Any) -> String {
      switch value {
      case is String: "a string"
      case is [Any]: "an array"
      case is [String: Any]: "an object"
      case is NSNull: "null"
      default: isBool(value) ? "a boolean" : (value is NSNumber ? "the number \(value)" : "\(type(of: value))")
      }
    }
  }
}

/// Finds where a value sits in JSON text, for messages: skips whole values without building them.
enum JSONLocator {
  /// The byte offset of the value at `path`, nil when the path is not there (or the text is not JSON).
  static func offset(of path: [ProblemFile.PathStep], in b: [UInt8]) -> Int? {
    var i = 0
    func ws() { while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 } }
    func skipString() -> Bool {
      guard i < b.count, b[i] == UInt8(ascii: "\"") else { return false }
      i += 1
      while i < b.count {
        if b[i] == UInt8(ascii: "\\") { i += 2; continue }
        if b[i] == UInt8(ascii: "\"") { i += 1; return true }
        i += 1
      }
      return false
    }
    func skipValue() -> Bool {
      ws()
      guard i < b.count else { return false }
      switch b[i] {
      case UInt8(ascii: "\""): return skipString()
      case UInt8(ascii: "{"), UInt8(ascii: "["):
        var depth = 0
        while i < b.count {
          switch b[i] {
          case UInt8(ascii: "\""): if !skipString() { return false }; continue
          case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
          case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth == 0 { i += 1; return true }
          default: break
          }
          i += 1
        }
        return false
      default:
        while i < b.count, !",}] \t\r\n".utf8.contains(b[i]) { i += 1 }
        return true
      }
    }
    ws()
    for step in path {
      ws()
      guard i < b.count else { return nil }
      switch step {
      case .key(let key):
        guard b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var found = false
        while !found {
          ws()
          let start = i
          guard skipString() else { return nil }
          let literal = Data(b[start..<i])
          let name = (try? JSONSerialization.jsonObject(with: Data("[".utf8) + literal + Data("]".utf8))) as? [String]
          ws()
          guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
          i += 1
          ws()
          if name?.first == key {
            found = true
          } else {
            guard skipValue() else { return nil }
            ws()
            guard i < b.count, b[i] == UInt8(ascii: ",") else { return nil }
            i += 1
          }
        }
      case .index(let n):
        guard b[i] == UInt8(ascii: "[") else { return nil }
        i += 1
        for _ in 0..<n {
          guard skipValue() else { return nil }
          ws()
          guard i < b.count, b[i] == UInt8(ascii: ",") else { return nil }
          i += 1
        }
        ws()
      }
    }
    return i
  }
}
