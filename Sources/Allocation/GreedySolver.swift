/// The greedy ratio rule used by many mixed-precision tools: start every group at its smallest option, then
/// repeatedly apply the single upgrade (any group, any larger option with lower loss) that buys the most loss
/// reduction per byte among those that still fit, until none fits.
///
/// Unlike the Lagrangian plan it skips an upgrade that does not fit and keeps looking, and it considers options off
/// the convex hull. It has no optimality guarantee; plans report their gap to the exact optimum.
/// - Complexity: O(U · N) for U upgrades applied and N options in all.
package enum GreedySolver {
  /// One option index per group; the budget must be feasible.
  package static func choices(_ reduced: ReducedProblem, budget: Int) -> [Int] {
    let pareto = reduced.groups.map { ParetoFrontier.prunedOptions($0.options) }  // bytes ↑, loss ↓
    var position = [Int](repeating: 0, count: pareto.count)  // index into pareto[g]
    var used = zip(reduced.groups, pareto).reduce(0) { $0 + $1.0.options[$1.1[0]].bytes }
    while true {
      var best: (group: Int, position: Int, ratio: Double)?
      for (g, group) in reduced.groups.enumerated() {
        let current = group.options[pareto[g][position[g]]]
        for p in (position[g] + 1)..<pareto[g].count {
          let option = group.options[pareto[g][p]]
          let extra = option.bytes - current.bytes
          guard used + extra <= budget else { break }  // larger options cost more still
          let ratio = (current.loss - option.loss) / Double(extra)
          if best == nil || ratio > best!.ratio { best = (g, p, ratio) }
        }
      }
      guard let move = best else { break }
      let group = reduced.groups[move.group]
      used +=
        group.options[pareto[move.group][move.position]].bytes
        - group.options[pareto[move.group][position[move.group]]].bytes
      position[move.group] = move.position
    }
    return position.enumerated().map { pareto[$0.offset][$0.element] }
  }
}
