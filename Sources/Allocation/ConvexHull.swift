/// The LP relaxation of the allocation problem, solved exactly through convex hulls, and the Lagrangian plan it
/// rounds down to.
///
/// Relaxing "one option per group" to convex combinations, each group's loss becomes the lower convex hull of its
/// (bytes, loss) options. The LP optimum starts every group at its smallest option and buys hull increments
/// (Δbytes > 0, Δloss < 0) in order of slope Δloss/Δbytes, steepest first, the last one fractionally (Sinha &
/// Zoltners 1979). Its value is a lower bound on the exact optimum at every budget, and the slope of the increment
/// the budget falls in is the LP dual of the budget constraint: the shadow price, d loss / d byte.
///
/// The lower convex hull of the exact Pareto frontier is this same function (the hull of a Minkowski sum is the
/// Minkowski sum of the hulls), so the shadow price is also the slope of the frontier's hull.
///
/// - Complexity: O(N log N) to build for N options in all, O(N) per budget.
package struct ConvexHull: Sendable {
  /// One step along one group's hull, from option `from` to option `to`.
  package struct Increment: Sendable {
    /// Index of the group in `ReducedProblem.groups`.
    package var group: Int
    /// The group option this increment moves to.
    package var to: Int
    /// Extra bytes (> 0).
    package var bytes: Int
    /// Change of loss (< 0).
    package var loss: Double
    /// Δloss / Δbytes (< 0); steeper is better.
    package var slope: Double { loss / Double(bytes) }
  }

  /// Option index per group at the smallest hull point (the group's smallest-bytes, lowest-loss option).
  package let start: [Int]
  /// Bytes of the start plan.
  package let startBytes: Int
  /// Loss of the start plan.
  package let startLoss: Double
  /// All increments of all groups, by slope ascending (steepest loss decrease per byte first).
  package let increments: [Increment]

  /// Lower hulls of every group (monotone chain) and their increments by slope.
  /// - Complexity: O(N log N) for N options in all.
  package init(_ reduced: ReducedProblem) {
    var start = [Int]()
    var increments = [Increment]()
    var (startBytes, startLoss) = (0, 0.0)
    for (g, group) in reduced.groups.enumerated() {
      let pareto = ParetoFrontier.prunedOptions(group.options)  // bytes ↑, loss ↓
      var hull = [Int]()
      for i in pareto {
        // Pop the last hull point while it lies on or above the chord from its predecessor to i.
        while hull.count >= 2 {
          let (o, a, b) = (group.options[hull[hull.count - 2]], group.options[hull[hull.count - 1]], group.options[i])
          let cross = Double(a.bytes - o.bytes) * (b.loss - o.loss) - (a.loss - o.loss) * Double(b.bytes - o.bytes)
          if cross <= 0 { hull.removeLast() } else { break }
        }
        hull.append(i)
      }
      start.append(hull[0])
      startBytes += group.options[hull[0]].bytes
      startLoss += group.options[hull[0]].loss
      for (a, b) in zip(hull, hull.dropFirst()) {
        let (x, y) = (group.options[a], group.options[b])
        increments.append(Increment(group: g, to: b, bytes: y.bytes - x.bytes, loss: y.loss - x.loss))
      }
    }
    // Within a group slopes increase along the hull; the sort key keeps that order even for equal slopes.
    self.increments = increments.enumerated().sorted { ($0.element.slope, $0.offset) < ($1.element.slope, $1.offset) }
      .map(\.element)
    self.start = start
    self.startBytes = startBytes
    self.startLoss = startLoss
  }

  /// Number of increments that fit whole into `budget`, taken in slope order.
  private func wholePrefix(budget: Int) -> (count: Int, bytes: Int, loss: Double) {
    var (bytes, loss, count) = (startBytes, startLoss, 0)
    for increment in increments {
      guard bytes + increment.bytes <= budget else { break }
      bytes += increment.bytes
      loss += increment.loss
      count += 1
    }
    return (count, bytes, loss)
  }

  /// The LP optimum at `budget`: a lower bound on every plan's loss (−∞ when the budget is below the smallest plan).
  package func lowerBound(budget: Int) -> Double {
    guard budget >= startBytes else { return -.infinity }
    let (count, bytes, loss) = wholePrefix(budget: budget)
    guard count < increments.count else { return loss }
    let fraction = Double(budget - bytes) / Double(increments[count].bytes)
    return loss + fraction * increments[count].loss
  }

  /// d loss / d byte of the LP at `budget`: the slope of the increment the budget falls in (≤ 0; 0 when every
  /// increment fits, since more bytes then buy nothing).
  package func shadowPrice(budget: Int) -> Double {
    let (count, _, _) = wholePrefix(budget: budget)
    return count < increments.count ? increments[count].slope : 0
  }

  /// The Lagrangian plan: the whole increments that fit, stopping at the first that does not. Every group then sits
  /// at argmin loss + λ·bytes for λ = −(slope of the blocking increment), so it is optimal for its own byte total and
  /// within |Δloss| of that one increment of the LP bound.
  package func lagrangianChoices(budget: Int) -> [Int] {
    var choices = start
    let (count, _, _) = wholePrefix(budget: budget)
    for increment in increments.prefix(count) { choices[increment.group] = increment.to }
    return choices
  }
}
