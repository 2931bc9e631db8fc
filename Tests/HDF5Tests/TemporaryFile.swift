import Foundation

/// A fresh path under the system temporary directory, unique per process and per `name`, removed by `remove()`.
struct TemporaryFile {
  let path: String
  private let folder: String

  init(_ name: String) {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-hdf5-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    path = folder + "/" + name
    try? FileManager.default.removeItem(atPath: path)
  }

  /// Removes the file, and the per-process folder once it is empty (`rmdir` fails while other tests use it).
  func remove() {
    try? FileManager.default.removeItem(atPath: path)
    _ = rmdir(folder)
  }
}
