/// The GGML tensor types this module can write, with their spec spelling and ids (ggml.h `enum ggml_type`).
///
/// Block geometry (bytes per block of `blockSize` weights), identical to ggml-common.h:
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
public enum GGMLType: UInt32, CaseIterable, Codable, Sendable {
  case q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
  case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14

  /// Weights per block: 32 for the legacy types, `QK_K` = 256 for K-quants.
  public var blockSize: Int {
    switch self {
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return 256
    }
  }

  /// Bytes per block (`sizeof(block_qX)` in ggml-common.h).
  public var bytesPerBlock: Int {
    switch self {
    case .q4_0: return 18
    case .q4_1: return 20
    case .q5_0: return 22
    case .q5_1: return 24
    case .q8_0: return 34
    case .q2_K: return 84
    case .q3_K: return 110
    case .q4_K: return 144
    case .q5_K: return 176
    case .q6_K: return 210
    }
  }

  /// Name as llama.cpp prints it (`ggml_type_name`): `q4_0`, `q4_K`, ...
  public var ggmlName: String {
    switch self {
    case .q4_0: return "q4_0"
    case .q4_1: return "q4_1"
    case .q5_0: return "q5_0"
    case .q5_1: return "q5_1"
    case .q8_0: return "q8_0"
    case .q2_K: return "q2_K"
    case .q3_K: return "q3_K"
    case .q4_K: return "q4_K"
    case .q5_K: return "q5_K"
    case .q6_K: return "q6_K"
    }
  }

  /// Bits per weight including block metadata: `8 · bytesPerBlock / blockSize` (q4_0 4.5, q6_K 6.5625).
  public var bitsPerWeight: Double { 8 * Double(bytesPerBlock) / Double(blockSize) }

  /// Nominal code width in bits (4 for q4_0 and q4_K, ...).
  public var codeBits: Int {
    switch self {
    case .q2_K: return 2
    case .q3_K: return 3
    case .q4_0, .q4_1, .q4_K: return 4
    case .q5_0, .q5_1, .q5_K: return 5
    case .q6_K: return 6
    case .q8_0: return 8
    }
  }

  /// Whether the type stores a per-block minimum (affine) rather than a symmetric scale only.
  public var hasMinimum: Bool {
    switch self {
    case .q4_1, .q5_1, .q2_K, .q4_K, .q5_K: return true
    case .q4_0, .q5_0, .q8_0, .q3_K, .q6_K: return false
    }
  }
}
