import Foundation
import Sensitivity
import Testing
import _TestSupport

/// The measured-score stage (`--score-kld`, `/measured`) and the all-layer audit (`--audit-format`) on the toy model.
@Suite struct MeasuredScoresTests {
  func provenance(kldTokens: Int = 16, auditFormat: String = "", audit: Int = 0) -> RunProvenance {
    var p = toyProvenance(probes: 6, audit: audit, eigen: 0)
    p.kldTokens = kldTokens
    p.auditFormat = auditFormat
    return p
  }

  func measure(_ folder: String, _ model: ToyModel = ToyModel(), _ p: RunProvenance) throws -> MeasuredRun {
    try MeasurementRun(model: model, provenance: p, path: folder + "/RUN.h5").run()
  }

  @Test func everyOfferedPairIsMeasuredAndReadBack() throws {
    let folder = temporaryFolder("measured")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let run = try measure(folder, ToyModel(), provenance())
    let m = try #require(run.measured)
    let toy = ToyModel()
    let baseline = try toy.baselineNLL(on: .calibration(tokens: 16))
    #expect(m.baselineNLL == baseline && m.tokens == 16)
    for l in run.layers.indices {
      for c in run.candidates.indices {
        if run.bytes[l][c] < 0 {
          #expect(m.kld[l][c].isNaN && m.deltaNLL[l][c].isNaN)
        } else {
          let want = try #require(try toy.score(layer: l, candidate: c, on: .calibration(tokens: 16)))
          #expect(m.kld[l][c] == want.meanKLD && m.deltaNLL[l][c] == want.meanNLL - baseline)
        }
      }
    }
    #expect(try RunStore.read(folder + "/RUN.h5") == run)
    #expect(run.scoreNames.contains("kld"))
    #expect(try run.problemColumns(score: "kld").flatMap(\.loss) == run.layers.indices.flatMap { l in
      run.candidates.indices.filter { run.bytes[l][$0] >= 0 }.map { m.kld[l][$0] }
    })
  }

  /// Killed inside the stage (twice), rerun: the uninterrupted numbers bit for bit.
  @Test(arguments: [0, 1, 4]) func interruptedStageResumesToIdenticalNumbers(scores: Int) throws {
    let (reference, folder) = (temporaryFolder("measured-ref-\(scores)"), temporaryFolder("measured-kill-\(scores)"))
    defer {
      try? FileManager.default.removeItem(atPath: reference)
      try? FileManager.default.removeItem(atPath: folder)
    }
    let uninterrupted = try measure(reference, ToyModel(), provenance())
    #expect(throws: ToyInterrupt.self) { try measure(folder, ToyModel(budget: CallBudget(["score": scores])), provenance()) }
    #expect(!FileManager.default.fileExists(atPath: folder + "/RUN.h5"))
    #expect(throws: ToyInterrupt.self) { try measure(folder, ToyModel(budget: CallBudget(["score": 1])), provenance()) }
    let counting = CallBudget()
    let resumed = try measure(folder, ToyModel(budget: counting), provenance())
    #expect(try canonicalJSON(resumed) == canonicalJSON(uninterrupted))
    #expect(resumed == uninterrupted)
    #expect(counting.calls["gradient", default: 0] == 0, "finished stages are not redone")
    // 3 layers × 3 candidates, 2 offered int2-g6 (widths 6, 6, 3): 8 pairs and a baseline in all
    #expect(counting.calls["score", default: 0] < 9)
  }

  @Test func runWithoutTheStageRefusesTheKLDScore() throws {
    let folder = temporaryFolder("measured-none")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let run = try measure(folder, ToyModel(), provenance(kldTokens: 0))
    #expect(run.measured == nil && !run.scoreNames.contains("kld"))
    let error = try #require(throws: SensitivityError.self) { try run.problemColumns(score: "kld") }
    #expect(error.message.contains("--score-kld") && !error.message.contains("\n"))
  }

  @Test func allLayerAuditCoversEveryLayerThatOffersTheFormat() throws {
    let bytes = [[10, 5, 3], [9, 4, -1], [8, 4, 2]]
    let pairs = try MeasurementRun<ToyModel>.auditPairs(bytes: bytes, format: "int2-g6", candidates: ["int8", "int4", "int2-g6"])
    #expect(pairs.map(\.0) == [0, 2] && pairs.map(\.1) == [2, 2])
    #expect(throws: SensitivityError.self) {
      try MeasurementRun<ToyModel>.auditPairs(bytes: bytes, format: "int3", candidates: ["int8", "int4", "int2-g6"])
    }
    let folder = temporaryFolder("audit-all")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let run = try measure(folder, ToyModel(), provenance(auditFormat: "int4", audit: 3))
    let audit = try #require(run.audit)
    #expect(audit.layer == [0, 1, 2] && audit.candidate == [1, 1, 1])
    // the measured KLD is ranked against the audit too (here exactly 2× the audit's truth: ρ = 1)
    #expect(audit.spearmanKLD["kld"] == 1)
    // a count that disagrees with the layers is refused
    let bad = temporaryFolder("audit-bad")
    defer { try? FileManager.default.removeItem(atPath: bad) }
    #expect(throws: SensitivityError.self) { try measure(bad, ToyModel(), provenance(auditFormat: "int4", audit: 2)) }
  }
}
