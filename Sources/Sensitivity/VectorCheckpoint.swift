import Foundation
import TensorCore

/// Large per-parameter vectors of a partial run (the gradient sum, the Hutchinson diagonal sum), saved beside
/// `RUN.h5.partial` as raw files named `<partial>.<name>.<generation>`, where the generation counts the units of
/// work the vector includes (windows or probes).
///
/// Layout, little-endian: magic `BPVECT01` (8 bytes), generation (u64), count (u64), `count` float64 values,
/// checksum (u64): FNV-1a over the values' 64-bit words (`h = (h ^ word) · 0x100000001B3`, from the FNV-1a 64
/// offset basis). A file is streamed under a temporary name and renamed into place, and the previous generation is
/// deleted only after the partial HDF5 file that refers to the new one is in place, so a kill at any moment leaves
/// the generation the partial file names.
enum VectorCheckpoint {
  static let magic: [UInt8] = Array("BPVECT01".utf8)
  static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
  static let prime: UInt64 = 0x100_0000_01B3

  static func path(base: String, name: String, generation: Int) -> String { "\(base).\(name).\(generation)" }

  /// Writes the concatenation of `blocks` as generation `generation` of `name`.
  static func save(_ blocks: [[Double]], base: String, name: String, generation: Int) throws(SensitivityError) {
    let target = path(base: base, name: name, generation: generation)
    let temporary = target + ".tmp"
    let count = blocks.reduce(0) { $0 + $1.count }
    var hash = offsetBasis
    try clearTemporary(temporary)
    do {
      // POSIX `open`, not `FileManager.createFile`: on Linux that writes the empty file atomically through a
      // hidden `.dat.nosync…` file of its own, which a kill at that moment leaves beside the run.
      let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      if descriptor < 0 { throw SensitivityError(.io, "cannot create '\(temporary)': errno \(errno)") }
      let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
      defer { try? handle.close() }
      try handle.write(contentsOf: Data(magic) + words([UInt64(generation), UInt64(count)]))
      for block in blocks {
        for v in block { hash = (hash ^ v.bitPattern) &* prime }
        // Straight from the array (little-endian host): wrapping it in `Data` first copied the 850 MB.
        try block.withUnsafeBytes { raw in try handle.write(contentsOf: raw) }
      }
      try handle.write(contentsOf: words([hash]))
    } catch let error as SensitivityError {
      unlink(temporary)
      throw error
    } catch {
      unlink(temporary)  // a full disk stays full with a half-written checkpoint beside the run
      throw SensitivityError(.io, "cannot write '\(temporary)': \(Self.reason(error))")
    }
    try rename(temporary, to: target)
  }

