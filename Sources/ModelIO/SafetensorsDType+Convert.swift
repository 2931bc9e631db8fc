#if canImport(TensorCore)
  import TensorCore
#endif

/// Conversions between the float dtypes' little-endian bytes and `Float`: a reference decoder that defines the
/// answer, a fast one that must match it bit for bit, and the encoder the writer uses.
extension SafetensorsDType {
  /// Decodes `raw`, which holds `raw.count / byteCount` little-endian elements of a float type, one element at a
  /// time through `Half`. F16 and BF16 widen exactly: every binary16 and bfloat16 value is a binary32 value.
  /// Slow and obviously right; `decodeFloats` is tested against it.
  /// - Precondition: `convertsToFloat` and `raw.count` a multiple of `byteCount`; callers check both.
  public func decodeFloatsReference(_ raw: UnsafeRawBufferPointer) -> [Float] {
    precondition(convertsToFloat && raw.count % byteCount == 0, "\(rawValue): cannot decode \(raw.count) bytes")
    let n = raw.count / byteCount
    return (0..<n).map { i in
      switch self {
      case .f32: Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
      case .f16: Half.float(fromF16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      default: Half.float(fromBF16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      }
    }
  }

  /// Every binary16 bit pattern widened by `Half.float(fromF16:)`: 65,536 floats, 256 KiB, built on first use.
  /// The default x86-64 target has no F16C instructions, so each `Float16` widening is a library call
  /// (measured 11 ns per value); a lookup is a load.
  static let f16Table: [Float] = (0...UInt16.max).map { Half.float(fromF16: $0) }

  /// Same result as `decodeFloatsReference`, bit for bit: F32 is one copy on little-endian hosts, F16 a lookup
  /// in `f16Table`, BF16 a shift into the high half of the binary32 pattern.
  /// - Precondition: as for `decodeFloatsReference`.
  public func decodeFloats(_ raw: UnsafeRawBufferPointer) -> [Float] {
    precondition(convertsToFloat && raw.count % byteCount == 0, "\(rawValue): cannot decode \(raw.count) bytes")
    let n = raw.count / byteCount
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
      decodeFloats(raw, into: UnsafeMutableBufferPointer(rebasing: out[0..<n]))
      initialized = n
    }
  }

  /// `decodeFloats(_:)` written into `out` (a streamed weight's own buffer), bit for bit the same values.
  /// - Precondition: as for `decodeFloatsReference`, and `out.count` is the number of values in `raw`.
  public func decodeFloats(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
    precondition(convertsToFloat && raw.count % byteCount == 0, "\(rawValue): cannot decode \(raw.count) bytes")
    let n = raw.count / byteCount
    precondition(out.count == n, "\(rawValue): \(n) values into a buffer of \(out.count)")
    switch self {
    case .f32:
      #if _endian(little)
        UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
      #else
        for i in 0..<n {
          out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
      #endif
    case .f16:
      SafetensorsDType.f16Table.withUnsafeBufferPointer { table in
        for i in 0..<n {
          out[i] = table[Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))]
        }
      }
    default:
      for i in 0..<n {
        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        out[i] = Float(bitPattern: UInt32(bits) << 16)
      }
    }
  }

  /// Appends `values` as little-endian elements of a float type, rounding to nearest even for F16 and BF16
  /// (`Half.f16Bits`, `Half.bf16Bits`).
  /// - Precondition: `convertsToFloat`.
  func encodeFloats(_ values: [Float], into bytes: inout [UInt8]) {
    precondition(convertsToFloat, "\(rawValue) is not a float type")
    let start = bytes.count
    bytes.append(contentsOf: repeatElement(0, count: values.count * byteCount))
    bytes.withUnsafeMutableBytes { out in
      for (i, v) in values.enumerated() {
        let at = start + i * byteCount
        switch self {
        case .f32: out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: at, as: UInt32.self)
        case .f16: out.storeBytes(of: Half.f16Bits(v).littleEndian, toByteOffset: at, as: UInt16.self)
        default: out.storeBytes(of: Half.bf16Bits(v).littleEndian, toByteOffset: at, as: UInt16.self)
        }
      }
    }
  }
}
