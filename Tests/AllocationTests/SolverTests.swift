import Allocation
import Testing
import _TestSupport

/// Relative tolerance for comparing the LP bound with frontier losses: the two are sums of the same ≤ 60 option
/// losses in different orders plus one fractional increment, so they agree to about 60 · 2⁻⁵³ relative; 1e-9 leaves
/// a wide margin without hiding a real violation (losses differ by ≥ 1e-6 relative between distinct plans here).
let lpTolerance = 1e-9

@Suite struct SolverTests {
  /// On small random instances with ties and pins, at every budget: all solvers fit the budget, none beats the
  /// exact optimum (gap ≥ 0, exact gap = 0), and the LP bound never exceeds the optimum.
  @Test func heuristicsFitAndNeverBeatExact() throws {
    var rng = SplitMix64(seed: 41)
    var checked = 0
    for instance in 0..<300 {
      let problem = RandomProblems.make(&rng, maxBytes: 40, integerLosses: false)
      guard let frontier = try? ParetoFrontier(problem) else { continue }
      let range = try problem.achievableBytes()
      for budget in stride(from: range.lowerBound, through: range.upperBound + 1, by: 3) {
        for solver in SolverKind.allCases {
          let plan = try problem.solve(budget: budget, using: solver, frontier: frontier)
          #expect(plan.totalBytes <= budget, "instance \(instance) \(solver) budget \(budget)")
          #expect(plan.gapToOptimum >= 0 && plan.predictedLoss >= plan.optimumLoss)
          #expect(plan.lowerBound <= plan.optimumLoss + lpTolerance * max(1, plan.optimumLoss))
          if solver == .exact { #expect(plan.gapToOptimum == 0) }
          checked += 1
        }
      }
    }
    #expect(checked > 5000)
  }

  /// Large random instances (60 layers × 8 candidates, bytes up to 100,000): LP bound ≤ exact ≤ every heuristic.
  @Test func lpBoundBelowExactOnLargeInstances() throws {
    var rng = SplitMix64(seed: 2024)
    for instance in 0..<6 {
      var problem = RandomProblems.make(
        &rng, maxLayers: 60, maxCandidates: 8, maxBytes: 100_000, integerLosses: false, constraints: false,
        exactSize: true)
      problem.layers = problem.layers.map { layer in
        var layer = layer
        layer.options = layer.options.map {
          var o = $0
          o.bytes += 1
          return o
        }  // no zero-byte options
        return layer
      }
      let frontier = try ParetoFrontier(problem)
      let range = try problem.achievableBytes()
      for step in 0...8 {
        let budget = range.lowerBound + (range.upperBound - range.lowerBound) * step / 8
        let plans = try SolverKind.allCases.map { try problem.solve(budget: budget, using: $0, frontier: frontier) }
        let exact = plans[0].predictedLoss
        #expect(plans[0].lowerBound <= exact + lpTolerance * exact, "instance \(instance) step \(step)")
        #expect(plans.allSatisfy { $0.predictedLoss >= exact && $0.totalBytes <= budget })
      }
    }
  }

  /// The LP value at every budget is the lower convex envelope of the exact frontier (the hull of a Minkowski sum is
  /// the sum of the hulls), and the shadow price is that envelope's slope.
  @Test func lpBoundIsConvexEnvelopeOfFrontier() throws {
    var rng = SplitMix64(seed: 8)
    for _ in 0..<20 {
      let problem = RandomProblems.make(
        &rng, maxLayers: 12, maxCandidates: 5, maxBytes: 500, integerLosses: false, constraints: false)
      let frontier = try ParetoFrontier(problem)
      // Lower convex hull of the frontier points (monotone chain).
      var hull = [ParetoFrontier.Point]()
      for p in frontier.points {
        while hull.count >= 2 {
          let (o, a) = (hull[hull.count - 2], hull[hull.count - 1])
          let cross = Double(a.bytes - o.bytes) * (p.loss - o.loss) - (a.loss - o.loss) * Double(p.bytes - o.bytes)
          if cross <= 0 { hull.removeLast() } else { break }
        }
        hull.append(p)
      }
      let range = try problem.achievableBytes()
      for _ in 0..<30 {
        let budget = Int.random(in: range, using: &rng)
        let plan = try problem.solve(budget: budget, frontier: frontier)
        let k = hull.lastIndex { $0.bytes <= budget }!
        var envelope = hull[k].loss
        var slope = 0.0
        if k + 1 < hull.count {
          slope = (hull[k + 1].loss - hull[k].loss) / Double(hull[k + 1].bytes - hull[k].bytes)
          envelope += slope * Double(budget - hull[k].bytes)
        }
        let scale = max(1, abs(envelope))
        #expect(abs(plan.lowerBound - envelope) <= lpTolerance * scale, "budget \(budget)")
        if budget != hull[k].bytes {  // at a hull vertex the slope is that of either side
          #expect(abs(plan.lossPerExtraMiB / 1_048_576 - slope) <= lpTolerance * max(1, abs(slope)))
        }
      }
    }
  }

  /// A Lagrangian plan minimises loss + λ·bytes, so no plan of at most its own bytes is better: the exact optimum at
  /// budget = its total equals its loss. Greedy has no such guarantee and is only checked against exact.
  @Test func lagrangePlanIsOptimalForItsOwnBytes() throws {
    var rng = SplitMix64(seed: 12)
    for _ in 0..<40 {
      let problem = RandomProblems.make(
        &rng, maxLayers: 15, maxCandidates: 6, maxBytes: 300, integerLosses: false, constraints: false)
      let frontier = try ParetoFrontier(problem)
      let range = try problem.achievableBytes()
      for _ in 0..<10 {
        let plan = try problem.solve(budget: Int.random(in: range, using: &rng), using: .lagrange, frontier: frontier)
        let own = try problem.solve(budget: plan.totalBytes, frontier: frontier)
        #expect(abs(own.predictedLoss - plan.predictedLoss) <= lpTolerance * max(1, plan.predictedLoss))
      }
    }
  }

  /// The shadow price is ≤ 0, and exactly 0 once the budget holds the best plan.
  @Test func shadowPrice() throws {
    let problem = SyntheticProblem.transformer(blocks: 2, seed: 4)
    let range = try problem.achievableBytes()
    let frontier = try ParetoFrontier(problem)
    for budget in stride(
      from: range.lowerBound, through: range.upperBound, by: (range.upperBound - range.lowerBound) / 7)
    {
      #expect(try problem.solve(budget: budget, frontier: frontier).lossPerExtraMiB <= 0)
    }
    #expect(try problem.solve(budget: range.upperBound, frontier: frontier).lossPerExtraMiB == 0)
    #expect(try problem.solve(budget: range.lowerBound, frontier: frontier).lossPerExtraMiB < 0)
  }

  /// On the realistic shapes every solver's plan is reported with its gap, and the exact one has none.
  @Test func realisticInstanceGaps() throws {
    let problem = SyntheticProblem.transformer(blocks: 4, seed: 1)
    let frontier = try ParetoFrontier(problem)
    let budget = try Budget.bitsPerWeight(4.5).bytes(parameterCount: problem.parameterCount)
    for solver in SolverKind.allCases {
      let plan = try problem.solve(budget: budget, using: solver, frontier: frontier)
      #expect(plan.totalBytes <= budget && plan.gapToOptimum >= 0)
      #expect(plan.choices.count == problem.layers.count)
      #expect(plan.formatCounts.values.reduce(0, +) == problem.layers.count)
      #expect(abs(plan.bitsPerWeight - 8 * Double(plan.totalBytes) / Double(problem.parameterCount)) < 1e-12)
    }
  }
}
