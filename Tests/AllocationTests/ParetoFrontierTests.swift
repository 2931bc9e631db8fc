import Allocation
import Testing
import _TestSupport

/// Relative tolerance for losses summed in a different order (group order vs layer order): each sum of at most 8
/// terms in [0, 1) carries at most 8 roundings of 2⁻⁵³ relative, so 1e-12 is far above the error and far below the
/// gaps between distinct random totals.
let reorderedSumTolerance = 1e-12

@Suite struct ParetoFrontierTests {
  /// 2000 seeded instances up to 8 layers × 4 candidates, with ties and pins: the frontier is exactly the brute-force
  /// Pareto set, every point's assignment satisfies the constraints and sums to the point, and an unsatisfiable
  /// instance fails with the right error code exactly when brute force finds no assignment.
  @Test func frontierEqualsBruteForceParetoSet() throws {
    var rng = SplitMix64(seed: 20_260_124)
    var (solved, rejected) = (0, 0)
    for instance in 0..<2000 {
      let problem = RandomProblems.make(&rng)
      let assignments = RandomProblems.bruteForce(problem)
      let frontier: ParetoFrontier
      do {
        frontier = try ParetoFrontier(problem)
      } catch {
        let expected: AllocationError.Code =
          RandomProblems.hasImpossiblePin(problem) ? .unknownFormat : .incompatibleTie
        #expect(error.code == expected, "instance \(instance): \(error)")
        #expect(assignments.isEmpty, "instance \(instance): solver rejected a satisfiable problem: \(error)")
        rejected += 1
        continue
      }
      solved += 1
      #expect(frontier.points == RandomProblems.paretoSet(assignments), "instance \(instance)")
      let valid = Set(assignments.map(\.choices))
      for index in frontier.points.indices {
        let choices = frontier.assignment(ofPoint: index)
        #expect(valid.contains(choices), "instance \(instance): point \(index) assignment breaks a constraint")
        let bytes = zip(problem.layers, choices).reduce(0) { $0 + $1.0.options[$1.1].bytes }
        let loss = zip(problem.layers, choices).reduce(0.0) { $0 + $1.0.options[$1.1].loss }
        #expect(bytes == frontier.points[index].bytes && loss == frontier.points[index].loss, "instance \(instance)")
      }
    }
    // The generator must exercise both paths, or this test checks less than it says.
    #expect(solved > 1500 && rejected > 50, "solved \(solved), rejected \(rejected)")
  }

  /// Every budget from below the smallest plan to above the largest: the exact plan's loss is the brute-force minimum
  /// over assignments that fit, its bytes fit, and a budget below the range fails with that range.
  @Test func exactPlanIsBruteForceOptimumForEveryBudget() throws {
    var rng = SplitMix64(seed: 7)
    for instance in 0..<600 {
      let problem = RandomProblems.make(&rng)
      let assignments = RandomProblems.bruteForce(problem)
      guard !assignments.isEmpty else { continue }
      let frontier = try ParetoFrontier(problem)
      let low = assignments.map(\.bytes).min()!
      let high = assignments.map(\.bytes).max()!
      // bestUpTo[b - low]: the smallest loss of any assignment with at most b bytes.
      var bestUpTo = [Double](repeating: .infinity, count: high - low + 1)
      for assignment in assignments {
        bestUpTo[assignment.bytes - low] = min(bestUpTo[assignment.bytes - low], assignment.loss)
      }
      for i in bestUpTo.indices.dropFirst() { bestUpTo[i] = min(bestUpTo[i], bestUpTo[i - 1]) }
      #expect(try problem.achievableBytes() == low...high)
      for budget in (low - 2)...(high + 1) {
        guard budget >= low else {
          #expect(throws: AllocationError.infeasible(budget: budget, range: low...high)) {
            try problem.solve(budget: budget, frontier: frontier)
          }
          continue
        }
        let plan = try problem.solve(budget: budget, frontier: frontier)
        let best = bestUpTo[min(budget, high) - low]
        #expect(plan.predictedLoss == best, "instance \(instance), budget \(budget)")
        #expect(plan.totalBytes <= budget && plan.gapToOptimum == 0)
      }
    }
  }

  /// Full-size instances (exactly 8 layers × 4 candidates, 65,536 assignments) with real-valued losses.
  @Test func fullSizeInstancesWithRealLosses() throws {
    var rng = SplitMix64(seed: 99)
    for instance in 0..<4 {
      let problem = RandomProblems.make(&rng, maxBytes: 1000, integerLosses: false, constraints: false, exactSize: true)
      let want = RandomProblems.paretoSet(RandomProblems.bruteForce(problem))
      let got = try ParetoFrontier(problem).points
      #expect(got.count == want.count, "instance \(instance)")
      for (g, w) in zip(got, want) {
        #expect(g.bytes == w.bytes && abs(g.loss - w.loss) <= reorderedSumTolerance * max(1, w.loss))
      }
    }
  }

  /// The galloping merge equals the sort-and-prune reference, bit for bit, on larger instances: random bytes and
  /// losses, and the realistic transformer shapes.
  @Test func fastMergeEqualsReference() throws {
    var rng = SplitMix64(seed: 3)
    for _ in 0..<10 {
      let problem = RandomProblems.make(
        &rng, maxLayers: 25, maxCandidates: 5, maxBytes: 5000, integerLosses: false, constraints: false)
      #expect(try ParetoFrontier(problem).points == ParetoFrontier.referencePoints(problem))
    }
    let realistic = SyntheticProblem.transformer(blocks: 2, seed: 11)
    let frontier = try ParetoFrontier(realistic)
    #expect(frontier.points == (try ParetoFrontier.referencePoints(realistic)))
    // Sorted by bytes, strictly falling loss, ends at the smallest and the best plan.
    #expect(zip(frontier.points, frontier.points.dropFirst()).allSatisfy { $0.bytes < $1.bytes && $0.loss > $1.loss })
    #expect(frontier.points.first!.bytes == (try realistic.achievableBytes()).lowerBound)
    let bestLoss = realistic.layers.reduce(0.0) { $0 + $1.options.map(\.loss).min()! }
    #expect(abs(frontier.points.last!.loss - bestLoss) <= reorderedSumTolerance * bestLoss)
  }

  /// `optimumIndex` is the last point that fits; the CSV has one row per point.
  @Test func budgetLookupAndCSV() throws {
    let problem = SyntheticProblem.transformer(blocks: 1, seed: 5)
    let frontier = try ParetoFrontier(problem)
    #expect(frontier.optimumIndex(budget: frontier.points[0].bytes - 1) == nil)
    for (i, point) in frontier.points.enumerated() {
      #expect(frontier.optimumIndex(budget: point.bytes) == i)
      #expect(frontier.optimumIndex(budget: point.bytes - 1) == (i == 0 ? nil : i - 1))
    }
    let rows = frontier.csv().split(separator: "\n")
    #expect(rows.first == "bytes,mib,bits_per_weight,predicted_loss_delta")
    #expect(rows.count == frontier.points.count + 1)
    let fields = rows[1].split(separator: ",")
    #expect(Int(fields[0]) == frontier.points[0].bytes && Double(fields[3]) == frontier.points[0].loss)
  }

  /// A runaway frontier is an error, not a hang.
  @Test func pointLimitIsEnforced() {
    let problem = SyntheticProblem.transformer(blocks: 1, seed: 5)
    #expect {
      try ParetoFrontier(problem, pointLimit: 10)
    } throws: { ($0 as? AllocationError)?.code == .frontierTooLarge }
  }
}
