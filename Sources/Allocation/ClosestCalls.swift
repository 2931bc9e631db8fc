import Foundation

/// One single-layer swap away from a plan: the layer moves from its planned option to a neighbour on its lower
/// convex hull, with more bytes (an upgrade) or fewer (a downgrade).
public struct PlanSwap: Sendable, Equatable {
  /// Whether the swap buys bytes (upgrade) or frees them (downgrade).
  public enum Direction: String, Sendable, Codable {
    case upgrade, downgrade
  }

  /// Index of the layer in `AllocationProblem.layers`.
  public var layer: Int
  /// The layer's name.
  public var layerName: String
  /// The planned option (index into the layer's `options`).
  public var from: Int
  /// The option swapped to.
  public var to: Int
  public var direction: Direction
  /// bytes(to) − bytes(from): > 0 for an upgrade, < 0 for a downgrade.
  public var deltaBytes: Int
  /// loss(to) − loss(from), in the problem's score units: < 0 for an upgrade, usually > 0 for a downgrade.
  public var predictedDelta: Double
  /// The marginal rate −Δloss/Δbytes (> 0 for every swap kept): loss saved per byte bought, or loss added per byte freed.
  public var rate: Double
  /// |ln(rate / λ*)|: how close the swap is to the budget's multiplier λ*; 0 is a tie with the budget's price.
  public var distance: Double
}

/// The closest calls of a plan: the single-layer swaps whose marginal rate is nearest the budget's multiplier, so
/// that a small error in the predicted losses could flip them. `bitplan validate --repair N` measures them end to end.
///
/// With the plan's option cᵢ per layer, the layer's lower convex hull (Pareto-pruned options, then the monotone
/// chain; collinear points dropped, as `ConvexHull` does) gives one upgrade, the first hull point with more bytes
/// than cᵢ, and one downgrade, the last hull point with fewer bytes. Each has the rate λ = −Δloss/Δbytes. At the
/// LP optimum the multiplier λ* (the negated LP shadow price at the budget, `ConvexHull.shadowPrice`) separates
/// them: every upgrade has λ ≤ λ* (not worth its bytes) and every downgrade λ ≥ λ* (not worth its savings). A swap
/// is rated by |ln(λ/λ*)| and the `count` smallest are kept, ties broken by layer index, upgrades first.
///
/// Not rated: swaps with λ ≤ 0 (a downgrade from a dominated option that loses nothing: not a close call, an error
/// the exact solver does not make), and every swap when λ* = 0 (the budget buys every upgrade: nothing is traded).
/// Pins and ties are not applied (a plan does not record them): the swaps are those of the bare problem.
public enum ClosestCalls {
  /// What `select` found.
  public struct Selection: Sendable, Equatable {
    /// λ*: the budget's multiplier in score units per byte (≥ 0).
    public var multiplier: Double
    /// The closest calls, nearest first.
    public var swaps: [PlanSwap]
    /// How many swaps were rated (two per layer at most).
    public var rated: Int
  }

  /// The `count` swaps of `choices` (an option index per layer of `problem`) nearest the multiplier at `budget`.
  /// - Throws: `AllocationError.badNumber` for a choice outside a layer's options; the problem's own errors.
  /// - Complexity: O(N log N) for N options in all.
  public static func select(
    _ problem: AllocationProblem, choices: [Int], budget: Int, count: Int
  ) throws(AllocationError) -> Selection {
    var bare = problem
    bare.constraints = []
    let multiplier = max(0, -ConvexHull(try ReducedProblem(bare)).shadowPrice(budget: budget))
    let all = try rated(problem, choices: choices, multiplier: multiplier) { layer, choice in
      neighbours(layer.options, choice: choice)
    }
    return Selection(multiplier: multiplier, swaps: Array(all.prefix(max(0, count))), rated: all.count)
  }

