/// The solvers a plan can come from.
public enum SolverKind: String, Sendable, Codable, CaseIterable {
  /// The optimum of the multiple-choice knapsack, read off the exact Pareto frontier.
  case exact
  /// The seed article's closed form (reverse water-filling on s·σ²) with integer repair.
  case waterfill
  /// Whole convex-hull increments in slope order until one does not fit.
  case lagrange
  /// Best loss-per-byte upgrade that fits, repeated.
  case greedy
}

/// A chosen format for every layer, with its totals and how far it is from the exact optimum.
public struct AllocationPlan: Sendable, Equatable, Codable {
  /// The choice for one layer, in problem order.
  public struct Choice: Sendable, Equatable, Codable {
    /// The layer's name.
    public var layer: String
    /// Index into the layer's `options`.
    public var optionIndex: Int
    /// The chosen format.
    public var format: String
    /// Bytes of the layer in that format.
    public var bytes: Int
    /// The option's score (predicted loss increase).
    public var loss: Double
  }

  /// The solver that made the plan.
  public var solver: SolverKind
  /// Name of the score that was minimised.
  public var score: String
  /// The budget the plan was made for.
  public var budgetBytes: Int
  /// One choice per layer, in problem order.
  public var choices: [Choice]
  /// Σ of the chosen bytes (≤ budgetBytes).
  public var totalBytes: Int
  /// 8 · totalBytes / Σ parameters.
  public var bitsPerWeight: Double
  /// Σ of the chosen options' scores.
  public var predictedLoss: Double
  /// The exact optimum's predicted loss at the same budget.
  public var optimumLoss: Double
  /// predictedLoss − optimumLoss: 0 for the exact solver, never negative (both are summed in the frontier's order,
  /// and rounded addition is monotone, so no plan can come out below the frontier's optimum).
  public var gapToOptimum: Double
  /// The LP lower bound at this budget (≤ optimumLoss).
  public var lowerBound: Double
  /// Shadow price of the budget: d predicted loss per extra MiB (≤ 0), the LP dual at this budget.
  public var lossPerExtraMiB: Double

  /// How many layers use each format.
  public var formatCounts: [String: Int] { choices.reduce(into: [:]) { $0[$1.format, default: 0] += 1 } }
}

extension AllocationProblem {
  /// Solves the problem for `budget` bytes with `solver`, and compares the plan with the exact optimum.
  /// - Parameters:
  ///   - budget: total bytes allowed for the layers of the problem.
  ///   - solver: which algorithm chooses the formats.
  ///   - frontier: a frontier already built for this same problem (checked), to avoid building it again.
  /// - Throws: `.infeasible` (with the achievable range) when the budget is below the smallest plan; constraint
  ///   errors; `.missingStatistics` for waterfill without statistics.
  /// - Complexity: that of `ParetoFrontier.init` plus the chosen solver.
  public func solve(
    budget: Int, using solver: SolverKind = .exact, frontier: ParetoFrontier? = nil
  )
    throws(AllocationError) -> AllocationPlan
  {
    let reduced: ReducedProblem
    if let frontier {
      precondition(frontier.reduced.problem == self, "the frontier was built for another problem")
      reduced = frontier.reduced
    } else {
      reduced = try ReducedProblem(self)
    }
    try reduced.checkFeasible(budget: budget)
    let built: ParetoFrontier
    if let frontier { built = frontier } else { built = try ParetoFrontier(self) }
    let frontier = built
    let best = frontier.optimumIndex(budget: budget)!  // feasible, so the smallest point fits
    let hull = ConvexHull(reduced)
    let groupChoices: [Int]
    switch solver {
    case .exact: groupChoices = frontier.groupChoices(ofPoint: best)
    case .waterfill: groupChoices = try WaterfillSolver.choices(reduced, budget: budget)
    case .lagrange: groupChoices = hull.lagrangianChoices(budget: budget)
    case .greedy: groupChoices = GreedySolver.choices(reduced, budget: budget)
    }
    var choices = [AllocationPlan.Choice]()
    var (bytes, loss) = (0, 0.0)
    for g in frontier.stageOrder {
      let option = reduced.groups[g].options[groupChoices[g]]
      bytes += option.bytes
      loss += option.loss  // in the frontier's order, so no plan can come out below its optimum by rounding
    }
    for (i, k) in reduced.layerChoices(groupChoices).enumerated() {
      let option = layers[i].options[k]
      choices.append(
        .init(layer: layers[i].name, optionIndex: k, format: option.format, bytes: option.bytes, loss: option.loss))
    }
    precondition(bytes <= budget, "\(solver) plan of \(bytes) bytes exceeds the budget \(budget)")
    let optimum = frontier.points[best].loss
    let parameters = parameterCount
    return AllocationPlan(
      solver: solver, score: score, budgetBytes: budget, choices: choices, totalBytes: bytes,
      bitsPerWeight: parameters > 0 ? 8 * Double(bytes) / Double(parameters) : 0, predictedLoss: loss,
      optimumLoss: optimum, gapToOptimum: loss - optimum, lowerBound: hull.lowerBound(budget: budget),
      lossPerExtraMiB: hull.shadowPrice(budget: budget) * 1_048_576)
  }
}
