import Foundation
import HDF5
import TensorCore

/// The integrity check of `RUN.h5` (and `RUN.h5.partial`): a 512-byte HDF5 user block at the start of the file
/// holds a SHA-256 of everything after it, checked before libhdf5 parses anything.
///
/// Why: libhdf5 1.10 trusts the metadata it reads. A damaged object header or B-tree node can make it copy past a
/// buffer (SIGSEGV in `memmove`, glibc's `free(): invalid size`) or follow a cycle of addresses forever, so a
/// file that is not byte for byte what we wrote must never reach its parsers. The check also catches damage that
/// HDF5 would not notice at all: a flipped bit in a dataset's values.
///
/// Layout of the user block (HDF5 puts its superblock at byte 512 and never touches bytes 0..<512):
///
/// | bytes | content |
/// | --- | --- |
/// | 0..<8 | magic `BPRUNSHA` (ASCII) |
/// | 8..<16 | the file's length in bytes when sealed (u64 little-endian) |
/// | 16..<48 | SHA-256 of bytes 512..<length |
/// | 48..<512 | zero (checked too, so that every byte of the file is covered) |
///
/// Files written before the check existed start with the HDF5 signature at byte 0 (no user block). They are still
/// read, so that existing runs (such as `reports/smollm2-run.h5`) keep working. Either kind then goes through
/// `HDF5File.probe` — every object read in a child process with a timeout and a memory limit — so that a damaged
/// old file, or a crafted one whose checksum was recomputed, is refused with an error instead of crashing,
/// hanging or exhausting the memory of this process. Anything else at byte 0 is refused.
extension RunFile {
  /// Bytes reserved at the start of the file for the header.
  static let userBlockSize = 512
  /// The header's first 8 bytes.
  static let checksumMagic = Array("BPRUNSHA".utf8)
  /// The HDF5 format signature, at byte 0 of a file without a user block.
  static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
  /// How long the child process reading an old file without a checksum may take.
  static let probeTimeoutSeconds = 10.0

  /// How a file passed `verify`.
  enum Integrity: Equatable {
    /// The checksum matched: the file is exactly what `seal` saw.
    case sealed
    /// An older file without the header, which libhdf5 read whole in a child process without failing.
    case legacy
  }

  /// Writes the header of the HDF5 file at `path`, created with `userBlockSize` reserved bytes and closed.
  static func seal(_ path: String) throws(SensitivityError) {
    guard let handle = FileHandle(forUpdatingAtPath: path) else {
      throw SensitivityError(.io, "cannot open the file to write its checksum", path: path)
    }
    defer { try? handle.close() }
    do {
      let (length, digest) = try hashBody(handle, path)
      var header = checksumMagic
      withUnsafeBytes(of: UInt64(length).littleEndian) { header.append(contentsOf: $0) }
      header += digest
      header += [UInt8](repeating: 0, count: userBlockSize - header.count)
      try handle.seek(toOffset: 0)
      try handle.write(contentsOf: header)
      try handle.synchronize()
    } catch let error as SensitivityError {
      throw error
    } catch {
      throw SensitivityError(.io, "cannot write the checksum: \(error)", path: path)
    }
  }

  /// Checks the file at `path` before any HDF5 call (see the type's documentation).
  /// - Throws: `.badRunFile` "damaged (checksum mismatch)" when the bytes differ from what was sealed, when the
  ///   length differs, when the file is neither sealed nor an HDF5 file, or when an old file makes libhdf5 fail,
  ///   crash or hang in the child; `.io` when it cannot be read.
  @discardableResult
  static func verify(_ path: String) throws(SensitivityError) -> Integrity {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw SensitivityError(.io, "cannot open the file", path: path)
    }
    defer { try? handle.close() }
    let head: [UInt8]
    do { head = [UInt8](try handle.read(upToCount: userBlockSize) ?? Data()) } catch {
      throw SensitivityError(.io, "cannot read the file: \(error)", path: path)
    }
    if head.starts(with: hdf5Signature) { return try probeLegacy(path) }
    guard head.count == userBlockSize, head.starts(with: checksumMagic) else {
      throw SensitivityError(.badRunFile, "not a BitPlan run file (no checksum header, no HDF5 signature)", path: path)
    }
    let sealedLength = head[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let digest: [UInt8]
    do {
      let length = try handle.seekToEnd()  // refuse a truncated or extended file before hashing it
      if length != sealedLength {
        throw SensitivityError(
          .badRunFile, "damaged (length \(length) bytes, \(sealedLength) when written: truncated or extended)",
          path: path)
      }
      digest = try hashBody(handle, path).1
    } catch let error as SensitivityError { throw error } catch {
      throw SensitivityError(.io, "cannot read the file: \(error)", path: path)
    }
    if Array(head[16..<48]) != digest || head[48...].contains(where: { $0 != 0 }) {
      throw SensitivityError(.badRunFile, "damaged (checksum mismatch)", path: path)
    }
    // The checksum proves the bytes are what was sealed, not that a bitplan sealed them: anyone can recompute it
    // over a crafted file. So a sealed file is read in a child process too before this process parses it.
    try probe(path, length: Int(sealedLength), what: "a file whose checksum matches but")
    return .sealed
  }

  /// Memory the checking subprocess may allocate for a file of `length` bytes: every dataset and attribute read
  /// whole (the run file stores no compressed data), with room for libhdf5's own structures.
  static func probeMemoryBytes(length: Int) -> Int { (256 << 20) + 4 * max(0, length) }

  /// `HDF5File.probe` of the file, mapped to `.badRunFile` errors that say what the file is (`what`, completed by
  /// "whose objects libhdf5 cannot read" and the like).
  private static func probe(_ path: String, length: Int, what: String) throws(SensitivityError) {
    switch HDF5File.probe(path, timeoutSeconds: probeTimeoutSeconds, memoryBytes: probeMemoryBytes(length: length)) {
    case .readable, .notChecked:
      return
    case .failed:
      throw SensitivityError(
        .badRunFile,
        "damaged (\(what) whose objects libhdf5 cannot read within \(probeMemoryBytes(length: length) >> 20) MiB)",
        path: path)
    case .crashed(let signal):
      throw SensitivityError(
        .badRunFile, "damaged (\(what) that crashes libhdf5 with signal \(signal) in a checking subprocess)", path: path)
    case .timedOut:
      throw SensitivityError(
        .badRunFile,
        "damaged (\(what) on which libhdf5 was still busy after \(Int(probeTimeoutSeconds)) s in a checking subprocess)",
        path: path)
    }
  }

  /// The file's length and the SHA-256 of its bytes from `userBlockSize` on, read in 1 MiB chunks.
  private static func hashBody(_ handle: FileHandle, _ path: String) throws -> (Int, [UInt8]) {
    try handle.seek(toOffset: UInt64(userBlockSize))
    var hash = SHA256()
    var length = userBlockSize
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      hash.update(chunk)
      length += chunk.count
    }
    return (length, hash.finalize())
  }

  /// An old file without a checksum: read whole by libhdf5 in a child process first.
  private static func probeLegacy(_ path: String) throws(SensitivityError) -> Integrity {
    let length = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    try probe(path, length: length, what: "a file without a checksum, written by an older bitplan,")
    return .legacy
  }
}
