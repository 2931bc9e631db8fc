/// The exact Pareto frontier of an allocation problem: every plan that no other plan beats in both bytes and predicted
/// loss, for all budgets at once, with the assignment of any point recoverable.
///
/// Algorithm (Nemhauser–Ullmann, generalised to multiple choice): keep the Pareto set Fₖ of the partial sums over the
/// first k groups. Fₖ₊₁ = prune(⋃ⱼ (Fₖ + optionⱼ)), where `prune` drops every point with bytes ≥ and loss ≥ some other
/// point. Each shifted copy Fₖ + optionⱼ is sorted by bytes already, so the union is formed by pairwise merges with
/// pruning on the fly (`FrontierMerge`), skipping dominated runs by galloping: O(m · (|Fₖ| + |Fₖ₊₁|)) at worst for a
/// group of m options, much less when one list dominates another over long stretches.
///
/// Exactness: if a complete plan is Pareto-optimal, its restriction to the first k groups is Pareto-optimal among
/// partial plans over those groups; otherwise replacing that prefix by one that dominates it would dominate the whole
/// plan, since the remaining groups add the same bytes and loss to both. So no plan on the final frontier is ever
/// pruned, and every point kept is a real plan; the argument holds for any order of the groups. Bytes are exact
/// integers (no grid, no rounding); losses are summed in `stageOrder`, the order in which plans recompute them. The
/// optimum for a budget B is the frontier point with the largest bytes ≤ B, because loss strictly decreases along
/// the frontier.
///
/// Size: |Fₖ| is at most the number of distinct byte totals. Real transformers repeat a few layer shapes, so totals
/// fall on a coarse lattice and the frontier stays in the thousands to hundreds of thousands; for random data the
/// expected size is polynomial (Beier & Vöcking 2004). A `pointLimit` turns a runaway instance into an error.
///
/// - Complexity: O(Σₖ mₖ · (|Fₖ| + |Fₖ₊₁|)) time, O(Σₖ |Fₖ|) memory for the back-pointers.
/// Reference: Nemhauser & Ullmann (1969), "Discrete dynamic programming and capital allocation".
public struct ParetoFrontier: Sendable {
  /// One Pareto-optimal plan: its total bytes and total predicted loss.
  public struct Point: Sendable, Hashable {
    /// Total bytes of the plan.
    public var bytes: Int
    /// Total predicted loss of the plan, summed in `stageOrder`.
    public var loss: Double
    public init(bytes: Int, loss: Double) {
      self.bytes = bytes
      self.loss = loss
    }
  }

  /// Sorted by bytes, strictly increasing; loss strictly decreasing.
  public let points: [Point]
  /// The problem after pins and ties, whose groups the stages merge.
  package let reduced: ReducedProblem
  /// Per stored point of stage k: `parent << shifts[k] | option`, the parent's index in stage k−1 and the group
  /// option taken at stage k.
  private let tags: [UInt32]
  private let shifts: [UInt8]
  /// Stage k occupies `stageOffsets[k] ..< stageOffsets[k + 1]` of `tags`.
  private let stageOffsets: [Int]
  /// Stage k merges group `stageOrder[k]`; losses are summed in this order.
  package let stageOrder: [Int]

