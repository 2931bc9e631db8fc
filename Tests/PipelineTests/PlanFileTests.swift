import Allocation
import Foundation
import Pipeline
import Sensitivity
import Testing
import _TestSupport

/// `PlanFile.read` and `PlanFile.decode`: what the formats' grammar and this build's names say about a PLAN.json on
/// top of Allocation's checks, and that every plan BitPlan writes or has committed still reads.
@Suite struct PlanFileTests {
  /// A plan of two tiny-llama layers, consistent in every field.
  static let good = """
    {"format_version": 1, "model": "tiny", "model_sha256": null, "budget_bytes": 400, "total_bytes": 300,
     "bits_per_weight": 5, "solver": "exact", "score": "fisher_diag", "predicted_loss_delta": 0, "target": "any",
     "layers": {
       "model.layers.0.mlp.down_proj": {"format": "int5-g64", "bits": 5, "group_size": 64, "symmetric": true,
         "bytes": 200, "predicted_loss_delta": 0, "quantizer": "rtn"},
       "model.layers.0.mlp.up_proj": {"format": "q4_1", "bits": 4, "group_size": 32, "symmetric": false,
         "bytes": 100, "predicted_loss_delta": 0, "quantizer": "gptq"}}}
    """

  /// The message of the `badPlanFile` error for `text` with `old` replaced by `new`.
  static func refusal(_ old: String, _ new: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let text = good.replacingOccurrences(of: old, with: new)
    try #require(text != good, "'\(old)' is in the plan", sourceLocation: sourceLocation)
    do {
      _ = try PlanFile.decode(Data(text.utf8), source: "PLAN.json 'p.json'")
    } catch {
      #expect(error.code == .badPlanFile, "\(error)", sourceLocation: sourceLocation)
      return error.message
    }
    Issue.record("accepted with \(new)", sourceLocation: sourceLocation)
    return ""
  }

  @Test func aConsistentPlanReads() throws {
    let plan = try PlanFile.decode(Data(Self.good.utf8), source: "PLAN.json 'p.json'")
    #expect(plan.layers.count == 2 && plan.totalBytes == 300)
    // null details say nothing, so contradict nothing
    let nulls = Self.good.replacingOccurrences(of: "\"bits\": 5, \"group_size\": 64, \"symmetric\": true,", with: "\"bits\": null,")
    #expect(try PlanFile.decode(Data(nulls.utf8), source: "x").layers["model.layers.0.mlp.down_proj"]?.bits == nil)
  }

