/// Typed metadata lookups. Each returns nil when the key is absent and throws `.badHeader` when the key holds a
/// value of another type, so a caller can tell "not set" from "set wrongly".
extension GGUFFile {
  /// The raw value of `key`, or nil.
  public func value(_ key: String) -> GGUFValue? { metadata[key] }

  /// A `string` value.
  public func string(_ key: String) throws(ModelIOError) -> String? {
    guard let v = metadata[key] else { return nil }
    guard let s = v.stringValue else { throw wrongType(key, v, "a string") }
    return s
  }

  /// An integer of any GGUF width (u8 ... i64) that fits in `Int`.
  public func int(_ key: String) throws(ModelIOError) -> Int? {
    guard let v = metadata[key] else { return nil }
    guard let i = v.intValue else { throw wrongType(key, v, "an integer that fits in Int") }
    return i
  }

  /// A `float32` or `float64` value, as `Float` (float64 rounded to nearest).
  public func float(_ key: String) throws(ModelIOError) -> Float? {
    try double(key).map { Float($0) }
  }

  /// A `float32` or `float64` value, as `Double` (exact).
  public func double(_ key: String) throws(ModelIOError) -> Double? {
    guard let v = metadata[key] else { return nil }
    guard let x = v.doubleValue else { throw wrongType(key, v, "a float") }
    return x
  }

  /// A `bool` value.
  public func bool(_ key: String) throws(ModelIOError) -> Bool? {
    guard let v = metadata[key] else { return nil }
    guard case .bool(let b) = v else { throw wrongType(key, v, "a bool") }
    return b
  }

  /// An array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
  public func stringArray(_ key: String) throws(ModelIOError) -> [String]? {
    guard let v = metadata[key] else { return nil }
    guard case .array(.string, let elements) = v else { throw wrongType(key, v, "an array of strings") }
    return elements.map { $0.stringValue ?? "" }
  }

  /// An array of integers of one GGUF width, each fitting in `Int` (`tokenizer.ggml.token_type`).
  public func intArray(_ key: String) throws(ModelIOError) -> [Int]? {
    guard let v = metadata[key] else { return nil }
    guard case .array(_, let elements) = v else { throw wrongType(key, v, "an array of integers") }
    var out: [Int] = []
    out.reserveCapacity(elements.count)
    for e in elements {
      guard let i = e.intValue else { throw wrongType(key, v, "an array of integers") }
      out.append(i)
    }
    return out
  }

  /// An array of `float32` or `float64` values, as `Float` (`tokenizer.ggml.scores`).
  public func floatArray(_ key: String) throws(ModelIOError) -> [Float]? {
    guard let v = metadata[key] else { return nil }
    guard case .array(let t, let elements) = v, t == .float32 || t == .float64 else {
      throw wrongType(key, v, "an array of floats")
    }
    return elements.map { Float($0.doubleValue ?? .nan) }
  }

  /// `general.architecture` (`llama`, `gemma3`).
  public func architecture() throws(ModelIOError) -> String? { try string("general.architecture") }

  private func wrongType(_ key: String, _ v: GGUFValue, _ expected: String) -> ModelIOError {
    ModelIOError(.badHeader, "metadata '\(key)' is \(v.typeDescription), expected \(expected)", path: path)
  }
}
