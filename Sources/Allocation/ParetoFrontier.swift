/// The exact Pareto frontier of an allocation problem: every plan that no other plan beats in both bytes and predicted
/// loss, for all budgets at once, with the assignment of any point recoverable.
///
/// Algorithm (Nemhauser–Ullmann, generalised to multiple choice): keep the Pareto set Fₖ of the partial sums over the
/// first k groups. Fₖ₊₁ = prune(⋃ⱼ (Fₖ + optionⱼ)), where `prune` drops every point with bytes ≥ and loss ≥ some other
/// point. Each shifted copy Fₖ + optionⱼ is sorted by bytes already, so the union is formed by pairwise merges with
/// pruning on the fly: O(m · (|Fₖ| + |Fₖ₊₁|)) for a group of m options.
///
/// Exactness: if a complete plan is Pareto-optimal, its restriction to the first k groups is Pareto-optimal among
/// partial plans over those groups; otherwise replacing that prefix by one that dominates it would dominate the whole
/// plan, since the remaining groups add the same bytes and loss to both. So no plan on the final frontier is ever
/// pruned, and every point kept is a real plan. Bytes are exact integers (no grid, no rounding); losses are summed in
/// group order, the same order in which `assignment(ofPoint:)` recomputes them. The optimum for a budget B is the
/// frontier point with the largest bytes ≤ B, because loss strictly decreases along the frontier.
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
    public var bytes: Int
    public var loss: Double
    public init(bytes: Int, loss: Double) {
      self.bytes = bytes
      self.loss = loss
    }
  }

  /// Sorted by bytes, strictly increasing; loss strictly decreasing.
  public let points: [Point]
  package let reduced: ReducedProblem
  /// Per stored point of stage k: index of its parent in stage k−1 and the group option taken at stage k.
  private let parents: [Int32]
  private let choices: [UInt16]
  /// Stage k occupies `stageOffsets[k] ..< stageOffsets[k + 1]` of `parents` and `choices`.
  private let stageOffsets: [Int]

  /// Builds the whole frontier.
  /// - Parameters:
  ///   - problem: layers, options and constraints.
  ///   - pointLimit: the most back-pointers (Σₖ |Fₖ|) to keep before giving up with `.frontierTooLarge`.
  /// - Throws: any constraint error of the problem, or `.frontierTooLarge`.
  public init(_ problem: AllocationProblem, pointLimit: Int = 60_000_000) throws(AllocationError) {
    let reduced = try ReducedProblem(problem)
    self.reduced = reduced
    var parents = [Int32](), choices = [UInt16](), offsets = [0]
    // Current frontier and the scratch buffers of one merge.
    var bytes = [0], loss = [0.0]
    var accBytes = [Int](), accLoss = [Double](), accParent = [Int32](), accChoice = [UInt16]()
    var outBytes = [Int](), outLoss = [Double](), outParent = [Int32](), outChoice = [UInt16]()
    for group in reduced.groups {
      let options = Self.prunedOptions(group.options)
      // acc = F + first option (already Pareto: a shift keeps the order).
      accBytes.removeAll(keepingCapacity: true); accLoss.removeAll(keepingCapacity: true)
      accParent.removeAll(keepingCapacity: true); accChoice.removeAll(keepingCapacity: true)
      let first = group.options[options[0]]
      for i in bytes.indices {
        accBytes.append(bytes[i] + first.bytes); accLoss.append(loss[i] + first.loss)
        accParent.append(Int32(i)); accChoice.append(UInt16(options[0]))
      }
      for j in options.dropFirst() {
        let option = group.options[j]
        let (shift, add, tag) = (option.bytes, option.loss, UInt16(j))
        outBytes.removeAll(keepingCapacity: true); outLoss.removeAll(keepingCapacity: true)
        outParent.removeAll(keepingCapacity: true); outChoice.removeAll(keepingCapacity: true)
        var (a, b) = (0, 0)
        var last = Double.infinity
        // Two sorted lists: acc[a...] and (F + option)[b...]; keep a point only if it lowers the running loss.
        while a < accBytes.count || b < bytes.count {
          let takeAcc: Bool
          if b == bytes.count {
            takeAcc = true
          } else if a == accBytes.count {
            takeAcc = false
          } else {
            let (ab, bb) = (accBytes[a], bytes[b] + shift)
            takeAcc = ab < bb || (ab == bb && accLoss[a] <= loss[b] + add)
          }
          if takeAcc {
            if accLoss[a] < last {
              last = accLoss[a]
              outBytes.append(accBytes[a]); outLoss.append(last)
              outParent.append(accParent[a]); outChoice.append(accChoice[a])
            }
            a += 1
          } else {
            let l = loss[b] + add
            if l < last {
              last = l
              outBytes.append(bytes[b] + shift); outLoss.append(l)
              outParent.append(Int32(b)); outChoice.append(tag)
            }
            b += 1
          }
        }
        swap(&accBytes, &outBytes); swap(&accLoss, &outLoss)
        swap(&accParent, &outParent); swap(&accChoice, &outChoice)
      }
      parents.append(contentsOf: accParent); choices.append(contentsOf: accChoice)
      offsets.append(parents.count)
      guard parents.count <= pointLimit, accBytes.count <= Int(Int32.max) else {
        throw AllocationError(
          .frontierTooLarge, "the exact frontier exceeded \(pointLimit) stored points after \(offsets.count - 1) of "
            + "\(reduced.groups.count) groups; use --solver lagrange or greedy for this instance")
      }
      swap(&bytes, &accBytes); swap(&loss, &accLoss)
    }
    self.points = zip(bytes, loss).map { Point(bytes: $0, loss: $1) }
    self.parents = parents
    self.choices = choices
    self.stageOffsets = offsets
  }

  /// Indices of the Pareto-optimal options of one group, by bytes ascending (ties: lower loss, then lower index).
  /// - Complexity: O(m log m).
  static func prunedOptions(_ options: [ReducedProblem.GroupOption]) -> [Int] {
    let order = options.indices.sorted {
      (options[$0].bytes, options[$0].loss, $0) < (options[$1].bytes, options[$1].loss, $1)
    }
    var kept = [Int](), last = Double.infinity
    for i in order where options[i].loss < last {
      kept.append(i)
      last = options[i].loss
    }
    return kept
  }

  /// Total back-pointers stored (Σₖ |Fₖ|), the memory the frontier holds.
  public var storedPoints: Int { parents.count }

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
      let slot = stageOffsets[stage] + p
      result[stage] = Int(choices[slot])
      p = Int(parents[slot])
    }
    return result
  }

  /// The option index (into `AllocationProblem.Layer.options`) of every layer for point `index`.
  public func assignment(ofPoint index: Int) -> [Int] {
    reduced.layerChoices(groupChoices(ofPoint: index))
  }
}
