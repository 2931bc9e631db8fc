import Foundation
import Testing
import _TestSupport

/// `bitplan validate --repair N` end to end on the committed tiny model: measure, allocate, then validate with the
/// run: N closest calls measured on the calibration text, the scale, the re-solve, the `repair` object in
/// VALIDATION.json and `--json`, the repaired plan written; bad combinations are one-line errors with no output.
@Suite struct RepairCLITests {
  /// A run of the tiny model with three candidates and its 4-bit plan, in `folder`.
  static func runAndPlan(_ folder: URL) throws -> (run: String, plan: String) {
    let run = folder.path + "/RUN.h5"
    let measured = try BitplanProcess.run([
      "measure", BitplanProcess.fixture("tiny-llama"), "--calib", MeasureCLITests.calib, "--tokens", "64",
      "--hvp-tokens", "32", "--probes", "2", "--candidates", "int8,int4-g32,int2-g32", "-o", run,
    ])
    #expect(measured.status == 0, "\(measured.stderr)")
    let plan = folder.path + "/PLAN.json"
    let allocated = try BitplanProcess.run(["allocate", run, "--bpw", "4", "-o", plan])
    #expect(allocated.status == 0, "\(allocated.stderr)")
    return (run, plan)
  }

  static func validate(_ folder: URL, plan: String, _ extra: [String]) throws -> BitplanProcess.Result {
    try BitplanProcess.run(
      ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", ValidateCLITests.eval, "--tokens", "64",
       "--windows", "2", "--bootstrap", "50", "--baselines", "uniform", "-o", folder.path + "/V.json"] + extra,
      environment: ["XDG_CACHE_HOME": folder.path + "/cache"])
  }

  @Test func repairMeasuresTheClosestCallsAndReSolves() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let (run, plan) = try Self.runAndPlan(folder)
    let repaired = folder.path + "/REPAIRED.json"
    let r = try Self.validate(folder, plan: plan, ["--run", run, "--repair", "2", "--repair-out", repaired])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("repair: 2 closest calls") && r.stdout.contains("scale: measured ≈"), "\(r.stdout)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
    let repair = try #require(json["repair"] as? [String: Any])
    #expect(repair["requested"] as? Int == 2)
    #expect(repair["calibration_text"] as? String == MeasureCLITests.calib)
    #expect((repair["multiplier"] as? Double ?? 0) > 0)
    let swaps = try #require(repair["swaps"] as? [[String: Any]])
    #expect(swaps.count == 2)
    let planKLD = try #require(repair["plan_calibration_kld"] as? Double)
    for s in swaps {
      let kld = try #require(s["calibration_kld"] as? Double)
      let delta = try #require(s["measured_delta"] as? Double)
      #expect(abs(kld - planKLD - delta) < 1e-12 && kld >= 0)
      #expect(["upgrade", "downgrade"].contains(s["direction"] as? String ?? ""))
      let bytes = try #require(s["delta_bytes"] as? Int)
      #expect((s["direction"] as? String == "upgrade") == (bytes > 0))
    }
    // Distances are sorted, nearest first.
    let distances = swaps.map { $0["distance"] as! Double }
    #expect(distances == distances.sorted())
    #expect((repair["scale"] as? Double ?? 0) > 0 && repair["scale_rule"] is String)
    let budget = try #require(repair["budget_bytes"] as? Int)
    #expect(try #require(repair["repaired_bytes"] as? Int) <= budget)
    #expect(repair["plan_is_exact_optimum"] as? Bool == true)
    let models = (json["models"] as! [[String: Any]]).map { $0["name"] as! String }
    let changes = try #require(repair["changes"] as? [[String: Any]])
    if changes.isEmpty {
      #expect(models == ["plan", "uniform"] && repair["kld_minus_plan"] == nil)
    } else {
      #expect(models == ["plan", "uniform", "plan-repaired"])
      #expect(repair["kld_minus_plan"] is [String: Double] && repair["repaired_kld"] is [String: Double] && repair["improved"] is Bool)
    }
    // The repaired plan: the plan's layers, within the budget, a plan validate reads.
    let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: repaired))) as! [String: Any]
    let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
    #expect(Set((document["layers"] as! [String: Any]).keys) == Set((original["layers"] as! [String: Any]).keys))
    #expect((document["total_bytes"] as! Int) <= budget && document["budget_bytes"] as? Int == budget)
    #expect(repair["repaired_plan"] as? String == repaired)
    let again = try Self.validate(folder, plan: repaired, ["--baselines", "none"])
    #expect(again.status == 0, "\(again.stderr)")

    // --json prints the same document, repair object included.
    let printed = try Self.validate(folder, plan: plan, ["--run", run, "--repair", "1", "--json"])
    #expect(printed.status == 0, "\(printed.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(printed.stdout.utf8)) as! [String: Any]
    #expect((object["repair"] as? [String: Any])?["requested"] as? Int == 1)
  }

  @Test(arguments: [
    (["--repair", "65"], "--repair"), (["--repair", "-1"], "--repair"), (["--repair", "2"], "--run"),
    (["--repair-out", "/tmp/x.json"], "--repair"),
  ])
  func badRepairOptionsAreRefusedInOneLine(arguments: [String], names: String) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try ValidateCLITests.writePlan(plan, format: "int4-g32")
    let r = try Self.validate(folder, plan: plan, arguments)
    #expect(r.status != 0 && r.stderr.contains(names) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }

  /// `--repair-out` naming the plan itself (an input) is refused before any work, and the plan is untouched.
  @Test func repairOutputMayNotClobberAnInput() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try ValidateCLITests.writePlan(plan, format: "int4-g32")
    let before = try Data(contentsOf: URL(fileURLWithPath: plan))
    let run = folder.path + "/RUN.h5"
    try Data("not a run".utf8).write(to: URL(fileURLWithPath: run))
    let r = try Self.validate(folder, plan: plan, ["--run", run, "--repair", "2", "--repair-out", plan])
    #expect(r.status != 0 && r.stderr.contains("--repair-out") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: plan)) == before)
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }

  /// A plan that is not from the run (a layer format the run never measured) is a typed one-line error.
  @Test func planNotFromTheRunIsRefused() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let (run, _) = try Self.runAndPlan(folder)
    let plan = folder.path + "/OTHER.json"
    try ValidateCLITests.writePlan(plan, format: "int3-g32")
    let r = try Self.validate(folder, plan: plan, ["--run", run, "--repair", "2"])
    // refused before any work by validate's check that the plan comes from the --run it is stored in
    #expect(r.status != 0 && r.stderr.contains("--run") && r.stderr.contains("int3-g32") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }
}
