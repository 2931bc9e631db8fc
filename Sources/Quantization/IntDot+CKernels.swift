import CKernels

/// The int4 / int8 GEMV of the `IntegerCodec` formats through `CKernels` (variants `intrinsics` and `portableC`).
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

  /// Longest row the C kernels take: with ≤ 2²⁰ values per row, every Int32 lane's final Σ (u − z)·a stays below
  /// 2³¹ (int8: 2¹⁴ steps × 4·255·127), so the lane arithmetic, exact mod 2³², gives it exactly.
  static let cKernelMaxColumns = 1 << 20

  /// The `CKernels` table of `variant`, or nil for the Swift variants.
  static func cKernels(_ variant: KernelVariant) -> UnsafePointer<bp_int_gemv_kernels>? {
    switch variant {
    case .intrinsics: return nativeKernels
    case .portableC: return portableKernels
    case .reference, .simd: return nil
    }
  }

  /// The K-quants with a `CKernels` GEMV against 32-value activation blocks.
  static let cKQuants: Set<GGMLType> = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

  /// The legacy block types with a `CKernels` GEMV (`legacy_gemv`) against 32-value activation blocks, and the
  /// `kind` that names each there.
  static let cLegacyKinds: [GGMLType: Int32] = [.q5_0: 0, .q4_1: 1, .q5_1: 2]

  /// Whether `gemvInt8` of a `[_, columns]` matrix in `format` against `activationBlock`-value blocks runs in C
  /// under the `CKernels` variants: a `cLayout` exists, or a type in `cKQuants` or `cLegacyKinds` with blocks of 32.
  static func hasCKernel(_ format: QuantFormat, columns: Int, rowBytes: Int, activationBlock: Int) -> Bool {
    if case .ggml(let type) = format.scheme, cKQuants.contains(type) || cLegacyKinds[type] != nil, activationBlock == 32,
      columns > 0 { return true }
    return cLayout(format, columns: columns, rowBytes: rowBytes, activationBlock: activationBlock) != nil
  }

  /// The C layout of a `[_, columns]` matrix against activations in blocks of `activationBlock` values, or nil when
  /// the C kernels do not take the pair: int2 … int8 (`IntegerCodec`) with one activation scale for the vector
  /// (`activationBlock >= columns`), and ggml's q4_0 / q8_0 with blocks of 32 (their blocks are symmetric groups of
  /// 32 in the same layout; q8_0's codes are signed).
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

extension PackedTensor {
  /// `gemvInt8` through `kernels`, each thread's rows in one C call (which prepares its own copy of the
  /// activations: O(columns), the cost of about one row). `layout` comes from `IntDot.cLayout` for `a.blockSize`.
  func gemvInt8C(
    _ a: Q8Activations, _ layout: bp_int_layout, _ kernels: UnsafePointer<bp_int_gemv_kernels>,
    into y: UnsafeMutableBufferPointer<Float>, threads: Int
  ) {
    // The C side reads 32·chunks codes per group without bounds checks.
    precondition(a.codes.count >= layout.groups * 32 * layout.chunks
      && (layout.group_scales == 0 ? a.blockSize >= columns : a.scales.count >= layout.groups),
      "activations: \(a.codes.count) codes in blocks of \(a.blockSize) for \(layout.groups) groups of \(layout.chunks) chunks")
    let gemv = kernels.pointee.gemv!
    a.codes.withUnsafeBufferPointer { codes in
      a.scales.withUnsafeBufferPointer { scales in
        splitRows(threads: threads, y) { range, out in
          withRows(range) { src in
            gemv(layout, src.baseAddress?.assumingMemoryBound(to: UInt8.self), range.count, codes.baseAddress,
              scales.baseAddress, out.baseAddress)
          }
        }
      }
    }
  }

  /// A K-quant GEMV (`IntDot.cKQuants`) against 32-value activation blocks through `kernels`, each
  /// thread's rows in one C call (which prepares its own copy of the activations).
  func gemvKQuantC(
    _ type: GGMLType, _ a: Q8Activations, _ kernels: UnsafePointer<bp_int_gemv_kernels>,
    into y: UnsafeMutableBufferPointer<Float>, threads: Int
  ) {
    let superBlocks = columns / 256
    precondition(IntDot.cKQuants.contains(type) && a.blockSize == 32 && a.codes.count >= 256 * superBlocks
      && a.scales.count >= 8 * superBlocks,
      "\(type): activations \(a.codes.count) codes in blocks of \(a.blockSize) for \(superBlocks) super-blocks")
    let table = kernels.pointee
    let gemv: ((UnsafePointer<UInt8>?, Int, Int, Int, UnsafePointer<Int8>?, UnsafePointer<Float>?,
      UnsafeMutablePointer<Float>?) -> Void)?
    switch type {
    case .q2_K: gemv = table.q2_k_gemv
    case .q3_K: gemv = table.q3_k_gemv
    case .q4_K: gemv = table.q4_k_gemv
    case .q5_K: gemv = table.q5_k_gemv
    default: gemv = table.q6_k_gemv
    }
    let rowBytes = rowSizeInBytes
    a.codes.withUnsafeBufferPointer { codes in
      a.scales.withUnsafeBufferPointer { scales in
        splitRows(threads: threads, y) { range, out in
          withRows(range) { src in
            gemv!(src.baseAddress?.assumingMemoryBound(to: UInt8.self), rowBytes, range.count, superBlocks,
              codes.baseAddress, scales.baseAddress, out.baseAddress)
          }
        }
      }
    }
  }

  /// q4_1, q5_0 or q5_1 (`IntDot.cLegacyKinds`) against 32-value activation blocks through `kernels`, each thread's
  /// rows in one C call (which prepares its own copy of the activations).
  func gemvLegacyC(
    _ kind: Int32, _ a: Q8Activations, _ kernels: UnsafePointer<bp_int_gemv_kernels>,
    into y: UnsafeMutableBufferPointer<Float>, threads: Int
  ) {
    let blocks = columns / 32
    precondition(a.blockSize == 32 && a.codes.count >= 32 * blocks && a.scales.count >= blocks,
      "\(format.name): activations \(a.codes.count) codes in blocks of \(a.blockSize) for \(blocks) blocks")
    let gemv = kernels.pointee.legacy_gemv!, rowBytes = rowSizeInBytes
    a.codes.withUnsafeBufferPointer { codes in
      a.scales.withUnsafeBufferPointer { scales in
        splitRows(threads: threads, y) { range, out in
          withRows(range) { src in
            gemv(kind, src.baseAddress?.assumingMemoryBound(to: UInt8.self), rowBytes, range.count, blocks,
              codes.baseAddress, scales.baseAddress, out.baseAddress)
          }
        }
      }
    }
  }
}
