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
  package static func choices(_ reduced: ReducedProblem, budget: Int) throws(AllocationError) -> [Int] {
    let bits = try continuousBits(reduced, budget: budget)
    let layers = reduced.problem.layers
    var order = [[Int]]()
    var weight = [Double]()
    var choice = [Int]()  // order[g]: options by bytes ascending
    var used = 0
    for (g, group) in reduced.groups.enumerated() {
      let sorted = group.options.indices.sorted { (group.options[$0].bytes, $0) < (group.options[$1].bytes, $1) }
      let allowance = bits[g] * Double(group.parameterCount) / 8
      let p = sorted.lastIndex { Double(group.options[$0].bytes) <= allowance } ?? 0
      order.append(sorted)
      choice.append(p)
      used += group.options[sorted[p]].bytes
      weight.append(
        group.members.reduce(0) {
          $0 + Double(layers[$1].parameterCount) * layers[$1].sensitivity! * layers[$1].variance!
        })
    }
    // Rounding in floating point could overshoot by a byte; step down the most over-target group until it fits.
    while used > budget {
      guard
        let g = reduced.groups.indices.filter({ choice[$0] > 0 }).max(by: {
          Double(reduced.groups[$0].options[order[$0][choice[$0]]].bytes) / Double(reduced.groups[$0].parameterCount)
            - bits[$0] / 8
            < Double(reduced.groups[$1].options[order[$1][choice[$1]]].bytes)
            / Double(reduced.groups[$1].parameterCount) - bits[$1] / 8
        })
      else { break }
      used -=
        reduced.groups[g].options[order[g][choice[g]]].bytes - reduced.groups[g].options[order[g][choice[g] - 1]].bytes
      choice[g] -= 1
    }
    func modelled(_ g: Int, _ p: Int) -> Double {
      let n = Double(reduced.groups[g].parameterCount)
      return weight[g] * exp2(-2 * 8 * Double(reduced.groups[g].options[order[g][p]].bytes) / n)
    }
    while true {
      var best: (group: Int, gain: Double)?
      for g in reduced.groups.indices where choice[g] + 1 < order[g].count {
        let extra =
          reduced.groups[g].options[order[g][choice[g] + 1]].bytes
          - reduced.groups[g].options[order[g][choice[g]]].bytes
        guard used + extra <= budget else { continue }
        let gain = (modelled(g, choice[g]) - modelled(g, choice[g] + 1)) / Double(max(extra, 1))
        if best == nil || gain > best!.gain { best = (g, gain) }
      }
      guard let move = best else { break }
      let g = move.group
      used +=
        reduced.groups[g].options[order[g][choice[g] + 1]].bytes - reduced.groups[g].options[order[g][choice[g]]].bytes
      choice[g] += 1
    }
    return choice.indices.map { order[$0][choice[$0]] }
  }
}
