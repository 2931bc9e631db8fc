#if canImport(TensorCore)
  import TensorCore
#endif

/// Element types of the safetensors format, spelled as in its header (`"dtype": "BF16"`).
///
/// Sizes follow the `safetensors` crate's `Dtype` (0.8). Its sub-byte types (`F4`, `F6_E2M3`, `F6_E3M2`), whose
/// sizes are counted in bits, are not listed: a file using them gives `.unknownDType`. Only `F32`, `F16` and
/// `BF16` convert to `Float` here.
public enum SafetensorsDType: String, Sendable, CaseIterable, Codable {
  case bool = "BOOL"
  case u8 = "U8"
  case i8 = "I8"
  case f8E5M2 = "F8_E5M2"
  case f8E4M3 = "F8_E4M3"
  case f8E8M0 = "F8_E8M0"
  case f8E4M3FNUZ = "F8_E4M3FNUZ"
  case f8E5M2FNUZ = "F8_E5M2FNUZ"
  case i16 = "I16"
  case u16 = "U16"
  case f16 = "F16"
  case bf16 = "BF16"
  case i32 = "I32"
  case u32 = "U32"
  case f32 = "F32"
  case f64 = "F64"
  case i64 = "I64"
  case u64 = "U64"
  case c64 = "C64"

  /// Bytes per element.
  public var byteCount: Int {
    switch self {
    case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 1
    case .i16, .u16, .f16, .bf16: 2
    case .i32, .u32, .f32: 4
    case .f64, .i64, .u64, .c64: 8
    }
  }

  /// Whether `SafetensorsFile.tensor(named:)` converts this type to `Float` (exactly, for all three).
  public var convertsToFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
}
