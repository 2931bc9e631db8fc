import Foundation
import HDF5
import Testing

/// `HDF5File.probe` (reading a file whole in a child process) and files with a user block.
@Suite struct HDF5ProbeTests {
  @Test func userBlockPutsTheSuperblockAfterIt() throws {
    let file = TemporaryFile("userblock.h5")
    defer { file.remove() }
    try HDF5File.withFile(file.path, mode: .create, userBlockSize: 512) { f in
      try f.write([1.5, 2.5], shape: [2], to: "/a/b")
      try f.setAttribute("note", "x")
    }
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
    #expect(bytes[0..<8].allSatisfy { $0 == 0 }, "the user block is left to the caller")
    #expect(Array(bytes[512..<516]) == [0x89, 0x48, 0x44, 0x46])
    #expect(try HDF5File.withFile(file.path, mode: .readOnly) { try $0.read("/a/b", as: Double.self).values } == [1.5, 2.5])
    #expect(HDF5File.probe(file.path) == .readable)
  }

  @Test func probeReportsAFileLibhdf5CannotRead() throws {
    let file = TemporaryFile("probe-bad.h5")
    defer { file.remove() }
    try HDF5File.withFile(file.path, mode: .create) { f in try f.write([Int64](0..<100), shape: [100], to: "/x") }
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
    for i in 8..<bytes.count { bytes[i] = 0xff }  // the signature stays, everything after it is gone
    try Data(bytes).write(to: URL(fileURLWithPath: file.path))
    #expect(HDF5File.probe(file.path) == .failed)
    #expect(HDF5File.probe(file.path + ".missing") == .failed)
  }

  /// With a memory limit the child refuses what it cannot read within it (a damaged length field claiming
  /// gigabytes looks the same to it), and reads the same file when the limit leaves room.
  @Test func probeHonoursItsMemoryLimit() throws {
    let file = TemporaryFile("probe-memory.h5")
    defer { file.remove() }
    let values = [Double](repeating: 0.25, count: 8 << 20)  // one 64 MiB dataset
    try HDF5File.withFile(file.path, mode: .create) { f in try f.write(values, shape: [values.count], to: "/x") }
    #expect(HDF5File.probe(file.path, memoryBytes: 16 << 20) == .failed)
    #expect(HDF5File.probe(file.path, memoryBytes: 256 << 20) == .readable)
    #expect(HDF5File.probe(file.path) == .readable)
  }
}
