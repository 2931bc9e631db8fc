#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Read-only bytes of a model file: memory-mapped from disk, or held in memory (tests, fuzzing).
///
/// Every read is bounds-checked and throws `ModelIOError(.truncated)` instead of trapping, so parsers can read
/// untrusted headers with it directly. Scalars are little-endian, read with `loadUnaligned`.
public final class ByteSource: @unchecked Sendable {
  /// Start of the bytes; valid for the lifetime of `self`.
  public let base: UnsafeRawPointer
  /// Number of bytes.
  public let count: Int
  /// The file these bytes come from, for error messages.
  public let path: String?
  private let unmap: (() -> Void)?

  /// Maps `path` read-only. Throws `.io` when it cannot be opened or mapped.
  public init(path: String) throws(ModelIOError) {
    let fd = open(path, O_RDONLY)
    if fd < 0 { throw ModelIOError(.io, "cannot open: \(String(cString: strerror(errno)))", path: path) }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw ModelIOError(.io, "cannot stat: \(String(cString: strerror(errno)))", path: path) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw ModelIOError(.io, "is a directory, expected a file", path: path) }
    let size = Int(st.st_size)
    self.path = path
    self.count = size
    if size == 0 {
      let empty = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
      base = UnsafeRawPointer(empty)
      unmap = { empty.deallocate() }
      return
    }
    guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
      throw ModelIOError(.io, "cannot map \(size) bytes: \(String(cString: strerror(errno)))", path: path)
    }
    base = UnsafeRawPointer(p)
    unmap = { munmap(p, size) }
  }

  /// Copies `bytes` into an owned, 64-byte-aligned buffer.
  public init(bytes: [UInt8], path: String? = nil) {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
    bytes.withUnsafeBytes { if let src = $0.baseAddress { p.copyMemory(from: src, byteCount: bytes.count) } }
    base = UnsafeRawPointer(p)
    count = bytes.count
    self.path = path
    unmap = { p.deallocate() }
  }

  deinit { unmap?() }

  /// Drops the pages of a memory-mapped file from this process's resident set (`madvise(MADV_DONTNEED)`): after a
  /// caller has copied what it needs (packed tensors), the file's pages no longer count twice. Reads afterwards
  /// fault the pages back in from the file; bytes given by `init(bytes:)` are left alone.
  public func dropResidentPages() {
    guard unmap != nil, count > 0 else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_DONTNEED)
  }

  /// `dropResidentPages()` for the pages that hold `[offset, offset + length)` (widened to whole pages; a range
  /// outside the bytes is clipped): a streamed weight's bytes, once expanded, leave the resident set, and stay in
  /// the kernel's page cache while memory allows, so the next read of them faults them back from there.
  public func dropResidentPages(offset: Int, length: Int) {
    guard unmap != nil, count > 0, length > 0, offset < count else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = max(offset, 0) / page * page
    let end = min(offset + length, count)
    guard end > start else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
  }

  /// Throws `.truncated` unless `[offset, offset + length)` lies inside the bytes. Overflow-safe.
  @inline(__always)
  public func check(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws(ModelIOError) {
    if offset < 0 || length < 0 || offset > count || length > count - offset {
      throw ModelIOError(
        .truncated, "\(what()): needs bytes \(offset)..<\(offset &+ length), file has \(count)", path: path)
    }
  }

  /// A little-endian fixed-width integer at `offset`.
  @inline(__always)
  public func load<T: FixedWidthInteger>(_: T.Type, at offset: Int, _ what: @autoclosure () -> String) throws(ModelIOError) -> T {
    try check(offset, MemoryLayout<T>.size, what())
    return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
  }

  /// A little-endian `Float` at `offset`.
  @inline(__always)
  public func loadFloat(at offset: Int, _ what: @autoclosure () -> String) throws(ModelIOError) -> Float {
    Float(bitPattern: try load(UInt32.self, at: offset, what()))
  }

  /// A little-endian `Double` at `offset`.
  @inline(__always)
  public func loadDouble(at offset: Int, _ what: @autoclosure () -> String) throws(ModelIOError) -> Double {
    Double(bitPattern: try load(UInt64.self, at: offset, what()))
  }

  /// A bounds-checked view of `[offset, offset + length)`.
  public func slice(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws(ModelIOError) -> UnsafeRawBufferPointer {
    try check(offset, length, what())
    return UnsafeRawBufferPointer(start: base + offset, count: length)
  }
}
