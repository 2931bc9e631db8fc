import Allocation
import Foundation
import Sensitivity

extension RunPlanRecord {
  /// The `/plan` record of `plan` (solved on `problem`) whose PLAN.json bytes are `document`: one entry per
  /// planned layer in the problem's order (the run's layer order).
  public init(plan: AllocationPlan, document: Data, target: String) {
    self.init(
      document: document, layer: plan.choices.map(\.layer), format: plan.choices.map(\.format),
      bytes: plan.choices.map(\.bytes), predictedLoss: plan.choices.map(\.loss), score: plan.score,
      solver: plan.solver.rawValue, target: target, budgetBytes: plan.budgetBytes)
  }
}