  /// Builds the whole frontier.
  /// - Parameters:
  ///   - problem: layers, options and constraints.
  ///   - pointLimit: the most back-pointers (Σₖ |Fₖ|) to keep before giving up with `.frontierTooLarge`.
  /// - Throws: any constraint error of the problem, or `.frontierTooLarge`.
  public init(_ problem: AllocationProblem, pointLimit: Int = 100_000_000) throws(AllocationError) {
    let reduced = try ReducedProblem(problem)
    self.reduced = reduced
    var tags = [UInt32]()
    var shifts = [UInt8]()
    var offsets = [0]
    var front = PointBuffer(capacity: 1)
    var acc = PointBuffer(capacity: 1)
    var out = PointBuffer(capacity: 1)
    defer {
      front.free()
      acc.free()
      out.free()
    }
    front.append(bytes: 0, loss: 0, tag: 0)
    let order = Self.mergeOrder(reduced)
    for (stage, g) in order.enumerated() {
      let group = reduced.groups[g]
      let options = Self.prunedOptions(group.options)
      let shift = UInt32(max(1, Int.bitWidth - (group.options.count - 1).leadingZeroBitCount))
      guard front.count <= Int(UInt32.max >> shift) else {
        throw AllocationError(.frontierTooLarge, "the exact frontier has \(front.count) points after \(stage) groups")
      }
      // acc = F + first option, then acc = prune(acc ∪ (F + option)) for each further option.
      acc.count = 0
      FrontierMerge.shifted(front, by: group.options[options[0]], tag: UInt32(options[0]), shift: shift, into: &acc)
      for j in options.dropFirst() {
        out.count = 0
        FrontierMerge.merge(acc, front, by: group.options[j], tag: UInt32(j), shift: shift, into: &out)
        swap(&acc, &out)
      }
      tags.append(contentsOf: UnsafeBufferPointer(start: acc.tag, count: acc.count))
      shifts.append(UInt8(shift))
      offsets.append(tags.count)
      guard tags.count <= pointLimit else {
        throw AllocationError(
          .frontierTooLarge,
          "the exact frontier exceeded \(pointLimit) stored points after \(stage + 1) of "
            + "\(reduced.groups.count) groups; use --solver lagrange or greedy for this instance")
      }
      swap(&front, &acc)
    }
    self.points = (0..<front.count).map { Point(bytes: front.bytes[$0], loss: front.loss[$0]) }
    self.tags = tags
    self.shifts = shifts
    self.stageOffsets = offsets
    self.stageOrder = order
  }

  /// Groups by ascending byte span (largest minus smallest option), ties by index. Any order gives the same
  /// frontier; merging the narrow groups first keeps the intermediate frontiers small for longer (on the 210 × 10
  /// benchmark: 7.9 M instead of 10.4 M stored points, about 20 % less time).
  package static func mergeOrder(_ reduced: ReducedProblem) -> [Int] {
    let span = reduced.groups.map { group in
      group.options.lazy.map(\.bytes).max()! - group.options.lazy.map(\.bytes).min()!
    }
    return reduced.groups.indices.sorted { (span[$0], $0) < (span[$1], $1) }
  }

  /// Indices of the Pareto-optimal options of one group, by bytes ascending (ties: lower loss, then lower index).
  /// - Complexity: O(m log m).
  static func prunedOptions(_ options: [ReducedProblem.GroupOption]) -> [Int] {
    let order = options.indices.sorted {
      (options[$0].bytes, options[$0].loss, $0) < (options[$1].bytes, options[$1].loss, $1)
    }
    var kept = [Int]()
    var last = Double.infinity
    for i in order where options[i].loss < last {
      kept.append(i)
      last = options[i].loss
    }
    return kept
  }

  /// Total back-pointers stored (Σₖ |Fₖ|), the memory the frontier holds.
  public var storedPoints: Int { tags.count }

  /// Index of the optimal point for `budget`: the one with the largest bytes ≤ budget, or nil if none fits.
  /// - Complexity: O(log |points|).
  public func optimumIndex(budget: Int) -> Int? {
    var (low, high) = (0, points.count)  // first index with bytes > budget
    while low < high {
      let mid = (low + high) / 2
      if points[mid].bytes <= budget { low = mid + 1 } else { high = mid }
    }
    return low == 0 ? nil : low - 1
  }

  /// The option index of each group for point `index`, by walking the back-pointers from the last stage.
  /// - Complexity: O(groups).
  package func groupChoices(ofPoint index: Int) -> [Int] {
    precondition(points.indices.contains(index), "point \(index) outside 0..<\(points.count)")
    var result = [Int](repeating: 0, count: reduced.groups.count)
    var p = index
    for stage in stride(from: reduced.groups.count - 1, through: 0, by: -1) {
      let tag = tags[stageOffsets[stage] + p]
      result[stageOrder[stage]] = Int(tag & ((1 << UInt32(shifts[stage])) - 1))
      p = Int(tag >> UInt32(shifts[stage]))
    }
    return result
  }

  /// The option index (into `AllocationProblem.Layer.options`) of every layer for point `index`.
  public func assignment(ofPoint index: Int) -> [Int] {
    reduced.layerChoices(groupChoices(ofPoint: index))
  }
}
