import Dispatch
#if canImport(Glibc)
  import Glibc
#endif

/// Splits element-wise work over the machine's cores. The GEMMs are threaded by OpenBLAS; between them the
/// element-wise ops (softmax over the vocabulary, SwiGLU, attention rows: ~0.35 s of exp per 512-token forward on
/// SmolLM2) would otherwise run on one core while the others wait.
enum Parallel {
  /// Worker count: the online cores (2 on the target machine), at most 8.
  static let workers: Int = {
    #if canImport(Glibc)
      return max(1, min(8, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
      return 2
    #endif
  }()

  /// Calls `body` on disjoint ranges covering `0..<count`, concurrently when `count · costPerItem` is large enough
  /// to pay for the dispatch (~10 µs): `minimumWork` is in units of `costPerItem`.
  /// The ranges are contiguous, so each worker writes its own slice of the output (no sharing).
  static func forEachChunk(_ count: Int, costPerItem: Int = 1, minimumWork: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
    let chunks = min(workers, count)
    guard chunks > 1, count * costPerItem >= minimumWork else {
      body(0..<count)
      return
    }
    withoutActuallyEscaping(body) { body in
      let box = UncheckedBox(body)
      DispatchQueue.concurrentPerform(iterations: chunks) { c in
        box.value(c * count / chunks..<(c + 1) * count / chunks)
      }
    }
  }
}

/// Carries a non-Sendable closure into `concurrentPerform`; safe because each call gets a disjoint range.
private struct UncheckedBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
