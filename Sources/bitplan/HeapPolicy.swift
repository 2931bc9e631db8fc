#if canImport(Glibc)
  import Glibc

  /// glibc's `int mallopt(int param, int value)` (declared in malloc.h, which no Swift module exports).
  @_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// How the commands that run the model ask glibc to allocate.
enum HeapPolicy {
  /// Serves large arrays from the heap instead of fresh mmaps and never trims it.
  ///
  /// A forward + backward pass or an HVP probe on SmolLM2 allocates and frees arrays of hundreds of MB; glibc serves
  /// each with mmap/munmap, so every one is zero-filled page by page again (17 M minor faults, 91 s of system time
  /// in a default `measure` run). Keeping them in the heap measured 1.81 → 1.64 s per probe and 8.5 → 6.6 s for the
  /// Fisher stage. Call once, before the model is loaded.
  static func keepLargeArraysInHeap() {
    #if canImport(Glibc)
      _ = glibcMallopt(-4, 0)  // M_MMAP_MAX
      _ = glibcMallopt(-1, Int32.max)  // M_TRIM_THRESHOLD
    #endif
  }
}
