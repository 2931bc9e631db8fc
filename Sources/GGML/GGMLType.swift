/// The element type of a GGUF tensor, with ggml's ids (`enum ggml_type` in ggml.h) and spec spelling.
///
/// The one home of this spec in BitPlan: ModelIO (GGUF reading and writing) and Quantization (candidate formats,
/// kernels) both use this enum. Every id ggml defines is listed, so that byte sizes are right even for types this
/// package cannot decode. Ids ggml has removed (4, 5: Q4_2/Q4_3; 31...33: Q4_0_4_4/_4_8/_8_8; 36...38:
/// IQ4_NL_4_4/_4_8/_8_8) are not cases: `init(rawValue:)` returns nil for them, as ggml's own loader rejects them.
///
/// A tensor row of `n` values is `n / blockSize` blocks of `bytesPerBlock` bytes each; `n` must be a multiple of
/// `blockSize` (ggml's `ggml_row_size`). Block layouts are in `GGMLLayout` and on the decoders (`GGMLDecode`):
///
/// | type | block | bytes | layout |
/// | --- | --- | --- | --- |
/// | q4_0 | 32 | 18 | d f16, qs[16] (low nibble = value j, high nibble = value j+16) |
/// | q4_1 | 32 | 20 | d f16, m f16, qs[16] |
/// | q5_0 | 32 | 22 | d f16, qh u32 (5th bits), qs[16] |
/// | q5_1 | 32 | 24 | d f16, m f16, qh u32, qs[16] |
/// | q8_0 | 32 | 34 | d f16, qs[32] int8 |
/// | q2_K | 256 | 84 | scales[16] (4-bit scale, 4-bit min), qs[64], d f16, dmin f16 |
/// | q3_K | 256 | 110 | hmask[32], qs[64], scales[12] (6-bit), d f16 |
/// | q4_K | 256 | 144 | d f16, dmin f16, scales[12] (6-bit scale + min), qs[128] |
/// | q5_K | 256 | 176 | d f16, dmin f16, scales[12], qh[32], qs[128] |
/// | q6_K | 256 | 210 | ql[128], qh[64], scales[16] int8, d f16 |
public enum GGMLType: UInt32, Sendable, CaseIterable, Codable {
  /// IEEE binary32 and binary16.
  case f32 = 0, f16 = 1
  /// Legacy 32-value blocks: 4-bit symmetric (`d`) and asymmetric (`d`, `m`).
  case q4_0 = 2, q4_1 = 3
  /// Legacy 32-value blocks with a fifth bit per value.
  case q5_0 = 6, q5_1 = 7
  /// 8-bit blocks; Q8_1 also stores the block sum (used for activations).
  case q8_0 = 8, q8_1 = 9
  /// K-quants: 256-value super-blocks with 6- or 8-bit sub-block scales.
  case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
  /// i-quants (lattice codebooks); sizes only, no decoder here.
  case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
  /// Plain integers and binary64.
  case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
  /// i-quant, 1.75 bits per weight; sizes only.
  case iq1_M = 29
  /// bfloat16.
  case bf16 = 30
  /// Ternary quants; sizes only.
  case tq1_0 = 34, tq2_0 = 35
  /// Microscaling FP4 (shared E8M0 exponent) and NVIDIA FP4 blocks; sizes only.
  case mxfp4 = 39, nvfp4 = 40
  /// 1-bit blocks of 128; sizes only.
  case q1_0 = 41

  /// Super-block length of the K-quants and i-quants (`QK_K` in ggml-common.h).
  public static let superBlockSize = 256

  /// Values per block (`ggml_blck_size`): 1 for plain scalar types, 32 for the legacy quants, 256 for K-quants.
  public var blockSize: Int {
    switch self {
    case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL, .mxfp4: 32
    case .nvfp4: 64
    case .q1_0: 128
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S, .iq3_S, .iq2_S, .iq4_XS,
      .iq1_M, .tq1_0, .tq2_0:
      Self.superBlockSize
    }
  }

  /// Bytes per block (`ggml_type_size`, `sizeof(block_qX)`), from the block structs in ggml-common.h (QK_K = 256).
  public var bytesPerBlock: Int {
    let k = Self.superBlockSize
    switch self {
    case .f32, .i32: return 4
    case .f16, .bf16, .i16: return 2
    case .i8: return 1
    case .i64, .f64: return 8
    case .q4_0: return 2 + 16  // d, qs[16]
    case .q4_1: return 2 + 2 + 16  // d, m, qs[16]
    case .q5_0: return 2 + 4 + 16  // d, qh[4], qs[16]
    case .q5_1: return 2 + 2 + 4 + 16  // d, m, qh[4], qs[16]
    case .q8_0: return 2 + 32  // d, qs[32]
    case .q8_1: return 2 + 2 + 32  // d, s (f16), qs[32]; gguf-py's table still says 40, ggml's static_assert 36
    case .q2_K: return 2 + 2 + k / 16 + k / 4  // scales[16], qs[64], d, dmin = 84
    case .q3_K: return 2 + k / 4 + k / 8 + 12  // hmask[32], qs[64], scales[12], d = 110
    case .q4_K: return 2 + 2 + k / 2 + 12  // d, dmin, scales[12], qs[128] = 144
    case .q5_K: return 2 + 2 + k / 2 + k / 8 + 12  // d, dmin, scales[12], qh[32], qs[128] = 176
    case .q6_K: return 2 + k / 2 + k / 4 + k / 16  // ql[128], qh[64], scales[16], d = 210
    case .q8_K: return 4 + k + k / 8  // d (f32), qs[256], bsums[16] (int16) = 292
    case .iq2_XXS: return 2 + k / 4
    case .iq2_XS: return 2 + k / 4 + k / 32
    case .iq3_XXS: return 2 + k / 4 + k / 8
    case .iq1_S: return 2 + k / 8 + k / 16
    case .iq4_NL: return 2 + 16
    case .iq3_S: return 2 + k / 4 + k / 8 + k / 32 + 4
    case .iq2_S: return 2 + k / 4 + k / 16
    case .iq4_XS: return 2 + 2 + k / 2 + k / 64
    case .iq1_M: return k / 8 + k / 16 + k / 32
    case .tq1_0: return 2 + 4 * 13
    case .tq2_0: return 2 + 64
    case .mxfp4: return 1 + 16
    case .nvfp4: return 4 + 32
    case .q1_0: return 2 + 16
    }
  }