  /// Bug 3: an unknown target or quantizer, named with the field and the known names.
  @Test func unknownTargetsAndQuantizersAreRefused() throws {
    #expect(
      try Self.refusal("\"target\": \"any\"", "\"target\": \"bogus\"")
        == "PLAN.json 'p.json': target 'bogus' is not a runtime this build knows (any, llama-cpp, mlx, gptqmodel, llm-compressor)")
    #expect(
      try Self.refusal("\"quantizer\": \"gptq\"", "\"quantizer\": \"bogus\"")
        == "PLAN.json 'p.json': layers['model.layers.0.mlp.up_proj'].quantizer 'bogus' is not a quantizer this build knows "
        + "(rtn, gptq, awq, imatrix)")
  }

  /// Bug 4: bits, group size and symmetry that the named format contradicts; a format outside the grammar.
  @Test func detailsThatContradictTheFormatAreRefused() throws {
    #expect(
      try Self.refusal("\"bits\": 5", "\"bits\": 2")
        == "PLAN.json 'p.json': layers['model.layers.0.mlp.down_proj'].bits 2 contradicts its format int5-g64 (5 bits)")
    #expect(try Self.refusal("\"group_size\": 64", "\"group_size\": 32").contains("group_size 32 contradicts its format int5-g64 (groups of 64)"))
    #expect(try Self.refusal("\"group_size\": 32", "\"group_size\": 256").contains("up_proj'].group_size 256 contradicts its format q4_1"))
    #expect(try Self.refusal("\"symmetric\": false", "\"symmetric\": true").contains("symmetric true contradicts its format q4_1 (asymmetric)"))
    #expect(try Self.refusal("\"format\": \"q4_1\"", "\"format\": \"bogus\"").contains("up_proj'].format 'bogus' is not a format name"))
    // Allocation's checks come first: the same file, the same error type.
    #expect(try Self.refusal("\"bytes\": 100", "\"bytes\": -5").contains("bytes -5 is negative"))
    #expect(try Self.refusal("\"total_bytes\": 300", "\"total_bytes\": 301").contains("not the sum of the layers' bytes (300)"))
    #expect(try Self.refusal("\"format_version\": 1", "\"format_version\": 2").contains("format_version 2 is not supported"))
  }

  /// Bug 5: a 10 MB format name is quoted as 64 characters and `…`.
  @Test func aHugeFormatNameIsShortened() throws {
    let message = try Self.refusal("\"format\": \"q4_1\"", "\"format\": \"\(String(repeating: "q", count: 10_000_000))\"")
    #expect(message.hasSuffix("format '\(String(repeating: "q", count: 64))…' is not a format name"), "\(message.prefix(300))")
  }

  /// Bug 1: `read` gives the file's name and bad data, not a bad option.
  @Test func readNamesTheFile() throws {
    let folder = temporaryFolder("plan-file")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/plan.json"
    try String(Self.good.prefix(100)).write(toFile: path, atomically: false, encoding: .utf8)
    #expect {
      try PlanFile.read(path, option: "--plan")
    } throws: {
      ($0 as? AllocationError)?.code == .badPlanFile && "\($0)".contains("--plan '\(path)': not valid JSON")
    }
  }

  /// The plans allocate writes (from the fixture PROBLEM.json) and every committed plan, as a file or recorded in a
  /// run file, still read.
  @Test func writtenAndCommittedPlansRead() throws {
    let problem = try AllocationInput.problem(from: TestModels.repositoryRoot + "/fixtures/problem-small.json", score: nil)
    for budget in [3_096_576, 8_000_000, 14_155_776] {
      let plan = try problem.solve(budget: budget)
      _ = try PlanFile.decode(PlanDocument(plan: plan, problem: problem).jsonData(), source: "allocate")
    }
    let reports = TestModels.repositoryRoot + "/reports"
    var plans = 0
    var recorded = 0
    for name in FileManager.default.subpaths(atPath: reports) ?? [] {
      let path = reports + "/" + name
      if name.hasSuffix(".json") && (name as NSString).lastPathComponent.hasPrefix("plan") {
        _ = try PlanFile.read(path)
        plans += 1
      } else if name.hasSuffix(".h5"), let data = try RunStore.documents(path).plan {
        _ = try PlanFile.decode(data, source: path)
        recorded += 1
      }
    }
    #expect(plans >= 5 && recorded >= 1, "\(plans) plan files, \(recorded) recorded plans")
  }

  /// A PROBLEM.json whose candidate details contradict its format is refused by allocate's loader, so allocate
  /// never writes a plan that the other commands refuse to read.
  @Test func problemDetailsThatContradictTheFormatAreRefused() throws {
    let folder = temporaryFolder("problem-details")
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = folder + "/problem.json"
    let text = try String(contentsOfFile: TestModels.repositoryRoot + "/fixtures/problem-small.json", encoding: .utf8)
    let bad = text.replacingOccurrences(of: "\"format\": \"int4-g128\", \"bytes\": 171072, \"error\": 0.00984034, \"bits\": 4", with: "\"format\": \"int4-g128\", \"bytes\": 171072, \"error\": 0.00984034, \"bits\": 3")
    try #require(bad != text)
    try bad.write(toFile: path, atomically: false, encoding: .utf8)
    #expect {
      try AllocationInput.problem(from: path, score: nil)
    } throws: {
      ($0 as? AllocationError)?.code == .badProblemFile
        && "\($0)".contains("layers[0].candidates[1].bits 3 contradicts its format int4-g128 (4 bits)")
    }
  }
}
