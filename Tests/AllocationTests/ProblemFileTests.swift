import Allocation
import Foundation
import Testing

/// The example problem shipped in `fixtures/`, read from the checkout.
private func fixture() throws -> Data {
  let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("fixtures/problem-small.json")
  return try Data(contentsOf: url)
}

private func code(of body: () throws -> Void) -> AllocationError.Code? {
  do { try body() } catch let error as AllocationError { return error.code } catch { return nil }
  return nil
}

@Suite struct ProblemFileTests {
  /// The fixture decodes to 14 layers with 5 candidates (6 for down_proj, which alone allows q4_k), two scores
  /// and one tie group, and solves with every solver.
  @Test func fixtureDecodesAndSolves() throws {
    let file = try ProblemFile.decode(fixture())
    #expect(file.layers.count == 14 && file.scoreNames == ["error", "hessian"])
    #expect(
      file.layers.filter { $0.candidates.contains { $0.format == "q4_k" } }.map(\.name).allSatisfy {
        $0.hasSuffix("down_proj")
      })
    let problem = try file.problem(score: "hessian")
    #expect(problem.score == "hessian" && problem.constraints.count == 1)
    #expect(problem.layers[0].options[0].loss == file.layers[0].candidates[0].scores!["hessian"])
    let budget = try Budget.parse("4MiB").bytes(parameterCount: problem.parameterCount)
    let frontier = try ParetoFrontier(problem)
    for solver in SolverKind.allCases {
      let plan = try problem.solve(budget: budget, using: solver, frontier: frontier)
      #expect(plan.totalBytes <= budget)
      // The tie group shares its format.
      #expect(Set(plan.choices.prefix(3).map(\.format)).count == 1)
    }
  }

  /// Encoding a problem and decoding it again gives the same problem (losses as the `error` score).
  @Test func roundTrip() throws {
    let problem = SyntheticProblem.transformer(blocks: 1, seed: 3)
    let data = try JSONEncoder().encode(ProblemFile(problem))
    var again = try ProblemFile.decode(data).problem()
    again.score = problem.score
    #expect(again == problem)
  }

  /// Every error gives the line and column, the JSON path and what is wrong.
  @Test func malformedFilesNameTheLineColumnAndPath() {
    func message(_ json: String) -> String? {
      do { _ = try ProblemFile.decode(Data(json.utf8)) } catch { return error.message }
      return nil
    }
    #expect(message(#"{"format_version": 2, "layers": []}"#) == "line 1, column 20: format_version: format_version 2 is not supported (this tool reads 1)")
    #expect(
      message(#"{"format_version": 1, "layers": [{"name": "a", "params": 1, "candidates": [{"format": "x"}]}]}"#)
        == "line 1, column 76: layers[0].candidates[0]: required key 'bytes' is missing")
    #expect(
      message(#"{"format_version": 1, "layers": [{"name": "a", "params": "many", "candidates": []}]}"#)
        == "line 1, column 58: layers[0].params: expected a whole number, found a string")
    #expect(message("not json")?.contains("not valid JSON") == true, "\(message("not json") ?? "")")
    #expect(message("{\"format_version\": 1,\n  \"layers\": [ x ]}")?.hasPrefix("line 2, column 15: not valid JSON") == true)
    #expect(code { _ = try ProblemFile.decode(Data("[]".utf8)) } == .badProblemFile)
  }

  /// Byte counts are whole numbers within 2⁵⁰ (JSONDecoder called 1.5 "not valid JSON"), and their sum over layers
  /// stays below 2⁶⁰, so no total can overflow.
  @Test func byteCountsAreWholeAndBounded() {
    func message(bytes: String, layers: Int = 1) -> String? {
      let layer = #"{"name": "L", "params": 10, "candidates": [{"format": "int8", "bytes": "# + bytes + #", "error": 1}]}"#
      let list = (0..<layers).map { layer.replacingOccurrences(of: "\"L\"", with: "\"l\($0)\"") }.joined(separator: ",\n")
      do { _ = try ProblemFile.decode(Data((#"{"format_version": 1, "layers": ["# + list + "]}").utf8)) } catch { return error.message }
      return nil
    }
    #expect(message(bytes: "12") == nil)
    #expect(message(bytes: "1.5") == "line 1, column 106: layers[0].candidates[0].bytes: 1.5 is not a whole number")
    #expect(message(bytes: "4611686018427387904")?.contains("out of range 0...1125899906842624") == true)
    #expect(message(bytes: "99999999999999999999")?.contains("bytes:") == true)
    #expect(message(bytes: "-1")?.contains("out of range") == true)
    #expect(message(bytes: "true")?.contains("expected a whole number, found a boolean") == true)
    #expect(message(bytes: "1125899906842624", layers: 1100)?.contains("sum past 2⁶⁰") == true)
    #expect(message(bytes: "1125899906842624", layers: 1000) == nil)
  }

  @Test func scoresMustExist() throws {
    let json =
      #"{"format_version": 1, "layers": [{"name": "a", "params": 4, "candidates": [{"format": "x", "bytes": 1}]}]}"#
    let file = try ProblemFile.decode(Data(json.utf8))
    #expect(code { _ = try file.problem() } == .unknownScore)
    #expect(code { _ = try file.problem(score: "hessian") } == .unknownScore)
  }

  /// PLAN.json has exactly DESIGN.md's keys, with null for what is unknown.
  @Test func planDocumentSchema() throws {
    var problem = AllocationProblem(
      layers: [
        .init(
          name: "a", parameterCount: 256,
          options: [
            .init(format: "int4-g128", bytes: 136, loss: 0.5, bits: 4, groupSize: 128, symmetric: true, quantizer: "gptq")
          ]),
        .init(name: "b", parameterCount: 256, options: [.init(format: "mystery", bytes: 100, loss: 0.25)]),
      ], model: "m")
    problem.modelSHA256 = nil
    let plan = try problem.solve(budget: 300)
    let object =
      try JSONSerialization.jsonObject(with: PlanDocument(plan: plan, problem: problem).jsonData()) as! [String: Any]
    #expect(
      Set(object.keys) == [
        "format_version", "model", "model_sha256", "budget_bytes", "total_bytes", "bits_per_weight", "solver", "score",
        "predicted_loss_delta", "layers", "target",
      ])
    #expect(object["format_version"] as? Int == 1 && object["total_bytes"] as? Int == 236)
    #expect(object["target"] as? String == "any", "a problem without a target is planned for any runtime")
    #expect(object["model_sha256"] is NSNull && object["solver"] as? String == "exact")
    #expect(abs((object["bits_per_weight"] as! Double) - 8 * 236 / 512) < 1e-12)
    let layers = object["layers"] as! [String: [String: Any]]
    #expect(
      Set(layers["a"]!.keys) == ["format", "bits", "group_size", "symmetric", "bytes", "predicted_loss_delta", "quantizer"])
    #expect(layers["a"]!["quantizer"] as? String == "gptq" && layers["b"]!["quantizer"] is NSNull)
    #expect(layers["a"]!["group_size"] as? Int == 128 && layers["a"]!["bits"] as? Int == 4)
    #expect(layers["b"]!["bits"] is NSNull && layers["b"]!["symmetric"] is NSNull)
    #expect(layers["b"]!["predicted_loss_delta"] as? Double == 0.25)
  }
}
