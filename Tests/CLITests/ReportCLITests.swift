import Foundation
import Testing
import _TestSupport

/// `bitplan report`: end to end on the tiny model (measure → allocate → report), and refusals that leave no
/// partial output.
@Suite(.serialized) struct ReportCLITests {
  /// A measured run of the tiny model with an audit, and its plan, in a fresh folder.
  static func measured() throws -> (dir: URL, run: String, plan: String) {
    let dir = try BitplanProcess.temporaryDirectory()
    let run = dir.appendingPathComponent("RUN.h5").path
    let measured = try BitplanProcess.run([
      "measure", BitplanProcess.fixture("tiny-llama"), "--calib", TestModels.sharedData + "/prideprejudice.txt",
      "--tokens", "64", "--hvp-tokens", "32", "--probes", "8", "--candidates", "int8,int4-g32,int2-g32", "--audit", "6",
      "-o", run,
    ])
    try #require(measured.status == 0, "\(measured.stderr)")
    let plan = dir.appendingPathComponent("plan.json").path
    let allocated = try BitplanProcess.run(["allocate", run, "--bpw", "5", "-o", plan])
    try #require(allocated.status == 0, "\(allocated.stderr)")
    return (dir, run, plan)
  }

  @Test func writesBothFilesForARunAndItsPlan() throws {
    let (dir, run, plan) = try Self.measured()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("report").path
    let r = try BitplanProcess.run(["report", run, "--plan", plan, "-o", out])
    #expect(r.status == 0, "\(r.stderr)")
    let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
    let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
    #expect(md.contains("## Plan vs baselines") && md.contains("bitplan validate"), "validation missing: names the command")
    #expect(md.contains("--candidates int8,int4-g32,int2-g32 --audit 6 -o \(run)"))
    let planJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
    #expect(md.contains("--budget \(planJSON["budget_bytes"] as! Int) --solver exact --score fisher_diag"))
    // 2 blocks × 7 linear layers: 14 marks, 14 cells.
    let sensitivity = try #require(html.range(of: "<figure id=\"sensitivity\">"))
    let end = try #require(html.range(of: "</figure>", range: sensitivity.upperBound..<html.endIndex))
    #expect(html[sensitivity.upperBound..<end.lowerBound].components(separatedBy: "data-layer=").count - 1 == 14)
    #expect(html.range(of: "https?://", options: .regularExpression) == nil)
    #expect(html.contains("id=\"bits-heatmap\"") && html.contains("<polyline class=\"frontier\""))
    let contents = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(contents == ["report.html", "report.md"], "no temporary files left")
    // Run alone: the plan section says which command fills it; rewriting an existing folder works.
    let alone = try BitplanProcess.run(["report", run, "-o", out, "--json"])
    #expect(alone.status == 0, "\(alone.stderr)")
    #expect(alone.stdout.contains("report.html"))
    let md2 = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
    #expect(md2.contains("bitplan allocate \(run) --bpw 4.5 -o PLAN.json --record"))
  }

  @Test func badInputsAreOneLineErrorsAndWriteNothing() throws {
    let (dir, run, plan) = try Self.measured()
    defer { try? FileManager.default.removeItem(at: dir) }
    func expectRefused(_ args: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
      let r = try BitplanProcess.run(args)
      #expect(r.status != 0, sourceLocation: sourceLocation)
      #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)", sourceLocation: sourceLocation)
      #expect(r.stderr.contains(fragment), "\(r.stderr)", sourceLocation: sourceLocation)
    }
    let out = dir.appendingPathComponent("out").path
    // A missing plan, a plan that is not JSON, a run that is not a run: no folder appears.
    try expectRefused(["report", run, "--plan", dir.appendingPathComponent("nope.json").path, "-o", out], "--plan")
    let text = dir.appendingPathComponent("text.json").path
    try Data("not json".utf8).write(to: URL(fileURLWithPath: text))
    try expectRefused(["report", run, "--validation", text, "-o", out], "--validation")
    try expectRefused(["report", plan, "-o", out], plan)
    // A plan for another model.
    var other = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
    other["model_sha256"] = String(repeating: "0", count: 64)
    let otherPlan = dir.appendingPathComponent("other.json").path
    try JSONSerialization.data(withJSONObject: other).write(to: URL(fileURLWithPath: otherPlan))
    try expectRefused(["report", run, "--plan", otherPlan, "-o", out], "not the same model")
    #expect(!FileManager.default.fileExists(atPath: out))
    // -o naming a file or an input: refused, the file untouched.
    let before = try Data(contentsOf: URL(fileURLWithPath: plan))
    try expectRefused(["report", run, "--plan", plan, "-o", plan], "-o")
    #expect(try Data(contentsOf: URL(fileURLWithPath: plan)) == before)
    try expectRefused(["report", run, "-o", text], "not a folder")
    // An output folder whose parent is missing.
    try expectRefused(["report", run, "-o", dir.appendingPathComponent("a/b").path], "does not exist")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
    #expect(leftovers.isEmpty, "\(leftovers)")
  }
}
