import Foundation
import HDF5
import Sensitivity
import TensorCore
import Testing
import _TestSupport

/// Damaged run files (issue 13/14: libhdf5 crashed or spun on fuzzed files) give `.badRunFile`, never a crash or
/// a hang: the checksum header of files we write, the child-process read of older files without one.
@Suite struct RunFileDamageTests {
  let layers: [MeasuredRun.Layer] = [
    .init(name: "model.layers.0.self_attn.q_proj", rows: 2, columns: 3), .init(name: "lm_head", rows: 1, columns: 4),
  ]
  let candidates: [MeasuredRun.Candidate] = [
    .init(name: "int8", bitsPerWeight: 8.5), .init(name: "int4", bitsPerWeight: 4.5),
    .init(name: "int2-g6", bitsPerWeight: 2 + 16.0 / 6),
  ]

  /// How a fuzzer damaged the files: what each `Damage` does to the bytes.
  enum Damage: String, CaseIterable {
    case flipBytes, overwriteRegion, zeroTail, truncate

    func apply(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
      let n = bytes.count
      switch self {
      case .flipBytes:
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
          bytes[Int.random(in: 0..<n, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
        }
      case .overwriteRegion:
        let start = Int.random(in: 0..<n, using: &rng)
        for i in start..<min(n, start + Int.random(in: 8...512, using: &rng)) {
          bytes[i] = UInt8.random(in: 0...255, using: &rng)
        }
      case .zeroTail:
        let start = Int.random(in: 0..<n - 1, using: &rng)
        for i in start..<n { bytes[i] = 0 }
      case .truncate:
        bytes.removeLast(Int.random(in: 1..<n, using: &rng))
      }
    }
  }

  func provenance() -> RunProvenance { toyProvenance(probes: 4, audit: 0, eigen: 0) }

  /// A finished `RUN.h5` in `folder`.
  func finishedRun(_ folder: String) throws -> String {
    let store = try RunStore(
      path: folder + "/RUN.h5", provenance: provenance(), layers: layers, candidates: candidates)
    try store.recordFisherTrace([0.5, 0.25])
    try store.finish()
    return folder + "/RUN.h5"
  }

  func readBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
  func writeBytes(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

  @Test func writtenFilesCarryTheChecksumHeaderAndStayHDF5() throws {
    let folder = temporaryFolder("damage-header")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    let bytes = try readBytes(path)
    #expect(Array(bytes[0..<8]) == Array("BPRUNSHA".utf8))
    #expect(Array(bytes[512..<516]) == [0x89, 0x48, 0x44, 0x46], "HDF5 superblock after the 512-byte user block")
    _ = try RunStore.read(path)
    // Plain HDF5 readers (h5py, h5dump, our wrapper) still read it: they skip the user block.
    let names = try HDF5File.withFile(path, mode: .readOnly) { try $0.readStrings("/layers/name").values }
    #expect(names == layers.map(\.name))
  }

  /// Every kind of damage, at seeded places, anywhere in the file (header included).
  @Test(arguments: Damage.allCases, 0..<12)
  func damagedRunIsRefused(damage: Damage, seed: UInt64) throws {
    let folder = temporaryFolder("damage-\(damage)-\(seed)")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    let original = try readBytes(path)
    var bytes = original
    var rng = SplitMix64(seed: 0xDA7A + seed)
    damage.apply(&bytes, &rng)
    if bytes == original { bytes[bytes.count - 1] ^= 1 }  // a zeroed tail that was zero already
    try writeBytes(bytes, path)
    let error = #expect(throws: SensitivityError.self) { try RunStore.read(path) }
    #expect(error?.code == .badRunFile, "\(error.map { "\($0)" } ?? "")")
    #expect(error?.path == path)
    #expect(error.map { "\($0)".contains("damaged") || "\($0)".contains("not a BitPlan run file") } == true)
    #expect(error.map { !"\($0)".contains("\n") } == true, "one line")
  }

  @Test func damagedPartialIsRefusedWithTheRemedy() throws {
    let folder = temporaryFolder("damage-partial")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/RUN.h5"
    _ = try RunStore(path: path, provenance: provenance(), layers: layers, candidates: candidates)
    var bytes = try readBytes(path + ".partial")
    bytes[bytes.count / 2] ^= 0x10
    try writeBytes(bytes, path + ".partial")
    let error = #expect(throws: SensitivityError.self) {
      try RunStore(path: path, provenance: provenance(), layers: layers, candidates: candidates)
    }
    #expect(error?.code == .badRunFile)
    #expect(error.map { "\($0)".contains("checksum mismatch") && "\($0)".contains("delete it") } == true)
    #expect(error?.path == path + ".partial")
  }

  /// The fuzzer's files (older format, no checksum): libhdf5 crashed (SIGSEGV, SIGABRT) or spun on each.
  @Test(arguments: ["abort-run.h5", "segv2-run.h5", "segv-run.partial.h5", "hang2-run.h5", "hang-run.partial.h5"])
  func fuzzedOldFilesAreRefused(name: String) throws {
    let path = TestModels.repositoryRoot + "/fixtures/damaged-runs/" + name
    let start = Date()
    let error = #expect(throws: SensitivityError.self) { try RunStore.read(path) }
    #expect(error?.code == .badRunFile, "\(error.map { "\($0)" } ?? "")")
    #expect(error.map { "\($0)".contains("damaged") } == true)
    #expect(Date().timeIntervalSince(start) < 30)
  }

  /// A file sealed with a recomputed checksum over damaged bytes (a robustness sweep's: one byte of a
  /// variable-length string's length set to 0xFF, then resealed): the checksum matches, and the string claims
  /// gigabytes (`allocate` took 5.7 GB and exited 0 before). Sealed files are read in the checking subprocess too,
  /// within a memory limit. (Resealed files that crashed libhdf5 in `bitplan allocate` are refused the same way,
  /// but whether one crashes depends on the heap it meets, so none is pinned here.)
  @Test func forgedChecksumIsRefused() throws {
    let path = TestModels.repositoryRoot + "/fixtures/damaged-runs/resealed-huge-string-run.h5"
    let start = Date()
    let error = #expect(throws: SensitivityError.self) { try RunStore.read(path) }
    #expect(error?.code == .badRunFile, "\(error.map { "\($0)" } ?? "")")
    #expect(error.map { "\($0)".contains("checksum matches") } == true)
    #expect(Date().timeIntervalSince(start) < 30)
  }

  /// The committed run of the demo (older format, no checksum) still reads.
  @Test func oldFileWithoutChecksumStillReads() throws {
    let path = TestModels.repositoryRoot + "/reports/smollm2-run.h5"
    try #require(TestModels.exists(path))
    let run = try RunStore.read(path)
    #expect(run.layers.count > 100)
    // Written before quantizers were recorded: every offered candidate reads as round to nearest.
    #expect(run.provenance.quantizer == "rtn")
    #expect(run.quantizer.indices.allSatisfy { l in
      run.quantizer[l].indices.allSatisfy { c in run.quantizer[l][c] == (run.bytes[l][c] >= 0 ? "rtn" : "") }
    })
  }
}
