import Foundation

/// Runs the `bitplan` executable that SwiftPM built beside the test bundle, and captures what it printed.
struct BitplanProcess {
  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// The built executable: the test bundle and the products share one build folder.
  static var executable: URL {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = bundle.deletingLastPathComponent()
    // On Linux the test runner is `.build/<triple>/<config>/BitPlanPackageTests.xctest` itself.
    for _ in 0..<3 {
      let candidate = dir.appendingPathComponent("bitplan")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return bundle.deletingLastPathComponent().appendingPathComponent("bitplan")
  }

  /// The repository root (for `fixtures/` and `../shared`).
  static var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  }

  static func fixture(_ name: String) -> String { repositoryRoot.appendingPathComponent("fixtures/\(name)").path }

  /// A `bitplan args…` process, not started, with `environment` added to this process's.
  static func process(_ args: [String], environment: [String: String] = [:]) -> Process {
    let process = Process()
    process.executableURL = executable
    process.arguments = args
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    return process
  }

  /// Runs `bitplan args…` to completion, with `environment` added to this process's, in `directory` (default: this
  /// process's current folder).
  static func run(_ args: [String], environment: [String: String] = [:], directory: String? = nil) throws -> Result {
    let process = process(args, environment: environment)
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting, so a chatty command cannot fill the pipe and block.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
      stderr: String(decoding: e, as: UTF8.self))
  }

  /// A fresh empty directory under the system's temporary folder.
  static func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bitplan-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }
}