  /// The operating system's words for a failed write (`No space left on device`), not Foundation's wrapper.
  static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
  }

  /// Reads generation `generation` of `name`, which must hold `count` values.
  /// - Throws: `.badRunFile` when it is missing, truncated, of another generation or count, or fails its checksum.
  static func load(base: String, name: String, generation: Int, count: Int) throws(SensitivityError) -> [Double] {
    let file = path(base: base, name: name, generation: generation)
    guard let data = FileManager.default.contents(atPath: file) else {
      throw SensitivityError(.badRunFile, "missing checkpoint '\(file)'; delete the partial run and start again")
    }
    let decoded = data.withUnsafeBytes { (raw) -> Result<[Double], SensitivityError> in
      func word(_ offset: Int) -> UInt64 {
        UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
      }
      guard raw.count == 32 + 8 * count, Array(raw[0..<8]) == magic, word(8) == UInt64(generation),
        word(16) == UInt64(count)
      else { return .failure(SensitivityError(.badRunFile, "checkpoint '\(file)' is truncated or of another run")) }
      var hash = offsetBasis
      let values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<count {
          let bits = word(24 + 8 * i)
          hash = (hash ^ bits) &* prime
          buffer[i] = Double(bitPattern: bits)
        }
        initialized = count
      }
      if hash != word(24 + 8 * count) {
        return .failure(SensitivityError(.badRunFile, "checkpoint '\(file)' fails its checksum"))
      }
      return .success(values)
    }
    return try decoded.get()
  }

  /// The checksum of a side file's `count` values, read back through `descriptor` in chunks (as `save` computes it
  /// while writing); nil when the file cannot be read that far.
  static func checksum(_ descriptor: Int32, count: Int) -> UInt64? {
    var hash = offsetBasis
    let chunk = 1 << 17
    var buffer = [UInt64](repeating: 0, count: chunk)
    var i = 0
    while i < count {
      let n = min(chunk, count - i)
      let ok = buffer.withUnsafeMutableBytes { Writer.get(descriptor, UnsafeMutableRawBufferPointer(rebasing: $0[0..<8 * n]), at: 24 + 8 * i) }
      guard ok else { return nil }
      for k in 0..<n { hash = (hash ^ UInt64(littleEndian: buffer[k])) &* prime }
      i += n
    }
    return hash
  }

  /// A generation written a block at a time, at any offsets, never held whole (the streamed gradient sum): the
  /// file is sized first, blocks land where they belong, and `finish()` reads it back in order for the checksum,
  /// writes it and renames the file into place. The same layout as `save`.
  final class Writer {
    let target: String
    let temporary: String
    let count: Int
    private let descriptor: Int32

    init(base: String, name: String, generation: Int, count: Int) throws(SensitivityError) {
      target = VectorCheckpoint.path(base: base, name: name, generation: generation)
      temporary = target + ".tmp"
      self.count = count
      try clearTemporary(temporary)
      descriptor = open(temporary, O_RDWR | O_CREAT | O_TRUNC, 0o644)
      if descriptor < 0 { throw SensitivityError(.io, "cannot create '\(temporary)': errno \(errno)") }
      let header = magic + [UInt64(generation), UInt64(count)].flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
      // (a failing initializer of a class runs `deinit`, which closes the descriptor)
      if ftruncate(descriptor, off_t(32 + 8 * count)) != 0 || !Self.put(descriptor, header, at: 0) {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw SensitivityError(.io, "cannot write '\(temporary)': \(reason)")
      }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Writes `values` as elements `offset ..< offset + values.count`.
    func write(_ values: UnsafeBufferPointer<Double>, at offset: Int) throws(SensitivityError) {
      precondition(offset >= 0 && offset + values.count <= count, "block \(offset)+\(values.count) outside \(count)")
      guard Writer.put(descriptor, UnsafeRawBufferPointer(values), at: 24 + 8 * offset) else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw SensitivityError(.io, "cannot write '\(temporary)': \(reason)")
      }
    }

    /// Checksums the values in order, writes the checksum and renames the file into place.
    func finish() throws(SensitivityError) {
      guard let hash = VectorCheckpoint.checksum(descriptor, count: count) else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw SensitivityError(.io, "cannot read back '\(temporary)': \(reason)")
      }
      guard Writer.put(descriptor, withUnsafeBytes(of: hash.littleEndian) { Array($0) }, at: 24 + 8 * count) else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw SensitivityError(.io, "cannot write '\(temporary)': \(reason)")
      }
      try rename(temporary, to: target)
    }

    /// pwrite until every byte is written.
    static func put(_ fd: Int32, _ bytes: some Collection<UInt8>, at offset: Int) -> Bool {
      Array(bytes).withUnsafeBytes { put(fd, $0, at: offset) }
    }

    static func put(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
      var done = 0
      while done < bytes.count {
        let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
        if n <= 0 { return false }
        done += n
      }
      return true
    }

    /// pread until every byte is read.
    static func get(_ fd: Int32, _ bytes: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
      var done = 0
      while done < bytes.count {
        let n = pread(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
        if n <= 0 { return false }
        done += n
      }
      return true
    }
  }

  /// A saved generation read a block at a time (checked at opening: its size and header, and, unless this process
  /// wrote it, its checksum, which reads it whole).
  final class Reader {
    let file: String
    let count: Int
    private let descriptor: Int32

    init(base: String, name: String, generation: Int, count: Int, verify: Bool = true) throws(SensitivityError) {
      file = VectorCheckpoint.path(base: base, name: name, generation: generation)
      self.count = count
      descriptor = open(file, O_RDONLY)
      if descriptor < 0 {
        throw SensitivityError(.badRunFile, "missing checkpoint '\(file)'; delete the partial run and start again")
      }
      var header = [UInt8](repeating: 0, count: 24)
      var size = stat()
      let headerOK = header.withUnsafeMutableBytes { Writer.get(descriptor, $0, at: 0) }
      func word(_ i: Int) -> UInt64 { header[i..<i + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
      guard fstat(descriptor, &size) == 0, Int(size.st_size) == 32 + 8 * count, headerOK, Array(header[0..<8]) == magic,
        word(8) == UInt64(generation), word(16) == UInt64(count)
      else {
        throw SensitivityError(.badRunFile, "checkpoint '\(file)' is truncated or of another run")
      }
      if !verify { return }
      guard let hash = VectorCheckpoint.checksum(descriptor, count: count) else {
        throw SensitivityError(.badRunFile, "checkpoint '\(file)' is truncated or of another run")
      }
      var buffer = [UInt64](repeating: 0, count: 1)
      let stored = buffer.withUnsafeMutableBytes { Writer.get(descriptor, UnsafeMutableRawBufferPointer(rebasing: $0[0..<8]), at: 24 + 8 * count) }
      guard stored, UInt64(littleEndian: buffer[0]) == hash else {
        throw SensitivityError(.badRunFile, "checkpoint '\(file)' fails its checksum")
      }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Elements `offset ..< offset + values.count` into `values`.
    func read(into values: UnsafeMutableBufferPointer<Double>, at offset: Int) throws(SensitivityError) {
      precondition(offset >= 0 && offset + values.count <= count, "block \(offset)+\(values.count) outside \(count)")
      guard Writer.get(descriptor, UnsafeMutableRawBufferPointer(values), at: 24 + 8 * offset) else {
        throw SensitivityError(.io, "cannot read '\(file)': errno \(errno)")
      }
    }
  }

  /// Deletes every generation of `name` except `keep` (all when `keep` is nil), and leftover temporary files.
  static func removeGenerations(base: String, name: String, except keep: Int?) {
    let url = URL(fileURLWithPath: base)
    let directory = url.deletingLastPathComponent().path
    let prefix = url.lastPathComponent + "." + name + "."
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for f in files where f.hasPrefix(prefix) {
      let suffix = f.dropFirst(prefix.count)
      if let g = Int(suffix), g == keep { continue }
      if Int(suffix) != nil || suffix.hasSuffix(".tmp") {
        unlink(directory + "/" + f)  // unlink, not removeItem: a folder of that name is never deleted
      }
    }
  }

  /// POSIX `rename(from, to)`, replacing `to` atomically, but only when `to` is a regular file or absent
  /// (`FileChecks.replace`): a folder, device or FIFO put there while the run went on is never replaced.
  static func rename(_ from: String, to: String) throws(SensitivityError) {
    do { try FileChecks.replace(to, with: from, option: "-o") } catch {
      throw SensitivityError(.io, error.message, path: to)
    }
  }

  /// Removes a stale temporary file (or a link put in its place) before it is created afresh, so a write never
  /// goes through a link into another file; refuses a folder, device or FIFO there.
  static func clearTemporary(_ path: String) throws(SensitivityError) {
    do { try FileChecks.clearStaleTemporary(path) } catch { throw SensitivityError(.io, error.message, path: path) }
  }

  /// Little-endian bytes of `values`.
  private static func words(_ values: [UInt64]) -> Data {
    var data = Data()
    for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    return data
  }
}

#if _endian(big)
  #error("VectorCheckpoint writes the host's Double bytes and assumes a little-endian host")
#endif
