import TensorCore

/// The unquantized storage formats: f32 (little-endian binary32), f16 (binary16) and bf16, each value rounded to
/// nearest even. Error: 0 for f32; relative 2⁻¹¹ for f16 in its normal range (absolute 2⁻²⁵ below 2⁻¹⁴, overflow
/// to ±inf past 65504); relative 2⁻⁸ for bf16.
enum FloatCodec {
  /// Bytes per value.
  static func width(_ scheme: QuantFormat.Scheme) -> Int { scheme == .f32 ? 4 : 2 }

  /// Encodes one row.
  static func quantizeRow(_ scheme: QuantFormat.Scheme, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer) {
    precondition(out.count == x.count * width(scheme), "\(scheme): \(x.count) values into \(out.count) bytes")
    guard let o = out.baseAddress else { return }
    for i in 0..<x.count {
      switch scheme {
      case .f32: o.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
      case .f16: o.storeBytes(of: Half.f16Bits(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
      case .bf16: o.storeBytes(of: Half.bf16Bits(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
      default: preconditionFailure("\(scheme) is not a float format")
      }
    }
  }

  /// Decodes one row through `TensorCore.Half` (the reference: one value at a time).
  static func dequantizeRowReference(_ scheme: QuantFormat.Scheme, _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
    precondition(src.count == y.count * width(scheme), "\(scheme): \(src.count) bytes for \(y.count) values")
    for i in 0..<y.count {
      switch scheme {
      case .f32: y[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
      case .f16: y[i] = Half.float(fromF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      case .bf16: y[i] = Half.float(fromBF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      default: preconditionFailure("\(scheme) is not a float format")
      }
    }
  }

  /// Typed-pointer loops the compiler vectorizes (f16 through the hardware `Float16` conversion, bf16 by shifting
  /// the bits up). Exact, so bit-identical to the reference.
  static func dequantizeRowFast(_ scheme: QuantFormat.Scheme, _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
    precondition(src.count == y.count * width(scheme), "\(scheme): \(src.count) bytes for \(y.count) values")
    guard let s = src.baseAddress, let o = y.baseAddress else { return }
    switch scheme {
    case .f32: o.update(from: s.assumingMemoryBound(to: Float.self), count: y.count)
    case .f16:
      let h = s.assumingMemoryBound(to: Float16.self)
      for i in 0..<y.count { o[i] = Float(h[i]) }
    case .bf16:
      let h = s.assumingMemoryBound(to: UInt16.self)
      for i in 0..<y.count { o[i] = Float(bitPattern: UInt32(h[i]) << 16) }
    default: preconditionFailure("\(scheme) is not a float format")
    }
  }
}
