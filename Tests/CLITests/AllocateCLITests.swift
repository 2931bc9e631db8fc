import Foundation
import Testing
import _TestSupport

@Suite struct AllocateCLITests {
  @Test func writesAPlanWithinTheBudget() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let plan = dir.appendingPathComponent("plan.json").path
    let csv = dir.appendingPathComponent("frontier.csv").path
    let r = try BitplanProcess.run([
      "allocate", BitplanProcess.fixture("problem-small.json"), "--bpw", "4.5", "-o", plan, "--frontier", csv,
    ])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
    let total = json["total_bytes"] as! Int, budget = json["budget_bytes"] as! Int
    #expect(total <= budget)
    #expect(json["solver"] as? String == "exact")
    #expect((json["layers"] as! [String: Any]).count == 14)
    let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    #expect(lines.count > 2)
  }

  @Test func infeasibleBudgetFailsAtOnceWithTheRangeAndWritesNothing() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let plan = dir.appendingPathComponent("plan.json").path
    let r = try BitplanProcess.run(["allocate", BitplanProcess.fixture("problem-small.json"), "--budget", "1000", "-o", plan])
    #expect(r.status != 0)
    #expect(r.stderr.contains("1000"), "\(r.stderr)")
    #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: plan))
  }

  @Test func missingBudgetIsAUsageError() throws {
    let r = try BitplanProcess.run(["allocate", BitplanProcess.fixture("problem-small.json"), "-o", "/tmp/never.json"])
    #expect(r.status == 64)  // EX_USAGE, ArgumentParser's validation exit code
    #expect(r.stderr.contains("--budget"))
  }
}

/// `bitplan allocate RUN.h5`: the problem comes from a measurement run of the tiny model, scored by any proxy.
@Suite struct AllocateFromRunCLITests {
  @Test func allocatesFromAMeasuredRunWithEveryScore() throws {
    let dir = try BitplanProcess.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = dir.appendingPathComponent("RUN.h5").path
    let measured = try BitplanProcess.run([
      "measure", BitplanProcess.fixture("tiny-llama"), "--calib", TestModels.sharedData + "/prideprejudice.txt",
      "--tokens", "64", "--hvp-tokens", "32", "--probes", "8", "--candidates", "int8,int4-g32,int2-g32", "-o", run,
    ])
    try #require(measured.status == 0, "\(measured.stderr)")
    for score in ["fisher_diag", "hawq_trace", "taylor_diag", "output_error", "weight_error"] {
      let plan = dir.appendingPathComponent("plan-\(score).json").path
      // 8 probes leave traces too noisy to rank layers: the Hessian-based scores need the explicit flag.
      let noisy = ["hawq_trace", "taylor_diag"].contains(score) ? ["--allow-noisy-scores"] : []
      let r = try BitplanProcess.run(["allocate", run, "--bpw", "5", "--score", score, "-o", plan, "--json"] + noisy)
      #expect(r.status == 0, "\(score): \(r.stderr)")
      let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
      #expect(json["score"] as? String == score)
      #expect((json["total_bytes"] as! Int) <= (json["budget_bytes"] as! Int))
      let layers = json["layers"] as! [String: [String: Any]]
      #expect(layers.count == 14, "2 blocks × 7 linear layers")
      #expect(layers.values.allSatisfy { ["int8", "int4-g32", "int2-g32"].contains($0["format"] as! String) })
    }
    // The default score for a run is fisher_diag; an unknown one is a one-line error naming the ones there are.
    let plan = dir.appendingPathComponent("plan.json").path
    let byDefault = try BitplanProcess.run(["allocate", run, "--bpw", "5", "-o", plan])
    #expect(byDefault.status == 0 && byDefault.stdout.contains("fisher_diag"), "\(byDefault.stdout)")
    let unknown = try BitplanProcess.run(["allocate", run, "--bpw", "5", "--score", "nope", "-o", plan + "2"])
    #expect(unknown.status != 0 && unknown.stderr.contains("hawq_trace"))
    #expect(!FileManager.default.fileExists(atPath: plan + "2"))
    // Infeasible: below int2 everywhere.
    let tooSmall = try BitplanProcess.run(["allocate", run, "--bpw", "1", "-o", plan + "3"])
    #expect(tooSmall.status != 0 && tooSmall.stderr.split(separator: "\n").count == 1)
  }
}
