import CKernels
import GGML

/// The int8-activation GEMV of the `IntegerCodec` int2 … int8 formats and of ggml's integer block types through
/// `CKernels` (variants `intrinsics` and `portableC`).
///
/// Swift 6.3 does not emit `vpdpbusd` from plain loops (`IntDot+NibblePlanes.swift`), which multiplies 64 unsigned
/// codes by 64 signed activations per instruction, the exact shape of these formats against `Q8Activations`, so
/// this path is C with intrinsics (layouts and bounds in `CKernels.h` and `int_gemv_avx512.c`). The Swift side only
/// checks the shape and splits rows over threads.
extension IntDot {
  /// The fastest `CKernels` table for this CPU, chosen once.
  nonisolated(unsafe) static let nativeKernels: UnsafePointer<bp_int_gemv_kernels> = bp_int_gemv_best()
  /// The portable C table.
  nonisolated(unsafe) static let portableKernels: UnsafePointer<bp_int_gemv_kernels> = bp_int_gemv_portable()
  /// The AVX2 table where the CPU has AVX2, FMA and F16C, else the portable one.
  nonisolated(unsafe) static let avx2Kernels: UnsafePointer<bp_int_gemv_kernels> = bp_int_gemv_avx2() ?? bp_int_gemv_portable()

  /// Longest row the C kernels take: with ≤ 2²⁰ values per row, every Int32 lane's final Σ (u − z)·a stays below
  /// 2³¹ (int8: 2¹⁴ steps × 4·255·127), so the lane arithmetic, exact mod 2³², gives it exactly.
  static let cKernelMaxColumns = 1 << 20

  /// The `CKernels` table of `variant`, or nil for the Swift variants.
  static func cKernels(_ variant: KernelVariant) -> UnsafePointer<bp_int_gemv_kernels>? {
    switch variant {
    case .intrinsics: return nativeKernels
    case .portableC: return portableKernels
    case .avx2C: return avx2Kernels
    case .reference, .simd: return nil
    }
  }

  /// The K-quants with a `CKernels` GEMV against 32-value activation blocks.
  static let cKQuants: Set<GGMLType> = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

  /// The legacy block types with a `CKernels` GEMV (`legacy_gemv`) against 32-value activation blocks, and the
  /// `kind` that names each there.
  static let cLegacyKinds: [GGMLType: Int32] = [.q5_0: 0, .q4_1: 1, .q5_1: 2]

  /// Which `CKernels` function runs a `gemvInt8`.
  enum CCall {
    /// `gemv` with this layout (`cLayout`).
    case integer(bp_int_layout)
    /// `q2_k_gemv` … `q6_k_gemv`.
    case kQuant(GGMLType)
    /// `legacy_gemv` with this kind.
    case legacy(kind: Int32)
  }

  /// The C function for `gemvInt8` of a `[_, columns]` matrix in `format` against activations in blocks of
  /// `activationBlock` values, or nil when the C kernels do not take the pair: a `cLayout`, or a type in `cKQuants`
  /// or `cLegacyKinds` with blocks of 32.
  static func cCall(_ format: QuantFormat, columns: Int, rowBytes: Int, activationBlock: Int) -> CCall? {
    if let layout = cLayout(format, columns: columns, rowBytes: rowBytes, activationBlock: activationBlock) {
      return .integer(layout)
    }
    guard case .ggml(let type) = format.scheme, activationBlock == 32, columns > 0 else { return nil }
    if cKQuants.contains(type) { return .kQuant(type) }
    return cLegacyKinds[type].map { .legacy(kind: $0) }
  }

  /// The C layout of a `[_, columns]` matrix against activations in blocks of `activationBlock` values, or nil when
  /// the shared integer kernel does not take the pair: int2 … int8 (`IntegerCodec`) with one activation scale for
  /// the vector (`activationBlock >= columns`), and ggml's q4_0 / q8_0 with blocks of 32 (their blocks are
  /// symmetric groups of 32 in the same layout; q8_0's codes are signed).
  static func cLayout(_ format: QuantFormat, columns: Int, rowBytes: Int, activationBlock: Int) -> bp_int_layout? {
    guard columns > 0, columns <= cKernelMaxColumns else { return nil }
    switch format.scheme {
    case .integer(let bits) where (2...8).contains(bits) && activationBlock >= columns:
      let length = format.groupSize ?? columns
      return bp_int_layout(
        row_bytes: rowBytes, groups: columns / length, chunks: (length + 31) / 32, bits: Int32(bits),
        symmetric: format.symmetric ? 1 : 0, signed_codes: 0, group_scales: 0)
    case .ggml(let type) where (type == .q4_0 || type == .q8_0) && activationBlock == 32 && columns % 32 == 0:
      return bp_int_layout(
        row_bytes: rowBytes, groups: columns / 32, chunks: 1, bits: type == .q4_0 ? 4 : 8, symmetric: 1,
        signed_codes: type == .q8_0 ? 1 : 0, group_scales: 1)
    default:
      return nil
    }
  }
}

