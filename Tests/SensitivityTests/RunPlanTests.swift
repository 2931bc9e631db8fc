import Foundation
import HDF5
import Sensitivity
import Testing
import _TestSupport

/// `/plan` and `/validation/document` in a finished run file: stored byte for byte, kept across each other's
/// rewrites, a validation of another plan dropped, bad records and partial files refused, the file still sealed.
@Suite struct RunPlanTests {
  let layers: [MeasuredRun.Layer] = [
    .init(name: "model.layers.0.self_attn.q_proj", rows: 2, columns: 3), .init(name: "lm_head", rows: 1, columns: 4),
  ]
  let candidates: [MeasuredRun.Candidate] = [.init(name: "int8", bitsPerWeight: 8.5), .init(name: "int4", bitsPerWeight: 4.5)]

  /// A finished run with no plan (a store finished at once: NaN statistics are fine for these tests).
  func finishedRun(_ folder: String) throws -> String {
    let path = folder + "/RUN.h5"
    var provenance = toyProvenance()
    provenance.candidates = candidates.map(\.name)
    let store = try RunStore(path: path, provenance: provenance, layers: layers, candidates: candidates)
    try store.finish()
    return path
  }

  /// A plan record whose document is seeded JSON text (unicode and escapes included, as PLAN.json may hold).
  func record(seed: UInt64, format: String = "int4") -> RunPlanRecord {
    let loss = randomDoubles(2, seed: seed)
    let document = Data("{\n  \"budget_bytes\" : \(seed),\n  \"model\" : \"ΔLoss \\\"tiny\\\"\",\n  \"loss\" : \(loss)\n}\n".utf8)
    return RunPlanRecord(
      document: document, layer: layers.map(\.name), format: [format, "int8"], bytes: [3, 4], predictedLoss: loss,
      score: "fisher_diag", solver: "exact", target: "llama-cpp", budgetBytes: Int(seed))
  }

  func table(plan: String) -> MeasuredRun.ValidationTable {
    var t = MeasuredRun.ValidationTable()
    t.name = ["plan", "uniform"]
    t.label = ["plan (exact, fisher_diag)", "uniform int4"]
    t.bytes = [7, 6]
    t.bitsPerWeight = [5.6, 4.8]
    t.kld = [0.1, 0.2]; t.kldLow = [0.05, 0.1]; t.kldHigh = [0.15, 0.3]
    t.perplexity = [10, 11]; t.perplexityLow = [9, 10]; t.perplexityHigh = [11, 12]; t.top1 = [0.9, 0.8]
    t.scoringProtocol = "bitplan"; t.activations = "int8"; t.evalSHA256 = "ab"; t.plan = plan; t.tokens = 64; t.windows = 2
    return t
  }

  @Test func planAndValidationRoundTripByteForByte() throws {
    let folder = temporaryFolder("runplan")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    #expect(try RunStore.documents(path) == RunDocuments())
    #expect(try RunStore.planRecord(path) == nil)
    let before = try RunStore.read(path)

    let plan = record(seed: 11)
    try RunStore.recordPlan(plan, to: path)
    #expect(try RunStore.planRecord(path) == plan)
    var documents = try RunStore.documents(path)
    #expect(documents.plan == plan.document && documents.planSHA256 == plan.sha256 && documents.validation == nil)
    #expect(try canonicalJSON(RunStore.read(path)) == canonicalJSON(before), "the measurement is untouched")

    let validation = Data("{\"models\": [1, 2], \"note\": \"é\"}\n".utf8)
    try RunStore.attachValidation(table(plan: "PLAN.json"), document: validation, planSHA256: plan.sha256, to: path)
    documents = try RunStore.documents(path)
    #expect(documents.validation == validation && documents.validationMatchesPlan)
    #expect(documents.plan == plan.document, "validate --run keeps /plan")
    #expect(try RunStore.read(path).validation == table(plan: "PLAN.json"))
    #expect(try RunFileCheck.sealed(path))
  }

  @Test func recordingAnotherPlanDropsItsValidation() throws {
    let folder = temporaryFolder("runplan-drop")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    let first = record(seed: 1)
    try RunStore.recordPlan(first, to: path)
    try RunStore.attachValidation(table(plan: "a"), document: Data("{}".utf8), planSHA256: first.sha256, to: path)
    // The same plan again: the validation stays.
    try RunStore.recordPlan(first, to: path)
    #expect(try RunStore.documents(path).validation == Data("{}".utf8))
    #expect(try RunStore.read(path).validation != nil)
    // Another plan: the validation (table and document) goes.
    let second = record(seed: 2, format: "int8")
    try RunStore.recordPlan(second, to: path)
    let documents = try RunStore.documents(path)
    #expect(documents.plan == second.document && documents.validation == nil && !documents.validationMatchesPlan)
    #expect(try RunStore.read(path).validation == nil)
    // A validation of a plan other than the stored one is kept, but does not match it.
    try RunStore.attachValidation(table(plan: "b"), document: Data("[]".utf8), planSHA256: first.sha256, to: path)
    #expect(try !RunStore.documents(path).validationMatchesPlan)
  }

  @Test func badRecordsAndPartialRunsAreRefused() throws {
    let folder = temporaryFolder("runplan-bad")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    let original = try Data(contentsOf: URL(fileURLWithPath: path))
    var unknown = record(seed: 3)
    unknown.layer[1] = "model.layers.9.mlp.down_proj"
    #expect(throws: SensitivityError.self) { try RunStore.recordPlan(unknown, to: path) }
    var short = record(seed: 3)
    short.bytes = [1]
    #expect(throws: SensitivityError.self) { try RunStore.recordPlan(short, to: path) }
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original, "a refused record leaves the file as it was")
    #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))

    // A partial run holds no plan: refused as partial.
    var provenance = toyProvenance()
    provenance.candidates = candidates.map(\.name)
    let partial = folder + "/P.h5"
    _ = try RunStore(path: partial, provenance: provenance, layers: layers, candidates: candidates)
    try FileManager.default.copyItem(atPath: partial + ".partial", toPath: folder + "/copy.h5")
    let error = #expect(throws: SensitivityError.self) { try RunStore.recordPlan(record(seed: 4), to: folder + "/copy.h5") }
    #expect(error?.code == .badRunFile && error?.message.contains("partial") == true)
  }

  @Test func aDamagedPlanDocumentIsCaught() throws {
    let folder = temporaryFolder("runplan-damage")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try finishedRun(folder)
    try RunStore.recordPlan(record(seed: 5), to: path)
    // Edit the document with HDF5 and reseal: the checksum passes, plan_sha256 does not.
    try HDF5File.withFile(path, mode: .readWrite) { f in try f.write(["{}"], shape: [], to: "/plan/document") }
    try RunStore.resealAfterEditing(path)
    #expect(throws: SensitivityError.self) { try RunStore.planRecord(path) }
  }
}

/// Whether a run file starts with the checksum header (it was sealed after the last rewrite).
enum RunFileCheck {
  static func sealed(_ path: String) throws -> Bool {
    let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8) ?? Data()
    return head == Data("BPRUNSHA".utf8)
  }
}
