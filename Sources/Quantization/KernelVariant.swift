import CKernels

/// Which implementation of a kernel to run. `reference` defines the answer; the others are tested against it
/// over `tailLengths` (STYLE §6).
public enum KernelVariant: String, CaseIterable, Sendable, Codable {
  /// Slow and obviously right: one value at a time, Double accumulators.
  case reference
  /// Block loops, multiple SIMD accumulators, fused integer dots, all in Swift.
  case simd
  /// `simd`, except the int2 … int8 GEMV with per-vector int8 activations and the GEMV of ggml's legacy block
  /// types and K-quants with 32-value activation blocks, which run the C kernels (`CKernels`) with the
  /// instruction set chosen at startup (AVX-512 VNNI where the CPU has it, else AVX2 + FMA + F16C, else their
  /// portable C table).
  case intrinsics
  /// `intrinsics` with the portable C table forced: the C fallback on any CPU, kept tested. `best` never picks it.
  case portableC
  /// `intrinsics` with the AVX2 table forced where the CPU has AVX2, FMA and F16C (else the portable table), so
  /// CPUs with AVX-512 test it too. `best` never picks it.
  case avx2C

  /// The variant used when the caller does not choose; fixed at startup: `intrinsics` when the CPU has a vector
  /// table in `CKernels`, else `simd` (the Swift kernels beat plain C).
  public static let best: KernelVariant = IntDot.nativeKernels == IntDot.portableKernels ? .simd : .intrinsics

  /// The instruction set the int4 / int8 GEMV uses under this variant: `avx512-vnni`, `avx2`, `portable`, or `swift`.
  public var integerGEMVTable: String {
    switch self {
    case .reference, .simd: return "swift"
    case .intrinsics: return String(cString: IntDot.nativeKernels.pointee.name)
    case .portableC: return String(cString: IntDot.portableKernels.pointee.name)
    case .avx2C: return String(cString: IntDot.avx2Kernels.pointee.name)
    }
  }
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
