import Foundation
import Testing

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
