import Allocation
import Foundation
import Testing
import _TestSupport

/// Closed-form bits are a log2 and a few sums: 1e-12 bits is ~10⁴ ulps of numbers near 4, far below any
/// difference that matters and far above rounding.
let bitsTolerance = 1e-12

/// A layer of `n` weights whose candidate with `bytes` bytes has 8·bytes/n effective bits; `n = 8` makes the
/// effective bits equal the byte count, which keeps hand examples readable.
private func layer(_ name: String, n: Int = 8, sigma2s: Double, bytes: [Int]) -> AllocationProblem.Layer {
  .init(
    name: name, parameterCount: n,
    options: bytes.map { .init(format: "b\($0)", bytes: $0, loss: exp2(-2 * Double($0))) }, sensitivity: sigma2s,
    variance: 1)
}

@Suite struct WaterfillTests {
  /// Hand example: s·σ² = 4 and 1, b̄ = 3 bits. G = √(4·1) = 2, so b = 3 + ½·log₂(4/2) = 3.5 and 3 + ½·log₂(1/2) = 2.5.
  @Test func handExampleMatchesFormula() throws {
    let problem = AllocationProblem(layers: [
      layer("a", sigma2s: 4, bytes: Array(1...16)), layer("b", sigma2s: 1, bytes: Array(1...16)),
    ])
    let reduced = try ReducedProblem(problem)
    let bits = try WaterfillSolver.continuousBits(reduced, budget: 6)  // 6 bytes = 48 bits over 16 weights
    #expect(abs(bits[0] - 3.5) <= bitsTolerance && abs(bits[1] - 2.5) <= bitsTolerance)
    // Integer repair: round down to 3 and 2 bytes (5 of 6); the leftover byte buys the larger modelled gain
    // n·s·σ²·(2^(−2b) − 2^(−2b′)): a: 32·(2⁻⁶ − 2⁻⁸) = 0.375, b: 8·(2⁻⁴ − 2⁻⁶) = 0.375. A tie goes to the first group.
    let plan = try problem.solve(budget: 6, using: .waterfill)
    #expect(plan.choices.map(\.bytes) == [4, 2])
    // With b a little more sensitive (s = 1.2) its gain is 9.6·(2⁻⁴ − 2⁻⁶) = 0.45 and the byte goes to b.
    var tilted = problem
    tilted.layers[1].sensitivity = 1.2
    #expect(try tilted.solve(budget: 6, using: .waterfill).choices.map(\.bytes) == [3, 3])
  }

  /// Reverse water-filling: with s·σ² = 1024 and 1 the free optimum is 5.5 and 0.5 bits, below the 1-bit floor of
  /// the second layer; clamped, it takes 1 bit and the first takes the rest, 5 bits.
  @Test func boundsClampAndRedistribute() throws {
    let problem = AllocationProblem(layers: [
      layer("a", sigma2s: 1024, bytes: Array(1...16)), layer("b", sigma2s: 1, bytes: Array(1...16)),
    ])
    let bits = try WaterfillSolver.continuousBits(ReducedProblem(problem), budget: 6)
    #expect(abs(bits[0] - 5) <= bitsTolerance && abs(bits[1] - 1) <= bitsTolerance)
  }