  /// Every rated swap, nearest first, with the neighbours `neighbours(layer, choice)` gives.
  static func rated(
    _ problem: AllocationProblem, choices: [Int], multiplier: Double,
    neighbours: (AllocationProblem.Layer, Int) -> (upgrade: Int?, downgrade: Int?)
  ) throws(AllocationError) -> [PlanSwap] {
    guard choices.count == problem.layers.count else {
      throw AllocationError(.badNumber, "\(choices.count) choices for a problem of \(problem.layers.count) layers")
    }
    var swaps: [PlanSwap] = []
    guard multiplier > 0, multiplier.isFinite else { return [] }
    for (i, layer) in problem.layers.enumerated() {
      let c = choices[i]
      guard layer.options.indices.contains(c) else {
        throw AllocationError(.badNumber, "layer '\(layer.name)': choice \(c) outside its \(layer.options.count) options")
      }
      let (up, down) = neighbours(layer, c)
      for (to, direction) in [(up, PlanSwap.Direction.upgrade), (down, .downgrade)] {
        guard let to else { continue }
        let (a, b) = (layer.options[c], layer.options[to])
        let deltaBytes = b.bytes - a.bytes
        let deltaLoss = b.loss - a.loss
        let rate = -deltaLoss / Double(deltaBytes)
        guard rate > 0, rate.isFinite else { continue }
        swaps.append(
          PlanSwap(
            layer: i, layerName: layer.name, from: c, to: to, direction: direction, deltaBytes: deltaBytes,
            predictedDelta: deltaLoss, rate: rate, distance: abs(log(rate / multiplier))))
      }
    }
    return swaps.sorted {
      ($0.distance, $0.layer, $0.direction == .upgrade ? 0 : 1) < ($1.distance, $1.layer, $1.direction == .upgrade ? 0 : 1)
    }
  }

  /// The layer's lower convex hull: Pareto-optimal options by bytes ascending (ties: lower loss, then lower index),
  /// then the monotone chain, dropping points on or above a chord.
  public static func lowerHull(_ options: [AllocationProblem.Option]) -> [Int] {
    let order = options.indices.sorted {
      (options[$0].bytes, options[$0].loss, $0) < (options[$1].bytes, options[$1].loss, $1)
    }
    var pareto: [Int] = []
    var last = Double.infinity
    for i in order where options[i].loss < last {
      pareto.append(i)
      last = options[i].loss
    }
    var hull: [Int] = []
    for i in pareto {
      while hull.count >= 2 {
        let (o, a, b) = (options[hull[hull.count - 2]], options[hull[hull.count - 1]], options[i])
        let cross = Double(a.bytes - o.bytes) * (b.loss - o.loss) - (a.loss - o.loss) * Double(b.bytes - o.bytes)
        if cross <= 0 { hull.removeLast() } else { break }
      }
      hull.append(i)
    }
    return hull
  }

  /// The hull neighbours of option `choice`: the first hull point with more bytes, the last with fewer.
  public static func neighbours(_ options: [AllocationProblem.Option], choice: Int) -> (upgrade: Int?, downgrade: Int?) {
    let hull = lowerHull(options)
    let bytes = options[choice].bytes
    return (hull.first { options[$0].bytes > bytes }, hull.last { options[$0].bytes < bytes })
  }

  /// The obvious twin of `select`: hull membership tested point by point against every chord of the Pareto set
  /// (O(m³) per layer), the neighbours read off by scanning every option. For tests.
  public static func selectReference(
    _ problem: AllocationProblem, choices: [Int], multiplier: Double, count: Int
  ) throws(AllocationError) -> [PlanSwap] {
    let all = try rated(problem, choices: choices, multiplier: multiplier) { layer, c in
      let o = layer.options
      // Pareto: no other option with fewer-or-equal bytes and lower loss, or equal bytes and loss and a lower index.
      func pareto(_ j: Int) -> Bool {
        !o.indices.contains { k in
          k != j
            && (o[k].bytes < o[j].bytes && o[k].loss <= o[j].loss
              || o[k].bytes == o[j].bytes && (o[k].loss < o[j].loss || o[k].loss == o[j].loss && k < j))
        }
      }
      let kept = o.indices.filter(pareto)
      // On the lower hull: strictly below every chord between kept points on either side of it.
      func onHull(_ j: Int) -> Bool {
        for a in kept where o[a].bytes < o[j].bytes {
          for b in kept where o[b].bytes > o[j].bytes {
            let t = Double(o[j].bytes - o[a].bytes) / Double(o[b].bytes - o[a].bytes)
            let chord = o[a].loss + t * (o[b].loss - o[a].loss)
            if o[j].loss >= chord { return false }
          }
        }
        return true
      }
      let hull = kept.filter(onHull)
      let up = hull.filter { o[$0].bytes > o[c].bytes }.min { o[$0].bytes < o[$1].bytes }
      let down = hull.filter { o[$0].bytes < o[c].bytes }.max { o[$0].bytes < o[$1].bytes }
      return (up, down)
    }
    return Array(all.prefix(max(0, count)))
  }
}
