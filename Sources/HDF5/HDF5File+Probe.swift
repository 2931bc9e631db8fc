import CHDF5

extension HDF5File {
  /// What a `probe(_:timeoutSeconds:)` found.
  public enum ProbeResult: Sendable, Equatable {
    /// Every object, attribute and dataset could be read.
    case readable
    /// libhdf5 reported an error (the reader would get an `HDF5Error` too).
    case failed
    /// libhdf5 died of `signal` reading it (a damaged file that makes the library overrun memory).
    case crashed(signal: Int32)
    /// libhdf5 was still reading after the timeout (a damaged file that makes the library loop).
    case timedOut
    /// No child process could be started.
    case notChecked
  }

  /// Reads every attribute and dataset of the HDF5 file at `path` in a child process, so that a damaged file
  /// which makes libhdf5 1.10 crash or loop forever costs a child, not this process.
  ///
  /// libhdf5 trusts the metadata it reads: a flipped byte in an object header can make it copy past a buffer
  /// (SIGSEGV in `memmove`, glibc's `free(): invalid size`) or walk a cycle of addresses forever. The child runs
  /// only C (`bitplan_h5_probe_in_child` in `CHDF5/shim.h`): it forks holding the global lock, so no other thread
  /// of ours is inside the library, opens the file, visits every link, reads each attribute and dataset whole
  /// (at most 1 GiB each) and exits; the parent kills it after `timeoutSeconds`. With `memoryBytes` the child may
  /// allocate at most that much (`RLIMIT_DATA` above what it inherited): a damaged length field, such as a
  /// variable-length string that claims gigabytes, then fails the read (`.failed`) instead of taking the machine's
  /// memory, here and in the reader that would have trusted it.
  /// - Complexity: one extra read of the file, plus a `fork` (a few ms for a small process).
  public static func probe(_ path: String, timeoutSeconds: Double = 10, memoryBytes: Int? = nil) -> ProbeResult {
    var signal: Int32 = 0
    let limit = UInt64(max(0, memoryBytes ?? 0))
    let code = H5.lockedQuietly(returning: {
      path.withCString { bitplan_h5_probe_in_child($0, Int32(max(1, timeoutSeconds * 1000)), limit, &signal) }
    })
    switch Int(code) {
    case Int(BITPLAN_PROBE_OK): return .readable
    case Int(BITPLAN_PROBE_ERROR): return .failed
    case Int(BITPLAN_PROBE_CRASHED): return .crashed(signal: signal)
    case Int(BITPLAN_PROBE_TIMEOUT): return .timedOut
    default: return .notChecked
    }
  }
}
