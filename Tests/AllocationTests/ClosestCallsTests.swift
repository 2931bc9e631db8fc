import Allocation
import Foundation
import Testing
import _TestSupport

/// `ClosestCalls` (the swaps `validate --repair` measures) and `MeasuredRepair` (its re-solve rule).
@Suite struct ClosestCallsTests {
  /// Three layers, hand-checkable. Hull slopes (Δloss/Δbytes): A −0.4 then −0.18; B −0.3 then −0.05; C's middle
  /// option (20, 4) lies above the chord from (10, 5) to (30, 0), so C's hull is one step of −0.25. Increments by
  /// slope from 30 bytes: A₁ (40), B₁ (50), then C's 20 bytes do not fit 60, so λ* = 0.25. The exact optimum at 60
  /// bytes is A20 B10 C30 (loss 10; every other 60-byte plan is ≥ 10.2).
  static let problem = AllocationProblem(layers: [
    .init(name: "A", parameterCount: 8, options: [.init(format: "a10", bytes: 10, loss: 8), .init(format: "a20", bytes: 20, loss: 4), .init(format: "a30", bytes: 30, loss: 2.2)]),
    .init(name: "B", parameterCount: 8, options: [.init(format: "b10", bytes: 10, loss: 6), .init(format: "b20", bytes: 20, loss: 3), .init(format: "b30", bytes: 30, loss: 2.5)]),
    .init(name: "C", parameterCount: 8, options: [.init(format: "c10", bytes: 10, loss: 5), .init(format: "c20", bytes: 20, loss: 4), .init(format: "c30", bytes: 30, loss: 0)]),
  ])

  @Test func handCheckedSelection() throws {
    let plan = try Self.problem.solve(budget: 60, using: .exact)
    let choices = plan.choices.map(\.optionIndex)
    #expect(choices == [1, 0, 2])
    let selection = try ClosestCalls.select(Self.problem, choices: choices, budget: 60, count: 10)
    #expect(abs(selection.multiplier - 0.25) < 1e-12)
    // C down to c10 (rate 5/20 = 0.25, distance 0), B up (0.3, ln 1.2), A up (0.18, |ln 0.72|), A down (0.4, ln 1.6).
    #expect(selection.swaps.map { "\($0.layerName) \($0.direction.rawValue) \($0.to)" } == ["C downgrade 0", "B upgrade 1", "A upgrade 2", "A downgrade 0"])
    let expected = [0, log(1.2), abs(log(0.72)), log(1.6)]
    for (swap, d) in zip(selection.swaps, expected) { #expect(abs(swap.distance - d) < 1e-12, "\(swap)") }
    #expect(selection.swaps.map(\.deltaBytes) == [-20, 10, 10, -10])
    #expect(selection.rated == 4)
    #expect(try ClosestCalls.select(Self.problem, choices: choices, budget: 60, count: 2).swaps.count == 2)
  }

  /// The rule by hand: s = (5·0.5 + (−3)(−0.6)) / (25 + 9) = 4.3/34; c10 := 0 + 0.5/s ≈ 3.953, b20 := 6 − 0.6/s
  /// ≈ 1.256. At 60 bytes the optimum moves to A30 B20 C10 (2.2 + 1.256 + 3.953 ≈ 7.41, below A20 B20 C10's 9.21).
  @Test func handCheckedResolve() throws {
    let swaps = try ClosestCalls.select(Self.problem, choices: [1, 0, 2], budget: 60, count: 2).swaps
    let measured = [0.5, -0.6]
    let fit = try #require(MeasuredRepair.scale(predicted: swaps.map(\.predictedDelta), measured: measured))
    #expect(fit.rule == .leastSquares && abs(fit.value - 4.3 / 34) < 1e-15)
    let adjusted = MeasuredRepair.adjusted(Self.problem, swaps: swaps, measured: measured, scale: fit.value)
    #expect(abs(adjusted.layers[2].options[0].loss - 0.5 * 34 / 4.3) < 1e-12)
    #expect(abs(adjusted.layers[1].options[1].loss - (6 - 0.6 * 34 / 4.3)) < 1e-12)
    #expect(adjusted.layers[0] == Self.problem.layers[0])
    let solved = try adjusted.solve(budget: 60, using: .exact)
    #expect(solved.choices.map(\.optionIndex) == [2, 1, 0])
  }

  @Test func scaleFallsBackAndRefuses() {
    // Least squares gives −1: predictions point the wrong way; the magnitude ratio is 1.
    let fallback = MeasuredRepair.scale(predicted: [1, -1], measured: [-1, 1])
    #expect(fallback?.rule == .magnitudeRatio && fallback?.value == 1)
    #expect(MeasuredRepair.scale(predicted: [1, 2], measured: [0, 0]) == nil)
    #expect(MeasuredRepair.scale(predicted: [0, 0], measured: [1, 1]) == nil)
  }

  /// No multiplier (the budget buys everything): nothing is rated. A choice outside a layer's options is refused.
  @Test func noMultiplierAndBadChoice() throws {
    let top = try ClosestCalls.select(Self.problem, choices: [2, 2, 2], budget: 90, count: 4)
    #expect(top.multiplier == 0 && top.swaps.isEmpty)
    #expect(throws: AllocationError.self) { try ClosestCalls.select(Self.problem, choices: [3, 0, 0], budget: 60, count: 4) }
    #expect(throws: AllocationError.self) { try ClosestCalls.select(Self.problem, choices: [0], budget: 60, count: 4) }
  }

  /// Seeded random problems without constraints, the exact plan at several budgets: the selection equals the
  /// brute-force twin's (hull membership by every chord), and on Lagrangian plans (all on their hulls) λ*
  /// separates the swaps: upgrades have rate ≤ λ*, downgrades ≥ λ*.
  @Test func matchesBruteForceAndSeparates() throws {
    var rng = SplitMix64(seed: 15)
    var compared = 0
    for instance in 0..<300 {
      let problem = RandomProblems.make(&rng, maxLayers: 6, maxCandidates: 5, maxBytes: 40, integerLosses: false, constraints: false)
      let range = try problem.achievableBytes()
      for budget in stride(from: range.lowerBound, through: range.upperBound, by: 7) {
        for solver in [SolverKind.exact, .lagrange] {
          let choices = try problem.solve(budget: budget, using: solver).choices.map(\.optionIndex)
          let selection = try ClosestCalls.select(problem, choices: choices, budget: budget, count: 64)
          let reference = try ClosestCalls.selectReference(problem, choices: choices, multiplier: selection.multiplier, count: 64)
          #expect(selection.swaps == reference, "instance \(instance) budget \(budget) \(solver)")
          if solver == .lagrange {
            for s in selection.swaps {
              let ok = s.direction == .upgrade ? s.rate <= selection.multiplier * (1 + 1e-12) : s.rate >= selection.multiplier * (1 - 1e-12)
              #expect(ok, "instance \(instance) budget \(budget): \(s) vs λ* \(selection.multiplier)")
            }
          }
          compared += 1
        }
      }
    }
    #expect(compared > 500)
  }
}
