import Engine
import Foundation
import TensorCore

/// The base model's scores on the evaluation windows, kept on disk by what determines them, so that validating
/// another plan on the same text does not recompute them.
///
/// One file per key under `directory` (default `$XDG_CACHE_HOME/bitplan/validation` or
/// `~/.cache/bitplan/validation`), named by the SHA-256 of the key; the key (model sha256, text sha256, protocol,
/// window length, windows, base activations) is also stored inside and compared on read. Layout, little-endian:
/// `"BPREF001"`, u32 key length, key bytes, u32 windows, then per window: u32 positions, positions × f64 base NLL,
/// u64 reference length, `ReferenceDistribution.serialized()` bytes. Written to a temporary file and renamed.
/// A file that does not parse, or whose key differs, is a miss (it is overwritten).
public struct ReferenceCache {
  /// One window's base: the exact per-position NLL and the stored distributions.
  public struct Window {
    public var nll: [Double]
    public var reference: ReferenceDistribution
  }

  public let directory: String

  public init(directory: String? = nil) {
    if let directory {
      self.directory = directory
    } else {
      let env = ProcessInfo.processInfo.environment
      let base = env["XDG_CACHE_HOME"].map { $0 + "/bitplan" } ?? (NSHomeDirectory() + "/.cache/bitplan")
      self.directory = base + "/validation"
    }
  }

  static let magic = Array("BPREF001".utf8)

  /// The file that holds `key`.
  public func path(for key: String) -> String {
    var hash = SHA256()
    hash.update(Data(key.utf8))
    return directory + "/" + hash.hexDigest() + ".ref"
  }

  /// The cached windows for `key`, or nil.
  public func load(key: String) -> [Window]? {
    guard let data = FileManager.default.contents(atPath: path(for: key)) else { return nil }
    return data.withUnsafeBytes { raw -> [Window]? in
      var offset = 0
      func take(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, offset + n <= raw.count else { return nil }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)])
      }
      func u32() -> Int? { take(4).map { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) } }
      guard let m = take(8), Array(m) == Self.magic, let keyLength = u32(), let keyBytes = take(keyLength),
        String(decoding: keyBytes, as: UTF8.self) == key, let count = u32()
      else { return nil }
      var windows: [Window] = []
      for _ in 0..<count {
        guard let n = u32(), let nllBytes = take(n * 8), let lengthBytes = take(8) else { return nil }
        let nll = (0..<n).map { Double(bitPattern: UInt64(littleEndian: nllBytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        let length = Int(UInt64(littleEndian: lengthBytes.loadUnaligned(as: UInt64.self)))
        guard let body = take(length), let reference = try? ReferenceDistribution(serialized: body), reference.rows == n
        else { return nil }
        windows.append(Window(nll: nll, reference: reference))
      }
      return offset == raw.count ? windows : nil
    }
  }

  /// Stores `windows` under `key` (atomically; a failure to write is not an error, only a lost cache).
  public func store(_ windows: [Window], key: String) {
    var out = Self.magic
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
    let keyBytes = Array(key.utf8)
    u32(keyBytes.count)
    out += keyBytes
    u32(windows.count)
    for w in windows {
      u32(w.nll.count)
      for v in w.nll { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
      let body = w.reference.serialized()
      withUnsafeBytes(of: UInt64(body.count).littleEndian) { out += $0 }
      out += body
    }
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try? FileChecks.write(Data(out), to: path(for: key), option: "cache")
  }
}
