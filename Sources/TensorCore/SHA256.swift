import CKernels
import Foundation

/// SHA-256 (FIPS 180-4), for the `model_sha256` and `calib_sha256` provenance of a run.
///
/// Streaming: `update` with any number of byte chunks, then `finalize()`. `hexDigest(fileAt:)` hashes a file in
/// 1 MiB chunks, so memory stays flat for multi-gigabyte models. Checked against the FIPS 180-2 examples and
/// Python's `hashlib` in the tests. (Foundation on Linux has no CryptoKit, and the package takes no other
/// dependencies.) Whole blocks go to the x86 SHA extensions when the CPU has them (`bp_sha256_blocks`, chosen at
/// run time; this Swift code is the kernel's reference twin and the fallback).
public struct SHA256: Sendable {
  private var state: [UInt32] = [
    0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
  ]
  private var buffer: [UInt8] = []
  private var length: UInt64 = 0

  /// A fresh hash.
  public init() {}

  /// Feeds `bytes`.
  public mutating func update(_ bytes: some Collection<UInt8>) {
    length &+= UInt64(bytes.count)
    buffer.append(contentsOf: bytes)
    let whole = buffer.count / 64
    compressBlocks(buffer, count: whole)
    buffer.removeFirst(64 * whole)
  }

  /// The 32-byte digest of everything fed so far (pads a copy; `self` is unchanged).
  public func finalize() -> [UInt8] {
    var copy = self
    let bits = length &* 8
    var tail: [UInt8] = [0x80]
    tail += [UInt8](repeating: 0, count: (119 - Int(length % 64)) % 64)
    for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
    copy.length = length
    copy.buffer.append(contentsOf: tail)
    copy.compressBlocks(copy.buffer, count: copy.buffer.count / 64)
    return copy.state.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (24 - 8 * UInt32($0))) } }
  }

  /// Lower-case hex of `finalize()`.
  public func hexDigest() -> String { finalize().map { String(format: "%02x", $0) }.joined() }

  /// Lower-case hex SHA-256 of `bytes`.
  public static func hexDigest(_ bytes: some Collection<UInt8>) -> String {
    var h = SHA256()
    h.update(bytes)
    return h.hexDigest()
  }

  /// Lower-case hex SHA-256 of the file at `path`, read in 1 MiB chunks.
  /// - Throws: `FileError` naming the file when it cannot be opened or read.
  public static func hexDigest(fileAt path: String) throws(FileError) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw FileError(path: path, message: "cannot open it to compute its SHA-256")
    }
    defer { try? handle.close() }
    var h = SHA256()
    do {
      while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { h.update(chunk) }
    } catch {
      throw FileError(path: path, message: "cannot read it: \(error)")
    }
    return h.hexDigest()
  }

  /// A file that could not be hashed.
  public struct FileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "io: \(message) (\(path))" }
  }

  /// The first `count` 64-byte blocks of `blocks`: by the SHA extensions when the CPU has them (and `hardware`),
  /// else one `compress` each.
  mutating func compressBlocks(_ blocks: [UInt8], count: Int, hardware: Bool = true) {
    precondition(count >= 0 && 64 * count <= blocks.count, "\(count) blocks of \(blocks.count) bytes")
    if count == 0 { return }
    let done = hardware && blocks.withUnsafeBufferPointer { b in
      state.withUnsafeMutableBufferPointer { s in bp_sha256_blocks(s.baseAddress!, b.baseAddress!, count) == 1 }
    }
    if done { return }
    for i in 0..<count { compress(blocks, at: 64 * i) }
  }

  /// The hash state `a…h` after feeding `blocks` (whole 64-byte blocks, no padding) to a fresh hash: by the SHA
  /// extensions, or (`hardware: false`) by the Swift compression alone. For tests comparing the two.
  package static func state(afterBlocks blocks: [UInt8], hardware: Bool) -> [UInt32] {
    var h = SHA256()
    h.compressBlocks(blocks, count: blocks.count / 64, hardware: hardware)
    return h.state
  }

  /// One 64-byte block at `offset` of `block` (FIPS 180-4 §6.2.2).
  private mutating func compress(_ block: [UInt8], at offset: Int) {
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
      // Message schedule: 16 big-endian words, then σ₀/σ₁ expansion to 64.
      for t in 0..<16 {
        let b = offset + 4 * t
        w[t] = UInt32(block[b]) << 24 | UInt32(block[b + 1]) << 16 | UInt32(block[b + 2]) << 8 | UInt32(block[b + 3])
      }
      for t in 16..<64 {
        let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
      }
      var (a, b, c, d, e, f, g, h) = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
      for t in 0..<64 {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ SHA256.k[t] &+ w[t]
        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
        (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
      }
      state[0] &+= a
      state[1] &+= b
      state[2] &+= c
      state[3] &+= d
      state[4] &+= e
      state[5] &+= f
      state[6] &+= g
      state[7] &+= h
    }
  }

  @inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

  /// First 32 bits of the fractional parts of the cube roots of the first 64 primes.
  private static let k: [UInt32] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
    0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
    0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
    0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
    0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
    0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
    0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
  ]
}
