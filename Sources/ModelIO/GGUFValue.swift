/// The type tag of a GGUF metadata value (`enum gguf_type` in gguf.h), spelled as in the spec.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
  /// Scalars (ids 0-7), string (8).
  case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8
  /// Element type (u32), count (u64), elements.
  case array = 9
  /// 64-bit scalars.
  case uint64 = 10, int64 = 11, float64 = 12

  /// Bytes of one value for the fixed-size types; nil for `string` and `array`.
  public var fixedSize: Int? {
    switch self {
    case .uint8, .int8, .bool: 1
    case .uint16, .int16: 2
    case .uint32, .int32, .float32: 4
    case .uint64, .int64, .float64: 8
    case .string, .array: nil
    }
  }

  /// The fewest bytes one value of this type occupies in a file: its fixed size, the 8-byte length of a string,
  /// or the 4-byte element type plus 8-byte count of an array. Used to reject counts the file cannot hold.
  public var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// One GGUF metadata value. Arrays keep their element type, so that an empty array round-trips.
public indirect enum GGUFValue: Sendable, Equatable {
  /// `u8`
  case uint8(UInt8)
  /// `i8`
  case int8(Int8)
  /// `u16`
  case uint16(UInt16)
  /// `i16`
  case int16(Int16)
  /// `u32`
  case uint32(UInt32)
  /// `i32`
  case int32(Int32)
  /// `f32`
  case float32(Float)
  /// `bool`, one byte 0 or 1
  case bool(Bool)
  /// `string`: u64 byte length, then UTF-8
  case string(String)
  /// `u64`
  case uint64(UInt64)
  /// `i64`
  case int64(Int64)
  /// `f64`
  case float64(Double)
  /// Elements all of type `elementType` (which may itself be `.array`: nested arrays).
  case array(GGUFValueType, [GGUFValue])

  /// The type tag written before this value.
  public var type: GGUFValueType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .bool: .bool
    case .string: .string
    case .uint64: .uint64
    case .int64: .int64
    case .float64: .float64
    case .array: .array
    }
  }

  /// The value as an `Int` when it is an integer of any width that fits; nil otherwise (also for `bool`).
  public var intValue: Int? {
    switch self {
    case .uint8(let v): Int(v)
    case .int8(let v): Int(v)
    case .uint16(let v): Int(v)
    case .int16(let v): Int(v)
    case .uint32(let v): Int(v)
    case .int32(let v): Int(v)
    case .uint64(let v): Int(exactly: v)
    case .int64(let v): Int(v)
    default: nil
    }
  }

  /// The value as a `Double` for `float32` and `float64` (exact), nil otherwise.
  public var doubleValue: Double? {
    switch self {
    case .float32(let v): Double(v)
    case .float64(let v): v
    default: nil
    }
  }

  /// The string, for `string` values.
  public var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  /// The elements, for `array` values.
  public var arrayValue: [GGUFValue]? {
    if case .array(_, let elements) = self { return elements }
    return nil
  }

  /// A short description for messages: the type, and for arrays the element type and count.
  var typeDescription: String {
    if case .array(let t, let elements) = self { return "array of \(elements.count) \(t)" }
    return "\(type)"
  }
}

extension GGUFValue: CustomStringConvertible {
  /// The value as `bitplan inspect` prints it; long arrays are elided after 8 elements.
  public var description: String {
    switch self {
    case .uint8(let v): "\(v)"
    case .int8(let v): "\(v)"
    case .uint16(let v): "\(v)"
    case .int16(let v): "\(v)"
    case .uint32(let v): "\(v)"
    case .int32(let v): "\(v)"
    case .float32(let v): "\(v)"
    case .bool(let v): "\(v)"
    case .string(let v): "\"\(v)\""
    case .uint64(let v): "\(v)"
    case .int64(let v): "\(v)"
    case .float64(let v): "\(v)"
    case .array(_, let elements):
      "[" + elements.prefix(8).map(\.description).joined(separator: ", ")
        + (elements.count > 8 ? ", … (\(elements.count) items)]" : "]")
    }
  }
}
