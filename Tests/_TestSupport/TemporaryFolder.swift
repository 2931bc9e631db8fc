import Foundation

/// A fresh, empty folder under the temporary directory for one test (unique per process and name; the caller
/// removes it).
public func temporaryFolder(_ name: String) -> String {
  let folder = FileManager.default.temporaryDirectory
    .appendingPathComponent("bitplan-test-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))").path
  try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  return folder
}
