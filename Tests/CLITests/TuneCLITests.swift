import Foundation
import Testing
import _TestSupport

/// `bitplan validate --tune-steps` end to end on the committed tiny model: one more row, `plan-tuned`, with the
/// plan's bytes and quantizers, its KLD paired against the plan's, and the calibration loss lower after tuning;
/// bad option values are one-line errors with no output.
@Suite struct TuneCLITests {
  static func validate(_ folder: URL, plan: String, _ extra: [String]) throws -> BitplanProcess.Result {
    try BitplanProcess.run(
      ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", ValidateCLITests.eval, "--tokens", "64",
       "--windows", "2", "--bootstrap", "50", "--baselines", "uniform", "-o", folder.path + "/V.json"] + extra,
      environment: ["XDG_CACHE_HOME": folder.path + "/cache"])
  }

  @Test func tunedScalesAreScoredAfterThePlan() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try ValidateCLITests.writePlan(plan, format: "int3-g32", down: "q4_0")
    let r = try Self.validate(folder, plan: plan, ["--calib", MeasureCLITests.calib, "--tune-steps", "20"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("plan + tuned scales (20 steps)") && r.stdout.contains("calibration kld"), "\(r.stdout)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
    let models = json["models"] as! [[String: Any]]
    #expect(models.map { $0["name"] as! String } == ["plan", "plan-tuned", "uniform"])
    let (planRow, tuned) = (models[0], models[1])
    #expect(planRow["tuning"] == nil && models[2]["tuning"] == nil)
    #expect(tuned["bytes"] as? Int == planRow["bytes"] as? Int)
    #expect(tuned["format_counts"] as? [String: Int] == planRow["format_counts"] as? [String: Int])
    #expect(tuned["quantizer_counts"] as? [String: Int] == planRow["quantizer_counts"] as? [String: Int])
    #expect(tuned["kld_minus_plan"] is [String: Double])
    let tuning = try #require(tuned["tuning"] as? [String: Any])
    #expect(tuning["steps"] as? Int == 20 && tuning["window_tokens"] as? Int == 128 && tuning["loss"] as? String == "kld")
    // 12 int3 layers tuned; the 2 q4_0 down projections are not.
    #expect(tuning["tuned_layers"] as? Int == 12)
    let before = try #require(tuning["calibration_loss_before"] as? Double)
    let after = try #require(tuning["calibration_loss_after"] as? Double)
    #expect(after < before, "\(before) → \(after)")

    // Without calibration text, tuning is refused in one line before any output.
    let noCalib = try Self.validate(folder, plan: plan, ["--tune-steps", "5"])
    #expect(noCalib.status != 0 && noCalib.stderr.contains("--tune-steps") && noCalib.stderr.split(separator: "\n").count == 1, "\(noCalib.stderr)")
  }

  @Test(arguments: [["--tune-steps", "-1"], ["--tune-steps", "1000000000"], ["--tune-lr", "0"], ["--tune-lr", "nan"], ["--tune-lr", "-0.5"], ["--tune-loss", "mse"], ["--tune-tokens", "1"]])
  func badValuesAreRefusedInOneLine(arguments: [String]) throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let plan = folder.path + "/PLAN.json"
    try ValidateCLITests.writePlan(plan, format: "int4-g32")
    let r = try Self.validate(folder, plan: plan, ["--calib", MeasureCLITests.calib, "--tune-steps", "3"] + arguments)
    #expect(r.status != 0 && r.stderr.contains(arguments[0]) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/V.json"))
  }
}
