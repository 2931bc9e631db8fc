import Foundation

/// A fresh path under the system temporary directory, unique per process and per `name`, removed by `remove()`.
struct TemporaryFile {
  let path: String

  init(_ name: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-hdf5-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    path = dir.appendingPathComponent(name).path
    try? FileManager.default.removeItem(atPath: path)
  }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}
