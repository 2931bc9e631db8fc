import Foundation
import Sensitivity
import Testing
import _TestSupport

/// `--quantizer` end to end on the committed tiny model: measure records which quantizer won each (layer,
/// candidate), the plan carries it, validate runs each layer by it (or as told) and says how many each took.
@Suite struct QuantizerCLITests {
  static func measure(_ quantizer: String, _ output: String) throws -> BitplanProcess.Result {
    try BitplanProcess.run([
      "measure", BitplanProcess.fixture("tiny-llama"), "--calib", MeasureCLITests.calib, "--tokens", "64",
      "--hvp-tokens", "32", "--probes", "2", "--candidates", "int8,int4-g32,int2-g32", "--quantizer", quantizer,
      "-o", output,
    ])
  }

  @Test func measuredQuantizersNeverLoseToRoundToNearestAndReachTheValidation() throws {
    let folder = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    var runs: [String: MeasuredRun] = [:]
    for q in ["rtn", "gptq", "awq", "best"] {
      let r = try Self.measure(q, folder.path + "/\(q).h5")
      #expect(r.status == 0, "\(q): \(r.stderr)")
      runs[q] = try RunStore.read(folder.path + "/\(q).h5")
      #expect(runs[q]!.provenance.quantizer == q)
    }
    let rtn = runs["rtn"]!
    #expect(rtn.quantizer.allSatisfy { $0.allSatisfy { $0 == "rtn" } })
    for q in ["gptq", "awq", "best"] {
      let run = runs[q]!
      let used = Set(run.quantizer.joined())
      #expect(used.isSubset(of: ["rtn", q == "best" ? "gptq" : q, q == "best" ? "awq" : q]), "\(q): \(used)")
      #expect(used.contains(q == "best" ? "gptq" : q) || used.contains("awq"), "\(q) won somewhere: \(used)")
      for (l, row) in run.outputError.enumerated() {
        for (c, e) in row.enumerated() {
          // The same layer inputs and the same calibration: the input-aware quantizers keep round to nearest's
          // codes (α = 0, or GPTQ's guard) whenever they would not lower the output error.
          #expect(e <= rtn.outputError[l][c] * (1 + 1e-6) + 1e-12, "\(q) layer \(l) candidate \(c): \(e) > \(rtn.outputError[l][c])")
        }
      }
    }

    // The plan says each layer's quantizer; validate runs it so and counts them.
    let plan = folder.path + "/plan.json"
    let allocated = try BitplanProcess.run(["allocate", folder.path + "/best.h5", "--bpw", "4", "-o", plan])
    #expect(allocated.status == 0, "\(allocated.stderr)")
    let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
    let layers = document["layers"] as! [String: [String: Any]]
    let planned = layers.values.map { $0["quantizer"] as? String }
    #expect(planned.allSatisfy { ["rtn", "gptq", "awq"].contains($0 ?? "") }, "\(planned)")
    func validate(_ extra: [String]) throws -> (BitplanProcess.Result, [String: Int]) {
      let r = try BitplanProcess.run(
        ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", ValidateCLITests.eval, "--tokens", "64",
         "--windows", "2", "--bootstrap", "50", "--baselines", "uniform", "-o", folder.path + "/V.json"] + extra,
        environment: ["XDG_CACHE_HOME": folder.path + "/cache"])
      guard r.status == 0 else { return (r, [:]) }
      let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path + "/V.json"))) as! [String: Any]
      let models = json["models"] as! [[String: Any]]
      return (r, models[0]["quantizer_counts"] as? [String: Int] ?? [:])
    }
    let (asPlanned, counts) = try validate(["--run", folder.path + "/best.h5"])
    #expect(asPlanned.status == 0, "\(asPlanned.stderr)")
    var want: [String: Int] = [:]
    for q in planned { want[q!, default: 0] += 1 }
    #expect(counts == want, "the packed model uses the plan's quantizer per layer")
    let (told, gptqCounts) = try validate(["--quantizer", "gptq", "--calib", MeasureCLITests.calib])
    #expect(told.status == 0, "\(told.stderr)")
    #expect(Set(gptqCounts.keys).isSubset(of: ["gptq", "rtn"]) && gptqCounts.values.reduce(0, +) == layers.count)

    let bad = try BitplanProcess.run(
      ["validate", BitplanProcess.fixture("tiny-llama"), plan, "--eval", ValidateCLITests.eval, "--quantizer", "gptq4",
       "-o", folder.path + "/bad.json"])
    #expect(bad.status != 0 && bad.stderr.contains("--quantizer") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/bad.json"))
  }
}
