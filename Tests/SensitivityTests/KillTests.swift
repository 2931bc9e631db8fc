import Foundation
import Sensitivity
import Testing
import _TestSupport

/// A real `kill -9`: the test binary runs a slowed-down toy measurement (10 ms per model call) in child processes of
/// itself and kills each at a seeded random moment 0-40 ms after its first checkpoint (inside a model call or in the
/// middle of a checkpoint write), until the partial run has reached the per-layer stage; then it finishes the run
/// in-process and compares it with an uninterrupted one, bit for bit. The in-process interruption tests in
/// `MeasurementRunTests` cover every stage boundary; this one covers dying at an arbitrary instruction.
@Suite struct KillTests {
  static let childVariable = "BITPLAN_SENS_CHILD_RUN"

  /// The child's side: runs only inside a child process started by `killedProcessesResumeToIdenticalNumbers`.
  @Test(.enabled(if: ProcessInfo.processInfo.environment[KillTests.childVariable] != nil))
  func childMeasurement() throws {
    let path = ProcessInfo.processInfo.environment[KillTests.childVariable]!
    _ = try MeasurementRun(model: ToyModel(), provenance: toyProvenance(eigen: 3), path: path).run()
  }

  @Test func killedProcessesResumeToIdenticalNumbers() throws {
    let reference = temporaryFolder("kill9-ref")
    let folder = temporaryFolder("kill9")
    defer { for f in [reference, folder] { try? FileManager.default.removeItem(atPath: f) } }
    let settings = toyProvenance(eigen: 3)
    let (layers, candidates) = (ToyModel().linearLayers, ToyModel().candidates)
    let uninterrupted = try MeasurementRun(model: ToyModel(), provenance: settings, path: reference + "/RUN.h5").run()
    let path = folder + "/RUN.h5"
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var rng = SplitMix64(seed: 2026)
    var killedLive = 0
    var progressSeen: [Int] = []
    // Kill children until the partial run is inside the per-layer stage (at most 40 tries).
    while progressSeen.count < 40 && (progressSeen.last ?? 0) < 3 + 24 + 3 + 2 {
      let child = Process()
      child.executableURL = executable
      child.arguments = ["--testing-library", "swift-testing", "--filter", "KillTests/childMeasurement"]
      var environment = ProcessInfo.processInfo.environment
      environment[Self.childVariable] = path
      environment["BITPLAN_SENS_TOY_DELAY_US"] = "3000"
      child.environment = environment
      child.standardOutput = FileHandle.nullDevice
      child.standardError = FileHandle.nullDevice
      let before = Self.fileNumber(path + ".partial")
      try child.run()
      // Wait for this child's first checkpoint (a new inode: checkpoints are renamed into place), however slowly
      // the machine starts it, then let it run a random 0-40 ms more (0-13 model calls) and kill it.
      let deadline = Date().addingTimeInterval(20)
      while Self.fileNumber(path + ".partial") == before && child.isRunning && Date() < deadline { usleep(1000) }
      usleep(UInt32.random(in: 0..<40_000, using: &rng))
      kill(child.processIdentifier, SIGKILL)
      child.waitUntilExit()
      if child.terminationReason == .uncaughtSignal { killedLive += 1 }
      var units = 0
      if FileManager.default.fileExists(atPath: path + ".partial") {
        let store = try RunStore(path: path, provenance: settings, layers: layers, candidates: candidates)
        units =
          store.progress.fisherWindows + store.run.probeValues.count + store.progress.eigenLayers
          + store.progress.layersDone
      }
      progressSeen.append(units)
    }
    #expect(killedLive == progressSeen.count, "every child was killed while running")
    #expect(progressSeen.last! >= 32, "progress at each kill: \(progressSeen)")
    #expect(progressSeen.count >= 4, "several kills: \(progressSeen)")
    #expect(!FileManager.default.fileExists(atPath: path), "the run never finished inside a child")
    let resumed = try MeasurementRun(model: ToyModel(), provenance: settings, path: path).run()
    #expect(resumed == uninterrupted)
    #expect(try RunStore.read(path) == uninterrupted)
    let left = try FileManager.default.contentsOfDirectory(atPath: folder)
    #expect(left == ["RUN.h5"], "files left beside the run: \(left)")
  }

  /// The inode number of `path`, or nil when it does not exist.
  static func fileNumber(_ path: String) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? UInt64
  }
}
