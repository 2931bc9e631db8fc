import Foundation
import Sensitivity
import Testing
import _TestSupport

/// `measure --score-kld --audit-format F` and `allocate --score kld` end to end on the committed tiny model.
@Suite struct ScoreKLDCLITests {
  @Test func measuredKLDIsAllocatedByAndRefusedWithoutIt() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let run = folder.path + "/RUN.h5", plain = folder.path + "/PLAIN.h5"
    func measure(_ extra: [String], _ output: String) throws -> BitplanProcess.Result {
      try BitplanProcess.run(
        [
          "measure", BitplanProcess.fixture("tiny-llama"), "--calib", MeasureCLITests.calib, "--tokens", "64",
          "--hvp-tokens", "32", "--probes", "2", "--candidates", "int8,int4-g32", "-o", output,
        ] + extra)
    }
    let measured = try measure(["--score-kld", "--kld-tokens", "32", "--audit-format", "int4-g32"], run)
    #expect(measured.status == 0, "\(measured.stderr)")
    #expect(measured.stdout.contains("measured KLD:") && measured.stdout.contains("kld "))
    let file = try RunStore.read(run)
    #expect(file.provenance.kldTokens == 32 && file.provenance.auditFormat == "int4-g32")
    #expect(file.audit?.layer == Array(file.layers.indices))
    let allocated = try BitplanProcess.run(["allocate", run, "--bpw", "6", "--score", "kld", "-o", folder.path + "/plan.json"])
    #expect(allocated.status == 0 && allocated.stdout.contains("score kld"), "\(allocated.stderr)")

    #expect(try measure([], plain).status == 0)
    let refused = try BitplanProcess.run(["allocate", plain, "--bpw", "6", "--score", "kld", "-o", folder.path + "/p2.json"])
    #expect(refused.status != 0 && refused.stderr.contains("--score-kld"))
    #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/p2.json"))
    let both = try measure(["--audit", "2", "--audit-format", "int8"], folder.path + "/bad.h5")
    #expect(both.status != 0 && both.stderr.contains("--audit-format"))
  }
}
