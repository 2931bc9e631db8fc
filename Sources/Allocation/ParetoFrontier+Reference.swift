/// The slow, obvious twin of the fast frontier, for tests: sort and prune, one stage at a time.
extension ParetoFrontier {
  /// The frontier points by the definition, one stage at a time: all |F| · m sums, sorted by (bytes, loss), then
  /// kept only where the loss falls below every earlier one. Groups are merged in the same order as `init`, so
  /// losses are summed alike.
  /// - Complexity: O(Σₖ mₖ |Fₖ| log(mₖ |Fₖ|)).
  package static func referencePoints(_ problem: AllocationProblem) throws(AllocationError) -> [Point] {
    let reduced = try ReducedProblem(problem)
    var front = [Point(bytes: 0, loss: 0)]
    for g in mergeOrder(reduced) {
      let group = reduced.groups[g]
      var sums = [Point]()
      sums.reserveCapacity(front.count * group.options.count)
      for option in group.options {
        for point in front { sums.append(Point(bytes: point.bytes + option.bytes, loss: point.loss + option.loss)) }
      }
      sums.sort { ($0.bytes, $0.loss) < ($1.bytes, $1.loss) }
      front = prune(sortedByBytes: sums)
    }
    return front
  }

  /// Keeps each point whose loss is below that of every point before it (input sorted by bytes, then loss).
  package static func prune(sortedByBytes points: [Point]) -> [Point] {
    var kept = [Point]()
    var last = Double.infinity
    for point in points where point.loss < last {
      kept.append(point)
      last = point.loss
    }
    return kept
  }
}
