/// Conversions between 16-bit float encodings and `Float`.
public enum Half {
  /// IEEE 754 binary16 bits to `Float` (exact: every binary16 value is a binary32 value).
  @inlinable public static func float(fromF16 bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
  }

  /// bfloat16 bits to `Float` (exact: bf16 is the top half of a binary32).
  @inlinable public static func float(fromBF16 bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }

  /// `Float` to IEEE binary16 bits, round to nearest even (as C's `(_Float16)x` and numpy's `astype(float16)`).
  @inlinable public static func f16Bits(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
  }

  /// `Float` to bfloat16 bits, round to nearest even; NaN stays a quiet NaN (PyTorch's rule).
  @inlinable public static func bf16Bits(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
    let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
    return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
  }
}
