import Foundation
import HDF5
import Testing

/// The files we write are read by HDF5's own tool, `h5dump` (Debian package `hdf5-tools`), not just by us.
@Suite("h5dump reads what HDF5File writes")
struct H5DumpTests {
  static let h5dump = "/usr/bin/h5dump"

  /// Runs `h5dump` on `path` and returns its standard output; records a failure saying how to install it if absent.
  func dump(_ path: String) throws -> String? {
    guard FileManager.default.isExecutableFile(atPath: H5DumpTests.h5dump) else {
      Issue.record("\(H5DumpTests.h5dump) not found: install hdf5-tools (apt-get install hdf5-tools, or `make deps`)")
      return nil
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: H5DumpTests.h5dump)
    process.arguments = [path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "h5dump exited with \(process.terminationStatus)")
    return String(decoding: output, as: UTF8.self)
  }

  @Test func h5dumpShowsValuesStringsAndAttributes() throws {
    let tmp = TemporaryFile("h5dump.h5")
    defer { tmp.remove() }
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.setAttribute("format_version", Int64(1))
      try file.setAttribute("tool_version", "bitplan-0.1")
      try file.write(["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"], to: "/layers/name")
      try file.write(["int4-g128", "f16"], to: "/candidates/name", layout: .fixedLength)
      try file.write([Int64(576), 1536, 576, 576], shape: [2, 2], to: "/layers/shape")
      try file.write([0.25, 4.5], to: "/weights/variance")
      try file.createDataset("/error/weight", shape: [2, 2], filledWith: Double.nan)
      try file.writeRow([0.125, 2.0], row: 1, to: "/error/weight")
      try file.setAttribute("probes", [Int64(64), 32], on: "/weights/variance")
    }
    guard let text = try dump(tmp.path) else { return }
    for needle in [
      "ATTRIBUTE \"format_version\"", "\"bitplan-0.1\"", "DATASET \"name\"", "\"model.layers.0.self_attn.q_proj\"",
      "\"model.layers.0.mlp.down_proj\"", "\"int4-g128\"", "H5T_STR_NULLPAD", "H5T_CSET_UTF8", "H5T_VARIABLE",
      "(0,0): 576, 1536,", "(1,0): 576, 576", "H5T_IEEE_F64LE", "H5T_STD_I64LE", "(0): 0.25, 4.5",
      "(0,0): nan, nan,", "(1,0): 0.125, 2", "ATTRIBUTE \"probes\"", "(0): 64, 32",
    ] {
      #expect(text.contains(needle), "h5dump output lacks \(needle)")
    }
  }
}
