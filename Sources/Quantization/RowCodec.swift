import GGML

/// Dispatch from a `QuantFormat` to its codec, one row at a time. Every format stores rows independently, so a
/// tensor is quantized, dequantized and decoded row by row.
enum RowCodec {
  /// Quantizes one row of `x.count` weights into `out` (`format.rowSizeInBytes(columns:)` bytes).
  static func quantizeRow(
    _ format: QuantFormat, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer,
    clip: IntegerCodec.Clip, variant: KernelVariant = .best
  ) {
    switch format.scheme {
    case .f32, .f16, .bf16: FloatCodec.quantizeRow(format.scheme, x, out)
    case .integer(let bits):
      IntegerCodec.quantizeRow(x, out, bits: bits, group: format.groupSize, symmetric: format.symmetric, clip: clip)
    case .nf4:
      if case .threshold(let t) = clip {
        NF4Codec.quantizeRow(x, out, group: format.groupSize, threshold: t)
      } else {
        NF4Codec.quantizeRow(x, out, group: format.groupSize, threshold: .infinity)
      }
    case .ternary: TernaryCodec.quantizeRow(x, out, group: format.groupSize)
    case .affine(let bits): AffineCodec.quantizeRow(x, out, bits: bits, group: format.groupSize!)
    case .ggml(let type):
      if variant == .reference { GGMLEncode.reference(type, x, into: out) } else { GGMLEncode.fast(type, x, into: out) }
    }
  }

  /// Dequantizes one row.
  static func dequantizeRow(
    _ format: QuantFormat, _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, variant: KernelVariant
  ) {
    let fast = variant != .reference
    switch format.scheme {
    case .f32, .f16, .bf16:
      if fast { FloatCodec.dequantizeRowFast(format.scheme, src, y) } else { FloatCodec.dequantizeRowReference(format.scheme, src, y) }
    case .integer(let bits):
      if fast {
        IntegerCodec.dequantizeRowFast(src, y, bits: bits, group: format.groupSize, symmetric: format.symmetric)
      } else {
        IntegerCodec.dequantizeRowReference(src, y, bits: bits, group: format.groupSize, symmetric: format.symmetric)
      }
    case .nf4:
      if fast { NF4Codec.dequantizeRowFast(src, y, group: format.groupSize) } else { NF4Codec.dequantizeRowReference(src, y, group: format.groupSize) }
    case .ternary:
      if fast { TernaryCodec.dequantizeRowFast(src, y, group: format.groupSize) } else { TernaryCodec.dequantizeRowReference(src, y, group: format.groupSize) }
    case .affine(let bits):
      if fast {
        AffineCodec.dequantizeRowFast(src, y, bits: bits, group: format.groupSize!)
      } else {
        AffineCodec.dequantizeRowReference(src, y, bits: bits, group: format.groupSize!)
      }
    case .ggml(let type):
      if fast { GGMLDecode.fast(type, src, into: y) } else { GGMLDecode.reference(type, src, into: y) }
    }
  }

  /// Decodes one row to integer codes with per-16 scales and offsets.
  /// - Precondition: `format.hasIntegerCodes`.
  static func decodeIntRow(_ format: QuantFormat, _ src: UnsafeRawBufferPointer, columns: Int, into row: DecodedIntRow) {
    switch format.scheme {
    case .integer(let bits):
      IntegerCodec.decodeInt(src, columns: columns, bits: bits, group: format.groupSize, symmetric: format.symmetric, into: row)
    case .ternary: TernaryCodec.decodeInt(src, columns: columns, group: format.groupSize, into: row)
    case .ggml(let type): GGMLIntDecode.decode(type, src, columns: columns, into: row)
    case .f32, .f16, .bf16, .nf4, .affine: preconditionFailure("\(format.name) has no integer codes")
    }
  }
}