extension IntDot {
  /// The `CKernels` GEMM format of a `[_, columns]` matrix against the activation block of `activationBlockSize`
  /// (32 for GGML types, one per token otherwise), or nil when no C GEMV takes it (`cCall`).
  static func gemmCall(_ format: QuantFormat, columns: Int, rowBytes: Int) -> bp_gemm_format? {
    let block: Int
    if case .ggml = format.scheme { block = 32 } else { block = max((columns + 31) / 32 * 32, 32) }
    guard let call = cCall(format, columns: columns, rowBytes: rowBytes, activationBlock: block) else { return nil }
    var f = bp_gemm_format()
    f.row_bytes = rowBytes
    switch call {
    case .integer(let layout):
      f.family = BP_GEMM_INTEGER
      f.layout = layout
    case .legacy(let kind):
      f.family = BP_GEMM_LEGACY
      f.legacy_kind = kind
      f.blocks = columns / 32
    case .kQuant(let type):
      f.blocks = columns / 256
      switch type {
      case .q2_K: f.family = BP_GEMM_Q2_K
      case .q3_K: f.family = BP_GEMM_Q3_K
      case .q4_K: f.family = BP_GEMM_Q4_K
      case .q5_K: f.family = BP_GEMM_Q5_K
      default: f.family = BP_GEMM_Q6_K
      }
    }
    return f
  }
}

extension PackedTensor {
  /// `gemvInt8` through `kernels` as `call` says (from `IntDot.cCall` for `a.blockSize`), each thread's rows in one
  /// C call (which prepares its own copy of the activations: O(columns), the cost of about one row).
  func gemvInt8C(
    _ call: IntDot.CCall, _ a: Q8Activations, _ kernels: UnsafePointer<bp_int_gemv_kernels>,
    into y: UnsafeMutableBufferPointer<Float>, threads: Int
  ) {
    // The C side reads the activations without bounds checks.
    let table = kernels.pointee, rowBytes = rowSizeInBytes
    switch call {
    case .integer(let layout):
      precondition(a.codes.count >= layout.groups * 32 * layout.chunks
        && (layout.group_scales == 0 ? a.blockSize >= columns : a.scales.count >= layout.groups),
        "activations: \(a.codes.count) codes in blocks of \(a.blockSize) for \(layout.groups) groups of \(layout.chunks) chunks")
    case .kQuant, .legacy:
      precondition(a.blockSize == 32 && a.codes.count >= columns && a.scales.count >= columns / 32,
        "\(format.name): activations \(a.codes.count) codes in blocks of \(a.blockSize) for \(columns) columns")
    }
    a.codes.withUnsafeBufferPointer { codes in
      a.scales.withUnsafeBufferPointer { scales in
        splitRows(threads: threads, y) { range, out in
          withRows(range) { src in
            let w = src.baseAddress?.assumingMemoryBound(to: UInt8.self), n = range.count
            let (c, d, o) = (codes.baseAddress, scales.baseAddress, out.baseAddress)
            switch call {
            case .integer(let layout): table.gemv!(layout, w, n, c, d, o)
            case .legacy(let kind): table.legacy_gemv!(kind, w, rowBytes, n, columns / 32, c, d, o)
            case .kQuant(.q2_K): table.q2_k_gemv!(w, rowBytes, n, columns / 256, c, d, o)
            case .kQuant(.q3_K): table.q3_k_gemv!(w, rowBytes, n, columns / 256, c, d, o)
            case .kQuant(.q4_K): table.q4_k_gemv!(w, rowBytes, n, columns / 256, c, d, o)
            case .kQuant(.q5_K): table.q5_k_gemv!(w, rowBytes, n, columns / 256, c, d, o)
            case .kQuant(let type):
              precondition(type == .q6_K, "\(type) has no C kernel")
              table.q6_k_gemv!(w, rowBytes, n, columns / 256, c, d, o)
            }
          }
        }
      }
    }
  }
}
