import CKernels
import Dispatch
#if canImport(Glibc)
  import Glibc
#endif

/// The process's worker threads: element-wise loops and GEMMs are split over them here, and OpenBLAS itself runs
/// single-threaded inside each part.
///
/// Why not OpenBLAS' own threads: its workers busy-wait (`sched_yield`) for ~0.1 s after every call, so on a 2-core
/// machine they take a core away from the element-wise work between GEMMs (softmax, SwiGLU, attention rows) and from
/// the many small per-head GEMMs of attention, which OpenBLAS would also split with a thread handshake each time. A
/// profile of a SmolLM2 forward + backward spent 13% of its time in `sched_yield`. With one pool, a large GEMM is cut
/// into `workers` column (or row) panels, each a single-threaded OpenBLAS call on its own core, and small ones run
/// whole on the calling thread.
///
/// Results do not depend on timing: each output element is computed by exactly one call over the full inner
/// dimension, and the split depends only on the shape and `workers`. Parallel work started inside a task runs
/// serially (`isInsideWorker`).
public enum Parallel {
  /// Number of workers: the online cores (at most 8) unless `setWorkers` changed it.
  public static var workers: Int { state.workers }

  /// Sets the number of workers (≥ 1). Call before starting work (command-line start-up, a benchmark's setup); not
  /// while parallel work is running.
  public static func setWorkers(_ count: Int) {
    precondition(count >= 1, "need at least one worker, got \(count)")
    state.workers = count
  }

  /// Calls `body` on disjoint ranges covering `0..<count`, concurrently when `count · costPerItem` is large enough
  /// to pay for the dispatch (~10 µs): `minimumWork` is in units of `costPerItem`.
  /// The ranges are contiguous, so each worker writes its own slice of the output (no sharing).
  public static func forEachChunk(
    _ count: Int, costPerItem: Int = 1, minimumWork: Int = 1 << 16, _ body: (Range<Int>) -> Void
  ) {
    let chunks = min(workers, count)
    guard chunks > 1, count * costPerItem >= minimumWork, !isInsideWorker else {
      body(0..<count)
      return
    }
    run(chunks) { c in body(c * count / chunks..<(c + 1) * count / chunks) }
  }

  /// Calls `body(i)` for every i in `0..<count`, spread dynamically over the workers (for independent tasks of
  /// similar size, such as attention heads). Runs on the calling thread when there is one worker or one task.
  public static func forEach(_ count: Int, _ body: (Int) -> Void) {
    guard workers > 1, count > 1, !isInsideWorker else {
      for i in 0..<count { body(i) }
      return
    }
    run(count, body)
  }

  /// Runs `first` and `second`, two independent pieces of work, each whole on its own worker when there are exactly
  /// two workers (their own parallel work then runs serially, `isInsideWorker`); otherwise one after the other, each
  /// free to split itself over every worker. For two products of about equal cost, such as a linear layer's input
  /// and weight gradients: run whole side by side, neither pays for being cut in two.
  public static func sideBySide(_ first: () -> Void, _ second: () -> Void) {
    guard workers == 2, !isInsideWorker else {
      first()
      second()
      return
    }
    run(2) { $0 == 0 ? first() : second() }
  }

  /// Runs `body(0 ..< tasks)` as worker tasks: on the pool (CKernels' `bp_pool_run`, the calling thread taking
  /// tasks too), or through libdispatch when the pool is busy with another thread's job.
  ///
  /// Why a pool of our own: libdispatch wakes a sleeping thread for every call, and a forward makes about 300 such
  /// calls. On a 2-core Xeon VM the 210 linear products of a 128-token SmolLM2 forward ran at 193 GFLOP/s that way
  /// against 260 with the pool's spinning hand-off (see `thread_pool.c`).
  private static func run(_ tasks: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
      var box = UncheckedBox(body)
      let ran = withUnsafeMutablePointer(to: &box) { pointer in
        bp_pool_run(workers, tasks, { context, task in
          let box = context!.assumingMemoryBound(to: UncheckedBox<(Int) -> Void>.self)
          Parallel.asWorker { box.pointee.value(task) }
        }, pointer) == 0
      }
      if !ran {
        let box = box
        DispatchQueue.concurrentPerform(iterations: tasks) { i in asWorker { box.value(i) } }
      }
    }
  }

  /// Whether the calling thread is running a task of `forEach`/`forEachChunk` (or `asWorker`). Parallel work
  /// started there runs serially on that thread: the outer split already occupies every core (candidates of a layer
  /// measured side by side each run their GEMMs whole, for example), and nesting would only add hand-offs.
  public static var isInsideWorker: Bool { pthread_getspecific(insideWorkerKey) != nil }

  /// Runs `body` marked as a worker task (see `isInsideWorker`), for callers that split work themselves.
  public static func asWorker<T>(_ body: () throws -> T) rethrows -> T {
    let outer = pthread_getspecific(insideWorkerKey)
    pthread_setspecific(insideWorkerKey, UnsafeRawPointer(bitPattern: 1))
    defer { pthread_setspecific(insideWorkerKey, outer) }
    return try body()
  }

  /// Thread-specific flag behind `isInsideWorker` (non-nil inside a task).
  private static let insideWorkerKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
  }()

  /// Mutable configuration, written only at start-up.
  private final class State: @unchecked Sendable {
    var workers: Int = {
      #if canImport(Glibc)
        return max(1, min(8, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
      #else
        return 2
      #endif
    }()
  }
  private static let state = State()
}

/// Carries a non-Sendable closure into `concurrentPerform`; safe because each call gets disjoint work.
struct UncheckedBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
