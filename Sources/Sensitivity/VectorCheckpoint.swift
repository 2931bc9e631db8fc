import Foundation

/// Large per-parameter vectors of a partial run (the gradient sum, the Hutchinson diagonal sum), saved beside
/// `RUN.h5.partial` as raw files named `<partial>.<name>.<generation>`, where the generation counts the units of
/// work the vector includes (windows or probes).
///
/// Layout, little-endian: magic `BPVECT01` (8 bytes), generation (u64), count (u64), `count` float64 values,
/// FNV-1a 64 of the value bytes (u64). A file is written under a temporary name and renamed into place, and the
/// previous generation is deleted only after the partial HDF5 file that refers to the new one is in place, so a
/// kill at any moment leaves the generation the partial file names.
enum VectorCheckpoint {
  static let magic: [UInt8] = Array("BPVECT01".utf8)

  static func path(base: String, name: String, generation: Int) -> String { "\(base).\(name).\(generation)" }

  /// Writes `values` as generation `generation` of `name`.
  static func save(_ values: [Double], base: String, name: String, generation: Int) throws(SensitivityError) {
    let target = path(base: base, name: name, generation: generation)
    var data = Data(magic)
    append(UInt64(generation), to: &data)
    append(UInt64(values.count), to: &data)
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    data.reserveCapacity(32 + 8 * values.count)
    for v in values {
      var bits = v.bitPattern.littleEndian
      withUnsafeBytes(of: &bits) { raw in
        for b in raw { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 }
        data.append(contentsOf: raw)
      }
    }
    append(hash, to: &data)
    try writeAtomically(data, to: target)
  }

  /// Reads generation `generation` of `name`, which must hold `count` values.
  /// - Throws: `.badRunFile` when it is missing, truncated, of another generation or count, or fails its checksum.
  static func load(base: String, name: String, generation: Int, count: Int) throws(SensitivityError) -> [Double] {
    let file = path(base: base, name: name, generation: generation)
    guard let data = FileManager.default.contents(atPath: file) else {
      throw SensitivityError(.badRunFile, "missing checkpoint '\(file)'; delete the partial run and start again")
    }
    let bytes = [UInt8](data)
    guard bytes.count == 32 + 8 * count, Array(bytes[0..<8]) == magic, word(bytes, 8) == UInt64(generation),
      word(bytes, 16) == UInt64(count)
    else { throw SensitivityError(.badRunFile, "checkpoint '\(file)' is truncated or of another run") }
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes[24..<(24 + 8 * count)] { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 }
    if hash != word(bytes, 24 + 8 * count) {
      throw SensitivityError(.badRunFile, "checkpoint '\(file)' fails its checksum")
    }
    return (0..<count).map { Double(bitPattern: word(bytes, 24 + 8 * $0)) }
  }

  /// Deletes every generation of `name` except `keep` (all when `keep` is nil).
  static func removeGenerations(base: String, name: String, except keep: Int?) {
    let url = URL(fileURLWithPath: base)
    let directory = url.deletingLastPathComponent().path
    let prefix = url.lastPathComponent + "." + name + "."
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for f in files where f.hasPrefix(prefix) {
      let suffix = f.dropFirst(prefix.count)
      if let g = Int(suffix), g == keep { continue }
      if Int(suffix) != nil || suffix.hasSuffix(".tmp") { try? FileManager.default.removeItem(atPath: directory + "/" + f) }
    }
  }

  /// Writes `data` to `target + ".tmp"` and renames it over `target` (POSIX `rename` replaces atomically).
  static func writeAtomically(_ data: Data, to target: String) throws(SensitivityError) {
    let temporary = target + ".tmp"
    do { try data.write(to: URL(fileURLWithPath: temporary)) } catch {
      throw SensitivityError(.io, "cannot write '\(temporary)': \(error)")
    }
    try rename(temporary, to: target)
  }

  /// POSIX `rename(from, to)`, replacing `to` atomically.
  static func rename(_ from: String, to: String) throws(SensitivityError) {
    if Foundation.rename(from, to) != 0 {
      throw SensitivityError(.io, "cannot rename '\(from)' to '\(to)': errno \(errno)")
    }
  }

  private static func append(_ x: UInt64, to data: inout Data) {
    var v = x.littleEndian
    withUnsafeBytes(of: &v) { data.append(contentsOf: $0) }
  }

  private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * i) }
    return v
  }
}
