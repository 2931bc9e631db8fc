import Foundation
import HDF5
import Testing

@Suite("HDF5Error: every failure is typed")
struct HDF5ErrorTests {
  @Test func missingDatasetIsNotFound() throws {
    let tmp = TemporaryFile("missing.h5")
    defer { tmp.remove() }
    let file = try HDF5File(path: tmp.path, mode: .create)
    try file.write([1.0], to: "/present")
    for path in ["/absent", "/no/such/group/x"] {
      let error = #expect(throws: HDF5Error.self) { _ = try file.read(path, as: Double.self) }
      #expect(error?.code == .notFound)
      #expect(error?.message.contains(path) == true)
    }
    #expect((#expect(throws: HDF5Error.self) { _ = try file.readStrings("/absent") })?.code == .notFound)
    #expect((#expect(throws: HDF5Error.self) { _ = try file.members(of: "/absent") })?.code == .notFound)
    #expect((#expect(throws: HDF5Error.self) { try file.delete("/absent") })?.code == .notFound)
  }

  @Test func nonHDF5FileIsNotHDF5() throws {
    let tmp = TemporaryFile("plain.txt")
    defer { tmp.remove() }
    try Data("this is not HDF5\n".utf8).write(to: URL(fileURLWithPath: tmp.path))
    let error = #expect(throws: HDF5Error.self) { _ = try HDF5File(path: tmp.path, mode: .readOnly) }
    #expect(error?.code == .notHDF5)
    #expect(error?.path == tmp.path)
  }

  @Test func missingFileIsIO() {
    let error = #expect(throws: HDF5Error.self) {
      _ = try HDF5File(path: "/nonexistent-dir-bitplan/x.h5", mode: .readOnly)
    }
    #expect(error?.code == .io)
    let create = #expect(throws: HDF5Error.self) {
      _ = try HDF5File(path: "/nonexistent-dir-bitplan/x.h5", mode: .create)
    }
    #expect(create?.code == .io)
    #expect(create?.message.contains("H5Fcreate") == true)
  }

  @Test func wrongTypeShapeAndModeAreTyped() throws {
    let tmp = TemporaryFile("typed.h5")
    defer { tmp.remove() }
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.write(["a"], to: "/s")
      try file.write([1.0, 2.0], to: "/d")
      #expect((#expect(throws: HDF5Error.self) { _ = try file.read("/s", as: Double.self) })?.code == .typeMismatch)
      #expect((#expect(throws: HDF5Error.self) { _ = try file.read("/d", as: Int64.self) })?.code == .typeMismatch)
      #expect((#expect(throws: HDF5Error.self) { _ = try file.readStrings("/d") })?.code == .typeMismatch)
      #expect(
        (#expect(throws: HDF5Error.self) { try file.write([1.0, 2.0, 3.0], shape: [2, 2], to: "/m") })?.code
          == .shapeMismatch)
      #expect((#expect(throws: HDF5Error.self) { try file.write([1.0], to: "/a/../b") })?.code == .invalidArgument)
      #expect((#expect(throws: HDF5Error.self) { try file.write(["a\u{0}b"], to: "/n") })?.code == .invalidArgument)
      #expect((#expect(throws: HDF5Error.self) { try file.write([1.0], to: "/") })?.code == .invalidArgument)
    }
    let readOnly = try HDF5File(path: tmp.path, mode: .readOnly)
    let error = #expect(throws: HDF5Error.self) { try readOnly.write([3.0], to: "/d") }
    #expect(error?.code == .invalidArgument)
    #expect(try readOnly.read("/d", as: Double.self).values == [1, 2])
  }

  /// Many tasks use the library at once, on separate files and on one shared file. The wrapper holds its global
  /// lock for a whole method, so check-then-create sequences (every task creates the missing group `/shared`
  /// before its dataset) are atomic; with per-C-call locking only, two tasks could both see `/shared` missing
  /// and the second `H5Gcreate2` would fail ("name already exists": seen in 1 of 3 runs here with the lock
  /// removed). Debian's HDF5 is built thread-safe, so single calls would be safe anyway.
  @Test func parallelUseIsSerialized() async throws {
    let shared = TemporaryFile("parallel-shared.h5")
    defer { shared.remove() }
    let file = try HDF5File(path: shared.path, mode: .create)
    let (tasks, rounds) = (8, 40)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for t in 0..<tasks {
        group.addTask { for r in 0..<rounds { try file.write([Double(t * r)], to: "/shared\(r)/t\(t)") } }
      }
      try await group.waitForAll()
    }
    for r in 0..<rounds { #expect(try file.members(of: "/shared\(r)").count == tasks) }
    #expect(try file.read("/shared39/t7", as: Double.self).values == [7 * 39])

    let count = 16
    try await withThrowingTaskGroup(of: Void.self) { group in
      for t in 0..<count {
        group.addTask {
          let tmp = TemporaryFile("parallel-\(t).h5")
          defer { tmp.remove() }
          let values = (0..<100).map { Double($0 * t) }
          try HDF5File.withFile(tmp.path, mode: .create) { file in
            try file.write(values, shape: [10, 10], to: "/g/v")
            try file.setAttribute("task", Int64(t))
          }
          let file = try HDF5File(path: tmp.path, mode: .readOnly)
          #expect(try file.read("/g/v", as: Double.self).values == values)
          #expect(try file.attribute("task", as: Int64.self) == Int64(t))
        }
      }
      try await group.waitForAll()
    }
  }
}
