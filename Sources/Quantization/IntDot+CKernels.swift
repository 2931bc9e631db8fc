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

  /// The C layout of a `[_, columns]` int4 or int8 matrix, or nil when the C kernels do not take the format.
  static func cLayout(_ format: QuantFormat, columns: Int, rowBytes: Int) -> bp_int_layout? {
    guard case .integer(let bits) = format.scheme, bits == 4 || bits == 8, columns > 0, columns <= cKernelMaxColumns
    else { return nil }
    let length = format.groupSize ?? columns
    return bp_int_layout(
      row_bytes: rowBytes, groups: columns / length, chunks: (length + 31) / 32, bits: Int32(bits),
      symmetric: format.symmetric ? 1 : 0)
  }
}

extension PackedTensor {
  /// `gemvInt8` through `kernels`, each thread's rows in one C call (which prepares its own copy of the
  /// activations: O(columns), the cost of about one row). `a` must be per-vector (`a.blockSize >= columns`).
  func gemvInt8C(
    _ a: Q8Activations, _ layout: bp_int_layout, _ kernels: UnsafePointer<bp_int_gemv_kernels>,
    into y: UnsafeMutableBufferPointer<Float>, threads: Int
  ) {
    // The C side reads 32·chunks codes per group without bounds checks.
    precondition(a.codes.count >= layout.groups * 32 * layout.chunks && a.blockSize >= columns,
      "activations: \(a.codes.count) codes in blocks of \(a.blockSize) for \(layout.groups) groups of \(layout.chunks) chunks")
    let gemv = kernels.pointee.gemv!, scale = a.scales[0]
    a.codes.withUnsafeBufferPointer { codes in
      splitRows(threads: threads, y) { range, out in
        withRows(range) { src in
          gemv(layout, src.baseAddress?.assumingMemoryBound(to: UInt8.self), range.count, codes.baseAddress, scale, out.baseAddress)
        }
      }
    }
  }
}
