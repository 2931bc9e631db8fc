import Allocation
import Testing

/// A layer named `name` whose format `f` costs `bytes[f]` bytes and loses `weight / bytes`.
private func layer(_ name: String, _ formats: [String: Int], weight: Double = 1) -> AllocationProblem.Layer {
  .init(
    name: name, parameterCount: 64,
    options: formats.sorted { $0.key < $1.key }.map {
      .init(format: $0.key, bytes: $0.value, loss: weight / Double($0.value))
    })
}

/// Two llama blocks: q, k, v, o (sensitivity 4, 3, 2, 1) with formats int4 (10 bytes) and int8 (20 bytes).
private func twoBlocks() -> AllocationProblem {
  var layers = [AllocationProblem.Layer]()
  for block in 0..<2 {
    for (name, weight) in [("q", 4.0), ("k", 3), ("v", 2), ("o", 1)] {
      layers.append(layer("model.layers.\(block).self_attn.\(name)_proj", ["int4": 10, "int8": 20], weight: weight))
    }
  }
  return AllocationProblem(layers: layers)
}

private func code(of body: () throws -> Void) -> AllocationError.Code? {
  do { try body() } catch let error as AllocationError { return error.code } catch { return nil }
  return nil
}

@Suite struct ConstraintTests {
  /// The first capture group names the block: q/k/v of block 0 share a format, and so do those of block 1, but the
  /// two blocks are separate. Every frontier point therefore has q/k/v equal within each block.
  @Test func tieByCaptureGroup() throws {
    var problem = twoBlocks()
    problem.constraints = [.tie(pattern: #"layers\.(\d+)\.self_attn\.[qkv]_proj"#)]
    let frontier = try ParetoFrontier(problem)
    // Groups {q0,k0,v0}, {o0}, {q1,k1,v1}, {o1}: 80 bytes + any subset of the upgrades {30, 10, 30, 10}. The bytes
    // are those of untied layers too, but the losses are not: at 90 bytes the tied plan can only upgrade an o_proj
    // (Δloss 1/10 − 1/20 = 0.05) where the untied one upgrades a q_proj (0.2).
    #expect(frontier.points.map(\.bytes) == Array(stride(from: 80, through: 160, by: 10)))
    let untied = try ParetoFrontier(twoBlocks())
    #expect(zip(frontier.points, untied.points).allSatisfy { $0.bytes == $1.bytes && $0.loss >= $1.loss - 1e-12 })
    #expect(abs((frontier.points[1].loss - untied.points[1].loss) - 0.15) < 1e-12)
    for index in frontier.points.indices {
      let formats = frontier.assignment(ofPoint: index).enumerated().map {
        problem.layers[$0.offset].options[$0.element].format
      }
      #expect(
        formats[0] == formats[1] && formats[1] == formats[2] && formats[4] == formats[5] && formats[5] == formats[6])
    }
  }

  /// Without a capture group the key is the name with the match removed: `_proj$` ties nothing across layers, while
  /// `\.\d+\.` ties the same projection across blocks (`model.layers.self_attn.q_proj`).
  @Test func tieByRemovingTheMatch() throws {
    var problem = twoBlocks()
    problem.constraints = [.tie(pattern: #"\.\d+\."#)]
    let frontier = try ParetoFrontier(problem)
    #expect(frontier.points.map(\.bytes) == [80, 100, 120, 140, 160])  // four groups of two layers, 20 bytes a step
    problem.constraints = [.tie(pattern: "_proj$")]
    #expect(try ParetoFrontier(problem).points.count == 9)  // eight independent layers
  }

  /// The first matching pin wins; a later, broader pin fills in the rest.
  @Test func firstPinWins() throws {
    var problem = twoBlocks()
    problem.constraints = [
      .pin(pattern: #"layers\.0\.self_attn\.q"#, format: "int8"), .pin(pattern: "self_attn", format: "int4"),
    ]
    let plan = try problem.solve(budget: 1000)
    #expect(plan.choices.map(\.format) == ["int8"] + Array(repeating: "int4", count: 7))
    #expect(try problem.achievableBytes() == 90...90)
  }

  /// A pinned format the layer lacks names the layer and lists what it allows.
  @Test func pinToUnknownFormat() {
    var problem = twoBlocks()
    problem.constraints = [.pin(pattern: "o_proj", format: "q4_0")]
    #expect {
      try problem.achievableBytes()
    } throws: { error in
      let error = error as? AllocationError
      return error?.code == .unknownFormat && error!.message.contains("'model.layers.0.self_attn.o_proj'")
        && error!.message.contains("int4, int8")
    }
  }

  /// A pin inside a tie group forces the whole group; a tie whose members then share nothing is an error.
  @Test func pinsInsideTies() throws {
    var problem = twoBlocks()
    problem.layers[2].options.removeAll { $0.format == "int8" }  // layers.0.v_proj only allows int4
    problem.constraints = [.tie(pattern: #"layers\.(\d+)\.self_attn\.[qkv]_proj"#)]
    #expect(try problem.achievableBytes() == 80...130)  // block 0's q/k/v are held at int4 (30 bytes) by v
    problem.constraints.insert(.pin(pattern: #"layers\.0\.self_attn\.q"#, format: "int8"), at: 0)
    #expect(code { _ = try problem.achievableBytes() } == .incompatibleTie)
  }

  @Test func badInputsFailWithTheirCode() {
    var problem = twoBlocks()
    problem.constraints = [.tie(pattern: "(unclosed")]
    #expect(code { _ = try problem.achievableBytes() } == .badPattern)
    problem.constraints = [.pin(pattern: "mlp", format: "int4")]
    #expect(code { _ = try problem.achievableBytes() } == .unmatchedPattern)
    problem.constraints = [.tieNames(["model.layers.0.self_attn.q_proj", "nope"])]
    #expect(code { _ = try problem.achievableBytes() } == .unmatchedPattern)
    #expect(code { try AllocationProblem(layers: []).validate() } == .emptyProblem)
    #expect(code { try AllocationProblem(layers: [layer("a", [:])]).validate() } == .noCandidates)
    #expect(
      code { try AllocationProblem(layers: [layer("a", ["x": 1]), layer("a", ["x": 1])]).validate() } == .duplicate)
    #expect(code { try AllocationProblem(layers: [layer("a", ["x": -1])]).validate() } == .badNumber)
    var nan = AllocationProblem(layers: [layer("a", ["x": 1])])
    nan.layers[0].options[0].loss = .nan
    #expect(code { try nan.validate() } == .badNumber)
    var twice = AllocationProblem(layers: [layer("a", ["x": 1])])
    twice.layers[0].options.append(twice.layers[0].options[0])
    #expect(code { try twice.validate() } == .duplicate)
  }

  /// Below the smallest plan: fails at once, with the achievable range in the error and in its message.
  @Test func infeasibleBudgetReportsRange() {
    let problem = twoBlocks()
    do {
      _ = try problem.solve(budget: 79)
      Issue.record("a budget of 79 bytes should be infeasible")
    } catch {
      #expect(error.code == .infeasible && error.achievableBytes == 80...160)
      #expect(error.description.contains("achievable range is 80...160 bytes"))
    }
    #expect(code { try problem.checkFeasible(budget: 80) } == nil)
  }
}
