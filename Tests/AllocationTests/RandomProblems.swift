import Allocation
import _TestSupport

/// Seeded random allocation problems and an independent brute-force solver for them.
enum RandomProblems {
  static let formatPool = ["a", "b", "c", "d", "e", "f", "g", "h"]

  /// Up to `maxLayers` layers named `layer.N`, each with 1...`maxCandidates` distinct formats from the first
  /// max(5, `maxCandidates`) of the pool. Bytes are small integers (0...`maxBytes`, so equal totals are common) and losses are integers stored as Double when
  /// `integerLosses` (every sum is then exact, so results can be compared with ==). With `constraints`, up to two
  /// tie groups of 2-3 layers (by name) and up to one pin (by an anchored regex) are added; some are unsatisfiable
  /// on purpose. Every layer gets a positive sensitivity and variance.
  static func make(
    _ rng: inout SplitMix64, maxLayers: Int = 8, maxCandidates: Int = 4, maxBytes: Int = 20,
    integerLosses: Bool = true, constraints: Bool = true, exactSize: Bool = false
  ) -> AllocationProblem {
    let layerCount = exactSize ? maxLayers : Int.random(in: 1...maxLayers, using: &rng)
    var layers = [AllocationProblem.Layer]()
    for i in 0..<layerCount {
      let count = exactSize ? maxCandidates : Int.random(in: 1...maxCandidates, using: &rng)
      let formats = formatPool.prefix(max(5, maxCandidates)).shuffled(using: &rng).prefix(count)
      let options = formats.map { format in
        AllocationProblem.Option(
          format: format, bytes: Int.random(in: 0...maxBytes, using: &rng),
          loss: integerLosses ? Double(Int.random(in: 0...20, using: &rng)) : Double.random(in: 0..<1, using: &rng))
      }
      layers.append(
        .init(
          name: "layer.\(i)", parameterCount: Int.random(in: 1...64, using: &rng), options: options,
          sensitivity: Double.random(in: 0.01...10, using: &rng), variance: Double.random(in: 0.001...1, using: &rng)))
    }
    var problem = AllocationProblem(layers: layers)
    guard constraints else { return problem }
    for _ in 0..<Int.random(in: 0...2, using: &rng) where layerCount >= 2 && Bool.random(using: &rng) {
      let members = Array(layers.indices.shuffled(using: &rng).prefix(Int.random(in: 2...3, using: &rng)))
      problem.constraints.append(.tieNames(members.map { layers[$0].name }))
    }
    if Bool.random(using: &rng) {
      let i = Int.random(in: 0..<layerCount, using: &rng)
      // Mostly a format the layer has; sometimes any pool format, which may be impossible on purpose.
      let own = layers[i].options.randomElement(using: &rng)!.format
      let format = Int.random(in: 0..<5, using: &rng) == 0 ? formatPool.prefix(5).randomElement(using: &rng)! : own
      problem.constraints.append(.pin(pattern: "^layer\\.\(i)$", format: format))
    }
    return problem
  }

  /// One feasible assignment found by enumeration.
  struct Assignment {
    var bytes: Int
    var loss: Double
    var choices: [Int]
  }

  /// Every assignment that satisfies the constraints, by enumerating all combinations of the layers' options.
  /// Pins are matched with Swift Regex here (first match wins); ties must be `.tieNames`. Losses are summed in
  /// layer order. Independent of the solver's group reduction.
  static func bruteForce(_ problem: AllocationProblem) -> [Assignment] {
    let layers = problem.layers
    var pinned = [String?](repeating: nil, count: layers.count)
    var tieGroups = [[Int]]()
    for constraint in problem.constraints {
      switch constraint {
      case .pin(let pattern, let format):
        let regex = try! Regex(pattern)
        for i in layers.indices where pinned[i] == nil && layers[i].name.contains(regex) { pinned[i] = format }
      case .tieNames(let names):
        tieGroups.append(names.map { name in layers.firstIndex { $0.name == name }! })
      case .tie:
        preconditionFailure("bruteForce takes ties by name only")
      }
    }
    func satisfies(_ choice: [Int]) -> Bool {
      for i in layers.indices {
        if let format = pinned[i], layers[i].options[choice[i]].format != format { return false }
      }
      for group in tieGroups {
        let format = layers[group[0]].options[choice[group[0]]].format
        if group.contains(where: { layers[$0].options[choice[$0]].format != format }) { return false }
      }
      return true
    }
    var results = [Assignment]()
    var choice = [Int](repeating: 0, count: layers.count)
    func visit(_ i: Int) {
      guard i < layers.count else {
        guard satisfies(choice) else { return }
        var (bytes, loss) = (0, 0.0)
        for l in layers.indices {
          bytes += layers[l].options[choice[l]].bytes
          loss += layers[l].options[choice[l]].loss
        }
        results.append(Assignment(bytes: bytes, loss: loss, choices: choice))
        return
      }
      for k in layers[i].options.indices {
        choice[i] = k
        visit(i + 1)
      }
    }
    visit(0)
    return results
  }

  /// The Pareto set of the assignments by definition: sort by (bytes, loss), keep strict improvements in loss.
  static func paretoSet(_ assignments: [Assignment]) -> [ParetoFrontier.Point] {
    let sorted = assignments.map { ParetoFrontier.Point(bytes: $0.bytes, loss: $0.loss) }
      .sorted { ($0.bytes, $0.loss) < ($1.bytes, $1.loss) }
    var kept = [ParetoFrontier.Point]()
    var last = Double.infinity
    for point in sorted where point.loss < last {
      kept.append(point)
      last = point.loss
    }
    return kept
  }

  /// Whether some pin names a format its (first-matching) layer lacks.
  static func hasImpossiblePin(_ problem: AllocationProblem) -> Bool {
    var decided = Set<Int>()
    for case .pin(let pattern, let format) in problem.constraints {
      let regex = try! Regex(pattern)
      for (i, layer) in problem.layers.enumerated() where !decided.contains(i) && layer.name.contains(regex) {
        decided.insert(i)
        if !layer.options.contains(where: { $0.format == format }) { return true }
      }
    }
    return false
  }
}