  /// Random instances with wide bounds: every bᵍ equals b̄ + ½·log₂(wᵍ/G) with G the parameter-weighted geometric
  /// mean; with narrow bounds, Σ nᵍ bᵍ still equals 8·budget and every bᵍ lies within its bounds.
  @Test func closedFormAndBudgetIdentity() throws {
    var rng = SplitMix64(seed: 77)
    for _ in 0..<50 {
      let count = Int.random(in: 2...20, using: &rng)
      let layers = (0..<count).map { i in
        AllocationProblem.Layer(
          name: "l\(i)", parameterCount: 8 * Int.random(in: 1...100, using: &rng),
          options: [.init(format: "lo", bytes: 0, loss: 1), .init(format: "hi", bytes: 0, loss: 0)],
          sensitivity: exp(Double.random(in: -2...2, using: &rng)),
          variance: exp(Double.random(in: -2...2, using: &rng)))
      }
      // Options from 0 to 64 bits per weight: log₂(wᵍ/G) ≤ 8/ln 2 ≈ 5.8, so every free optimum 4 ± 2.9 stays inside.
      var wide = AllocationProblem(layers: layers)
      for i in wide.layers.indices { wide.layers[i].options[1].bytes = wide.layers[i].parameterCount * 8 }
      let n = wide.layers.map { Double($0.parameterCount) }
      let total = n.reduce(0, +)
      let budget = Int(total) / 2  // b̄ = 4 bits
      let w = wide.layers.map { $0.sensitivity! * $0.variance! }
      let logG = zip(n, w).reduce(0) { $0 + $1.0 / total * log2($1.1) }
      let bits = try WaterfillSolver.continuousBits(ReducedProblem(wide), budget: budget)
      for g in bits.indices {
        let expected = 8 * Double(budget) / total + 0.5 * (log2(w[g]) - logG)
        #expect(abs(bits[g] - expected) <= 1e-9, "layer \(g)")
      }
      // Narrow bounds: 2 to 6 bits per weight.
      var narrow = wide
      for i in narrow.layers.indices {
        narrow.layers[i].options[0].bytes = narrow.layers[i].parameterCount / 4
        narrow.layers[i].options[1].bytes = narrow.layers[i].parameterCount * 3 / 4
      }
      let clamped = try WaterfillSolver.continuousBits(ReducedProblem(narrow), budget: budget)
      let spent = zip(n, clamped).reduce(0) { $0 + $1.0 * $1.1 }
      #expect(abs(spent - 8 * Double(budget)) <= 1e-9 * spent)
      #expect(clamped.allSatisfy { $0 >= 2 - bitsTolerance && $0 <= 6 + bitsTolerance })
    }
  }

  /// A tie group acts as one layer of Σn weights with the parameter-weighted mean of s·σ².
  @Test func tieGroupUsesWeightedMean() throws {
    let tied = AllocationProblem(
      layers: [
        layer("x.q", n: 8, sigma2s: 1, bytes: Array(1...16)), layer("x.k", n: 24, sigma2s: 5, bytes: Array(1...48)),
        layer("y", n: 32, sigma2s: 2, bytes: Array(1...64)),
      ], constraints: [.tieNames(["x.q", "x.k"])])
    // The group's options are the shared formats b1...b16, so its bits run from 8·2/32 to 8·32/32.
    let merged = AllocationProblem(layers: [
      layer("x", n: 32, sigma2s: (8 * 1 + 24 * 5) / 32, bytes: (1...16).map { 2 * $0 }),
      layer("y", n: 32, sigma2s: 2, bytes: Array(1...64)),
    ])
    let a = try WaterfillSolver.continuousBits(ReducedProblem(tied), budget: 24)
    let b = try WaterfillSolver.continuousBits(ReducedProblem(merged), budget: 24)
    #expect(zip(a, b).allSatisfy { abs($0 - $1) <= bitsTolerance })
  }

  /// Without sensitivity or variance the solver refuses, naming the layer.
  @Test func missingStatisticsIsAnError() throws {
    var problem = AllocationProblem(layers: [
      layer("a", sigma2s: 1, bytes: [1, 2]), layer("b", sigma2s: 1, bytes: [1, 2]),
    ])
    problem.layers[1].variance = nil
    #expect {
      try problem.solve(budget: 3, using: .waterfill)
    } throws: { error in
      let error = error as? AllocationError
      return error?.code == .missingStatistics && error!.message.contains("'b'")
    }
    // The other solvers do not need the statistics.
    #expect(try problem.solve(budget: 3, using: .greedy).totalBytes <= 3)
  }
}
