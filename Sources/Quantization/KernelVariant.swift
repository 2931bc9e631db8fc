/// Which implementation of a kernel to run. `reference` defines the answer; the others are tested against it
/// over `tailLengths` (STYLE §6).
public enum KernelVariant: String, CaseIterable, Sendable, Codable {
  /// Slow and obviously right: one value at a time, Double accumulators.
  case reference
  /// Block loops, multiple SIMD accumulators, fused integer dots: the production path.
  case simd

  /// The variant used when the caller does not choose; fixed at startup (`--kernel` may override it).
  public static let best: KernelVariant = .simd
}

/// The precision activations are multiplied in by `PackedTensor.gemv`.
public enum ActivationPrecision: String, CaseIterable, Sendable, Codable {
  /// Float activations against dequantized weights.
  case float
  /// Activations quantized to int8 in blocks of 32 (`Q8Activations`, like ggml's q8_0 pairing), integer dot
  /// products per block. Formats without integer codes (`QuantFormat.hasIntegerCodes == false`) fall back to
  /// `.float`.
  case int8
}
