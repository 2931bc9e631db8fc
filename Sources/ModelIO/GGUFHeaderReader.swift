import GGML

/// A cursor over the header of a GGUF file. Every count and length is checked against the bytes left before it is
/// used, so a hostile header can neither trap nor make us allocate more than the file could describe
/// (the rules of ggml's `gguf_init_from_file_impl`).
struct GGUFHeaderReader {
  let source: ByteSource
  var position: Int

  /// Nesting limit for arrays of arrays. The spec allows nesting, ggml reads none; 8 levels is far beyond any
  /// real file and keeps the recursion shallow on hostile input.
  static let maxArrayDepth = 8
  /// ggml's `GGML_MAX_NAME`: a tensor name must be shorter than this many bytes.
  static let maxTensorNameBytes = 64

  init(_ source: ByteSource, at position: Int = 0) {
    self.source = source
    self.position = position
  }

  /// Bytes between the cursor and the end of the file.
  var bytesLeft: Int { source.count - position }

  mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(ModelIOError) -> T {
    let v = try source.load(T.self, at: position, what())
    position += MemoryLayout<T>.size
    return v
  }

  /// A `u64` that must also fit in `Int`; `code` is thrown otherwise.
  mutating func readCount(_ what: @autoclosure () -> String, code: ModelIOError.Code) throws(ModelIOError) -> Int {
    let raw = try read(UInt64.self, what())
    guard let n = Int(exactly: raw) else { throw ModelIOError(code, "\(what()) is \(raw)", path: source.path) }
    return n
  }

  /// A GGUF string: `u64` length, then that many bytes of UTF-8.
  /// - Throws: `.headerTooLarge` when the length exceeds the bytes left, `.badHeader` for invalid UTF-8.
  mutating func readString(_ what: @autoclosure () -> String) throws(ModelIOError) -> String {
    let length = try read(UInt64.self, "length of \(what())")
    guard length <= UInt64(bytesLeft) else {
      throw ModelIOError(
        .headerTooLarge, "\(what()) at byte \(position - 8) claims \(length) bytes, only \(bytesLeft) are left",
        path: source.path)
    }
    let bytes = try source.slice(position, Int(length), what())
    guard let s = String(validating: bytes, as: UTF8.self) else {
      throw ModelIOError(.badHeader, "\(what()) at byte \(position) is not valid UTF-8", path: source.path)
    }
    position += Int(length)
    return s
  }

  /// A value type tag. - Throws: `.badHeader` for a tag the spec does not define.
  mutating func readValueType(_ what: @autoclosure () -> String) throws(ModelIOError) -> GGUFValueType {
    let raw = try read(UInt32.self, "type of \(what())")
    guard let t = GGUFValueType(rawValue: raw) else {
      throw ModelIOError(.badHeader, "\(what()) has unknown value type \(raw)", path: source.path)
    }
    return t
  }

  /// One value of type `type` (for arrays: element type, count, elements).
  mutating func readValue(_ type: GGUFValueType, _ what: String, depth: Int = 0) throws(ModelIOError) -> GGUFValue {
    switch type {
    case .uint8: return .uint8(try read(UInt8.self, what))
    case .int8: return .int8(try read(Int8.self, what))
    case .uint16: return .uint16(try read(UInt16.self, what))
    case .int16: return .int16(try read(Int16.self, what))
    case .uint32: return .uint32(try read(UInt32.self, what))
    case .int32: return .int32(try read(Int32.self, what))
    case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
    case .uint64: return .uint64(try read(UInt64.self, what))
    case .int64: return .int64(try read(Int64.self, what))
    case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
    case .bool:
      let b = try read(UInt8.self, what)
      guard b <= 1 else { throw ModelIOError(.badHeader, "\(what): bool byte is \(b), not 0 or 1", path: source.path) }
      return .bool(b == 1)
    case .string: return .string(try readString(what))
    case .array: return try readArray(what, depth: depth)
    }
  }

  /// An array: element type, `u64` count, elements. The count times the smallest element size must fit in the
  /// bytes left (`.absurdCount` otherwise), so a hostile count cannot make us reserve memory.
  mutating func readArray(_ what: String, depth: Int) throws(ModelIOError) -> GGUFValue {
    guard depth < Self.maxArrayDepth else {
      throw ModelIOError(.badHeader, "\(what): arrays nested deeper than \(Self.maxArrayDepth)", path: source.path)
    }
    let elementType = try readValueType("elements of \(what)")
    let count = try readCount("element count of \(what)", code: .absurdCount)
    guard count <= bytesLeft / elementType.minimumSize else {
      throw ModelIOError(
        .absurdCount,
        "\(what): \(count) elements of \(elementType) need at least \(elementType.minimumSize) bytes each, "
          + "\(bytesLeft) bytes are left", path: source.path)
    }
    var elements: [GGUFValue] = []
    elements.reserveCapacity(count)
    for i in 0..<count {
      // The element index goes into the message only on failure: vocabularies have 10⁵ elements.
      do {
        elements.append(try readValue(elementType, what, depth: depth + 1))
      } catch {
        var e = error
        e.message = "element \(i): " + e.message
        throw e
      }
    }
    return .array(elementType, elements)
  }

  /// One tensor info: name, `u32` dimension count, `i64` dimensions, `u32` type, `u64` offset.
  mutating func readTensorInfo(index: Int, alignment: Int) throws(ModelIOError) -> GGUFTensorInfo {
    let name = try readString("name of tensor \(index)")
    guard name.utf8.count < Self.maxTensorNameBytes else {
      throw ModelIOError(
        .badHeader, "tensor \(index) name has \(name.utf8.count) bytes, ggml allows \(Self.maxTensorNameBytes - 1)",
        path: source.path)
    }
    let rank = try read(UInt32.self, "dimension count of '\(name)'")
    guard rank <= 4 else {
      throw ModelIOError(.badShape, "tensor '\(name)': \(rank) dimensions, GGUF allows at most 4", path: source.path)
    }
    var dimensions: [Int] = []
    for j in 0..<Int(rank) {
      let d = try read(Int64.self, "dimension \(j) of '\(name)'")
      guard d > 0 else {
        throw ModelIOError(.badShape, "tensor '\(name)': dimension \(j) is \(d), must be at least 1", path: source.path)
      }
      dimensions.append(Int(d))
    }
    let rawType = try read(UInt32.self, "type of '\(name)'")
    guard let type = GGMLType(rawValue: rawType) else {
      throw ModelIOError(.unknownDType, "tensor '\(name)': unknown ggml type \(rawType)", path: source.path)
    }
    let offset = try readCount("offset of '\(name)'", code: .outOfBounds)
    do {
      return try GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: offset, alignment: alignment)
    } catch {
      throw source.path.map { error.at($0) } ?? error
    }
  }
}
