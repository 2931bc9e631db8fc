/// Quantization with an importance vector (llama.cpp's imatrix), byte-identical to ggml's.
extension GGMLEncode {
  /// Quantizes one row with an importance vector: ggml's `quantize_<type>(src, dst, 1, n_per_row, quant_weights)`
  /// with `quant_weights != NULL` (ggml-quants.c's `quantize_row_<type>_impl`), as `ggml_quantize_chunk` runs it
  /// for each row of a tensor when llama-quantize has an imatrix.
  ///
  /// `importance[j]` weighs column j (llama-quantize passes the mean of xⱼ² over the calibration activations). The
  /// searches minimize Σ w·(x − x̂)² instead of the unweighted fits of `reference`, with
  /// - q4_0, q4_1, q5_0, q5_1: `w = importance·√(σ² + x²)`, σ² = Σx²/n over this whole row (so the row matters,
  ///   not only its blocks);
  /// - q2_K: `w = importance·√(σ² + x²)`, σ² = Σx²/256 per super-block; q3_K, q4_K, q5_K: the same with
  ///   σ² = 2·Σx²/256;
  /// - q6_K: `w = importance`;
  /// - q8_0: ignored; the bytes are `reference`'s.
  /// Formulas per type are on `GGMLLegacyCodec+Importance.swift` and `KQuantCodec+Importance.swift`. Checked
  /// byte for byte against ggml itself (QuantizationTests' GGMLImportanceGoldenTests, scripts/ggml_quant_golden_imatrix.sh).
  /// Error: the K-quants re-choose every level against the stored scales, so `KQuantCodec`'s bound
  /// `d·|sc|/2 + dist(x, [lo, hi])` holds; the legacy types do not keep `reference`'s bound, since a trial scale
  /// smaller than max/nmax clamps the largest values of a block (by design, when they weigh little).
  /// - Parameters:
  ///   - x: one whole row (a multiple of the type's block size).
  ///   - importance: one non-negative weight per column of `x`.
  ///   - out: `type.rowSizeInBytes(x.count)` bytes.
  /// - Precondition: `type.canQuantize`, `importance.count == x.count`, `out.count == type.rowSizeInBytes(x.count)`.
  public static func weighted(
    _ type: GGMLType, _ x: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>,
    into out: UnsafeMutableRawBufferPointer
  ) {
    precondition(type.canQuantize, "quantizing to \(type.name) is not implemented")
    precondition(importance.count == x.count, "\(importance.count) importances for \(x.count) values")
    if type.blockSize == 32 {
      GGMLLegacyCodec.quantizeRowWeighted(type, x, importance: importance, out)
    } else {
      KQuantCodec.quantizeRowWeighted(type, x, importance: importance, out)
    }
  }
}
