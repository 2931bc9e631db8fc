import Foundation

/// A fresh path in its own folder under the system temporary directory (unique per process and `name`, so tests
/// running in parallel never share a folder); `remove()` deletes the folder.
struct TemporaryFile {
  let path: String
  private let folder: String

  init(_ name: String) {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-hdf5-\(getpid())-\(name).d").path
    try? FileManager.default.removeItem(atPath: folder)
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    path = folder + "/" + name
  }

  func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
