import ArgumentParser
import Foundation
import Testing

@testable import bitplan

/// Every help screen (`bitplan`, `bitplan CMD --help`, `bitplan bench CMD --help`, hidden commands too) against its
/// snapshot in HelpSnapshots/, rendered at a fixed width so the terminal does not matter. The commands are found by
/// walking `BitPlanCommand.configuration.subcommands`, so a new command is covered (and fails until its snapshot
/// exists). To write or refresh the snapshots after changing a help text, read the diff, then:
///
///     BITPLAN_UPDATE_SNAPSHOTS=1 swift test -c release -Xswiftc -target-cpu -Xswiftc native --filter HelpSnapshotTests
@Suite struct HelpSnapshotTests {
  /// The width the snapshots are rendered at.
  static let columns = 100

  /// The folder of the snapshots, beside this file (read from the source tree, not as package resources).
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("HelpSnapshots")

  static var updating: Bool { ProcessInfo.processInfo.environment["BITPLAN_UPDATE_SNAPSHOTS"] == "1" }

  /// Every command under `bitplan` with its path (`["bitplan", "bench", "kernels"]`), depth first, root included.
  static func commands() -> [(path: [String], type: ParsableCommand.Type)] {
    func walk(_ type: ParsableCommand.Type, _ path: [String]) -> [(path: [String], type: ParsableCommand.Type)] {
      [(path, type)]
        + type.configuration.subcommands.flatMap { sub in walk(sub, path + [sub._commandName]) }
    }
    return walk(BitPlanCommand.self, ["bitplan"])
  }

  /// The command names joined with spaces: the test arguments.
  static let paths: [String] = commands().map { $0.path.joined(separator: " ") }

  /// `bitplan bench kernels` → HelpSnapshots/bitplan-bench-kernels.txt.
  static func snapshotFile(_ path: String) -> URL {
    folder.appendingPathComponent(path.replacingOccurrences(of: " ", with: "-") + ".txt")
  }

  /// The help screen as `bitplan … --help` prints it, at `columns` wide.
  static func help(_ path: String) throws -> String {
    let type = try #require(commands().first { $0.path.joined(separator: " ") == path }?.type)
    return type == BitPlanCommand.self
      ? BitPlanCommand.helpMessage(columns: columns)
      : BitPlanCommand.helpMessage(for: type, columns: columns)
  }

  @Test(arguments: paths) func helpScreenMatchesItsSnapshot(_ path: String) throws {
    let actual = try Self.help(path)
    let file = Self.snapshotFile(path)
    if Self.updating {
      try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
      try actual.write(to: file, atomically: true, encoding: .utf8)
      return
    }
    guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
      Issue.record(
        """
        no help snapshot for `\(path)` at \(file.path): run the tests once with BITPLAN_UPDATE_SNAPSHOTS=1 \
        (--filter HelpSnapshotTests), read the new file, and commit it
        """)
      return
    }
    if actual != expected {
      let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
      let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
      let line = (0..<min(a.count, e.count)).first { a[$0] != e[$0] } ?? min(a.count, e.count)
      Issue.record(
        """
        `\(path) --help` differs from \(file.lastPathComponent) at line \(line + 1):
          snapshot: \(line < e.count ? String(e[line]) : "(end)")
          now:      \(line < a.count ? String(a[line]) : "(end)")
        If the change is intended, rerun with BITPLAN_UPDATE_SNAPSHOTS=1 and commit the snapshot.
        """)
    }
  }

  /// A snapshot whose command is gone would otherwise sit there unnoticed.
  @Test func everySnapshotBelongsToACommand() throws {
    let expected = Set(Self.paths.map { Self.snapshotFile($0).lastPathComponent })
    let present = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".txt") }
    let stale = present.filter { !expected.contains($0) }.sorted()
    #expect(stale.isEmpty, "snapshots without a command (delete them): \(stale)")
  }

  /// The walk itself: the root, every top-level command, and bench's own subcommands.
  @Test func theWalkFindsNestedAndHiddenCommands() {
    #expect(Self.paths.first == "bitplan")
    for path in ["bitplan measure", "bitplan bench", "bitplan bench kernels", "bitplan bench solver", "bitplan tiny-model"] {
      #expect(Self.paths.contains(path), "\(path)")
    }
    #expect(Set(Self.paths).count == Self.paths.count)
  }
}