  /// The spelling used by ggml, gguf-py and `llama-quantize` (`Q4_1`, `Q6_K`, `IQ2_XXS`, `BF16`).
  public var name: String {
    switch self {
    case .f32: "F32"
    case .f16: "F16"
    case .q4_0: "Q4_0"
    case .q4_1: "Q4_1"
    case .q5_0: "Q5_0"
    case .q5_1: "Q5_1"
    case .q8_0: "Q8_0"
    case .q8_1: "Q8_1"
    case .q2_K: "Q2_K"
    case .q3_K: "Q3_K"
    case .q4_K: "Q4_K"
    case .q5_K: "Q5_K"
    case .q6_K: "Q6_K"
    case .q8_K: "Q8_K"
    case .iq2_XXS: "IQ2_XXS"
    case .iq2_XS: "IQ2_XS"
    case .iq3_XXS: "IQ3_XXS"
    case .iq1_S: "IQ1_S"
    case .iq4_NL: "IQ4_NL"
    case .iq3_S: "IQ3_S"
    case .iq2_S: "IQ2_S"
    case .iq4_XS: "IQ4_XS"
    case .i8: "I8"
    case .i16: "I16"
    case .i32: "I32"
    case .i64: "I64"
    case .f64: "F64"
    case .iq1_M: "IQ1_M"
    case .bf16: "BF16"
    case .tq1_0: "TQ1_0"
    case .tq2_0: "TQ2_0"
    case .mxfp4: "MXFP4"
    case .nvfp4: "NVFP4"
    case .q1_0: "Q1_0"
    }
  }

  /// The spelling of ggml's `ggml_type_name` and llama.cpp's logs: lower case except the `_K` of the K-quants
  /// (`q4_0`, `q4_K`, `iq2_xxs`, `bf16`).
  public var ggmlName: String {
    let upper = name
    return upper.hasSuffix("_K") ? upper.dropLast(2).lowercased() + "_K" : upper.lowercased()
  }

  /// The type spelled `name`, case-insensitively (`q6_k`, `Q6_K`); nil for names ggml does not define.
  public init?(name: String) {
    let upper = name.uppercased()
    guard let match = Self.allCases.first(where: { $0.name == upper }) else { return nil }
    self = match
  }

  /// Whether `GGMLDecode` can turn this type into `Float`.
  public var canDequantize: Bool {
    switch self {
    case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K,
      .q6_K:
      true
    default: false
    }
  }

  /// Bytes of one row of `count` values, or nil when `count` is not a whole number of blocks or overflows.
  public func rowSizeInBytes(_ count: Int) -> Int? {
    guard count >= 0, count % blockSize == 0 else { return nil }
    let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
    return overflow ? nil : bytes
  }

  /// Bits per weight including block overhead: `8 · bytesPerBlock / blockSize` (Q4_0 → 4.5, Q8_0 → 8.5,
  /// Q4_K → 4.5, Q6_K → 6.5625).
  public var bitsPerWeight: Double { Double(8 * bytesPerBlock) / Double(blockSize) }

  /// Whether `GGMLEncode` can quantize `Float` to this type: the legacy types q4_0 … q8_0 and the K-quants
  /// q2_K … q6_K (the types a weight is stored in; q8_1 and q8_K are activation formats).
  public var canQuantize: Bool {
    switch self {
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: true
    default: false
    }
  }

  /// Nominal width of one stored code in bits (4 for q4_0 and q4_K, 6 for q6_K, 16 for f16), before block scales;
  /// nil where a code is not a fixed-width integer (lattice i-quants, base-3 packed tq1_0).
  public var codeBits: Int? {
    switch self {
    case .q1_0: 1
    case .q2_K, .tq2_0: 2
    case .q3_K: 3
    case .q4_0, .q4_1, .q4_K, .iq4_NL, .iq4_XS, .mxfp4, .nvfp4: 4
    case .q5_0, .q5_1, .q5_K: 5
    case .q6_K: 6
    case .q8_0, .q8_1, .q8_K, .i8: 8
    case .f16, .bf16, .i16: 16
    case .f32, .i32: 32
    case .f64, .i64: 64
    case .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S, .iq3_S, .iq2_S, .iq1_M, .tq1_0: nil
    }
  }

  /// Whether a block stores a minimum (affine, `x̂ = d·q + m` or `d·sc·q − dmin·m`) rather than a scale only.
  public var hasMinimum: Bool {
    switch self {
    case .q4_1, .q5_1, .q2_K, .q4_K, .q5_K: true
    default: false
    }
  }
}
