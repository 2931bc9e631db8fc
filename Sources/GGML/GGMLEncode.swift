/// Quantization of `Float` rows to GGML blocks, byte-identical to ggml's `quantize_row_*_ref` (no importance
/// matrix): `GGMLLegacyCodec` for q4_0 … q8_0, `KQuantCodec` (with `KQuantSearch`) for q2_K … q6_K. With an
/// importance matrix: `weighted(_:_:importance:into:)` (`GGMLEncode+Importance.swift`).
///
/// `reference` is the scalar port of ggml; `fast` is the vectorizable twin where one exists (q4_0 and q8_0,
/// `GGMLLegacyCodec+SIMD.swift`) and the reference otherwise. Both write the same bytes (QuantizationTests'
/// GGMLGoldenTests and KernelTests; GGMLTests). Error bounds are on the codecs' doc comments.
public enum GGMLEncode {
  /// Quantizes one row of `x.count` values into `out`.
  /// - Precondition: `type.canQuantize`, and `out.count == type.rowSizeInBytes(x.count)`.
  public static func reference(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
    precondition(type.canQuantize, "quantizing to \(type.name) is not implemented")
    if type.blockSize == 32 { GGMLLegacyCodec.quantizeRow(type, x, out) } else { KQuantCodec.quantizeRow(type, x, out) }
  }

  /// Quantizes one row like `reference`, with the vectorizable q4_0 and q8_0 quantizers; same bytes.
  /// - Precondition: as `reference(_:_:into:)`.
  public static func fast(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
    precondition(type.canQuantize, "quantizing to \(type.name) is not implemented")
    if type.blockSize == 32 { GGMLLegacyCodec.quantizeRowFast(type, x, out) } else { KQuantCodec.quantizeRow(type, x, out) }
  }
}
