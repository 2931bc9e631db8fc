import Foundation

/// The seed article's closed form (Hasan, "Optimizing LLMs through Quantization"): optimal bits from sensitivity and
/// weight variance, by reverse water-filling, then integer repair onto the candidate formats.
///
/// Model: group g of nᵍ weights stored at b bits per weight adds Dᵍ(b) = c · nᵍ · wᵍ · 2^(−2b), where
/// wᵍ = Σᵢ nᵢ sᵢ σᵢ² / nᵍ is the parameter-weighted mean of sensitivity × variance over the group's layers. Minimising
/// Σ Dᵍ subject to Σ nᵍ bᵍ = 8·budget gives, by a Lagrange multiplier,
///
///     bᵍ = b̄ + ½ · log₂(wᵍ / G),   b̄ = 8·budget / N,   log₂ G = Σᵍ (nᵍ/N) · log₂ wᵍ,
///
/// G the parameter-weighted geometric mean. With bounds loᵍ ≤ bᵍ ≤ hiᵍ (the smallest and largest candidate), the
/// optimum is bᵍ = clamp(½ log₂ wᵍ + K, loᵍ, hiᵍ) with K chosen so that Σ nᵍ bᵍ = 8·budget: reverse water-filling.
/// Bits here are effective bits, 8 · bytes / n, so scales and zero points count against the budget exactly.
///
/// Repair: each group takes the largest candidate whose bytes do not exceed nᵍ·bᵍ/8 (so the total fits), then the
/// leftover bytes go, one upgrade at a time, to the next-larger candidate with the largest modelled gain
/// nᵍ wᵍ (2^(−2b) − 2^(−2b′)) per byte that fits. The candidates' own scores are not used: the plan is what the
/// closed form predicts, and its gap to the exact optimum measures the model.
/// - Complexity: O(G log G + U · G) for G groups and U repair upgrades.
package enum WaterfillSolver {
  /// The continuous optimum bᵍ of every group for `budget`, as effective bits per weight.
  /// - Throws: `.missingStatistics` when a layer lacks sensitivity or variance, or s·σ² or n is not positive.
  package static func continuousBits(_ reduced: ReducedProblem, budget: Int) throws(AllocationError) -> [Double] {
    let layers = reduced.problem.layers
    var a = [Double]()
    var low = [Double]()
    var high = [Double]()
    var n = [Double]()
    for group in reduced.groups {
      var weighted = 0.0
      for m in group.members {
        guard let s = layers[m].sensitivity, let v = layers[m].variance, s * v > 0, s.isFinite, v.isFinite,
          layers[m].parameterCount > 0
        else {
          throw AllocationError(
            .missingStatistics,
            "waterfill needs a positive sensitivity, variance and parameter count for every "
              + "layer; '\(layers[m].name)' has none or zero")
        }
        weighted += Double(layers[m].parameterCount) * s * v
      }
      let count = Double(group.parameterCount)
      let bytes = group.options.map(\.bytes)
      n.append(count)
      a.append(0.5 * log2(weighted / count))
      low.append(8 * Double(bytes.min()!) / count)
      high.append(8 * Double(bytes.max()!) / count)
    }
    let k = waterLevel(a: a, low: low, high: high, weights: n, target: 8 * Double(budget))
    return a.indices.map { min(max(a[$0] + k, low[$0]), high[$0]) }
  }

  /// K with Σ wᵍ · clamp(aᵍ + K, loᵍ, hiᵍ) = target, solved exactly on the piecewise-linear left side by sweeping
  /// its breakpoints loᵍ − aᵍ (group starts rising) and hiᵍ − aᵍ (group saturates). Targets outside the range
  /// return the breakpoint at that end.
  /// - Complexity: O(G log G).
  package static func waterLevel(
    a: [Double], low: [Double], high: [Double], weights: [Double], target: Double
  )
    -> Double
  {
    // Events: (K, change of slope).
    var events = [(Double, Double)]()
    for g in a.indices {
      events.append((low[g] - a[g], weights[g]))
      events.append((high[g] - a[g], -weights[g]))
    }
    events.sort { $0.0 < $1.0 }
    var value = zip(weights, low).reduce(0) { $0 + $1.0 * $1.1 }  // f(−∞)
    var (slope, k) = (0.0, events.first?.0 ?? 0)
    if target <= value { return k }
    for (position, change) in events {
      let next = value + slope * (position - k)
      if next >= target, slope > 0 { return k + (target - value) / slope }
      (value, k) = (next, position)
      slope += change
    }
    return k
  }

  /// Integer choices per group: round down onto the candidates, then spend the leftover by modelled gain per byte.
  /// Options of equal bytes are one rung of the ladder (the model cannot tell them apart); the first is taken.
  package static func choices(_ reduced: ReducedProblem, budget: Int) throws(AllocationError) -> [Int] {
    let bits = try continuousBits(reduced, budget: budget)
    let layers = reduced.problem.layers
    let groups = reduced.groups
    // ladder[g]: option indices by bytes ascending, one per distinct byte count; rung[g]: the current position.
    var ladder = [[Int]]()
    var rung = [Int]()
    var weight = [Double]()
    for (g, group) in groups.enumerated() {
      let sorted = group.options.indices.sorted { (group.options[$0].bytes, $0) < (group.options[$1].bytes, $1) }
      var steps = [Int]()
      for i in sorted where steps.last.map({ group.options[$0].bytes }) != group.options[i].bytes { steps.append(i) }
      let allowance = bits[g] * Double(group.parameterCount) / 8
      ladder.append(steps)
      rung.append(steps.lastIndex { Double(group.options[$0].bytes) <= allowance } ?? 0)
      weight.append(
        group.members.reduce(0) { total, m in
          total + Double(layers[m].parameterCount) * layers[m].sensitivity! * layers[m].variance!
        })
    }
    func bytes(_ g: Int, _ r: Int) -> Int { groups[g].options[ladder[g][r]].bytes }
    /// Modelled distortion nᵍ wᵍ 2^(−2b) at rung r, b = 8 · bytes / nᵍ.
    func distortion(_ g: Int, _ r: Int) -> Double {
      weight[g] * exp2(-16 * Double(bytes(g, r)) / Double(groups[g].parameterCount))
    }
    var used = groups.indices.reduce(0) { $0 + bytes($1, rung[$1]) }
    // Rounding in floating point could overshoot by a byte: step down the group furthest above its target.
    while used > budget {
      let over = { (g: Int) in Double(bytes(g, rung[g])) - bits[g] * Double(groups[g].parameterCount) / 8 }
      guard let g = groups.indices.filter({ rung[$0] > 0 }).max(by: { over($0) < over($1) }) else { break }
      used -= bytes(g, rung[g]) - bytes(g, rung[g] - 1)
      rung[g] -= 1
    }
    // Spend the leftover: the next rung with the largest modelled gain per byte that fits, until none fits.
    while true {
      var best: (group: Int, gain: Double)?
      for g in groups.indices where rung[g] + 1 < ladder[g].count {
        let extra = bytes(g, rung[g] + 1) - bytes(g, rung[g])
        guard used + extra <= budget else { continue }
        let gain = (distortion(g, rung[g]) - distortion(g, rung[g] + 1)) / Double(extra)
        if best == nil || gain > best!.gain { best = (g, gain) }
      }
      guard let move = best else { break }
      used += bytes(move.group, rung[move.group] + 1) - bytes(move.group, rung[move.group])
      rung[move.group] += 1
    }
    return groups.indices.map { ladder[$0][rung[$0]] }
  }
}
