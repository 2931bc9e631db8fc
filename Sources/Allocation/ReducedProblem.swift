/// The problem after pins and ties: one group per tie group (a lone layer is a group of one), each with the formats
/// all its members allow, bytes and losses summed over the members.
///
/// Every solver works on groups and expands the answer back to layers, so a tie group can never be split and a pin
/// can never be broken. Summing is exact for bytes; losses are summed in member order.
package struct ReducedProblem: Sendable {
  /// One shared format choice of a group.
  package struct GroupOption: Sendable, Equatable {
    /// Σ of the members' bytes in this format.
    package var bytes: Int
    /// Σ of the members' scores in this format, in member order.
    package var loss: Double
    /// Index into `AllocationProblem.Layer.options` for each member, in member order.
    package var memberOptions: [Int]
  }

  /// A set of layers that must share a format.
  package struct Group: Sendable {
    /// Indices into `AllocationProblem.layers`, ascending.
    package var members: [Int]
    /// The formats every member allows, in the first member's order.
    package var options: [GroupOption]
    /// Σ of the members' weights.
    package var parameterCount: Int
  }

  /// The problem this was reduced from.
  package let problem: AllocationProblem
  /// Groups ordered by their first member.
  package let groups: [Group]

  /// Validates `problem`, applies pins (first match wins) and ties (union of all tie constraints).
  /// - Throws: `AllocationError` for a bad regex, a pattern matching nothing, a pinned format the layer lacks, or a
  ///   tie group whose members share no format.
  /// - Complexity: O(layers × (constraints + candidates)), plus the regex matching.
  package init(_ problem: AllocationProblem) throws(AllocationError) {
    try problem.validate()
    self.problem = problem
    let layers = problem.layers
    // allowed[i]: option indices layer i may take after pins.
    var allowed = layers.map { Array($0.options.indices) }
    var pinned = [Bool](repeating: false, count: layers.count)
    var parent = Array(layers.indices)  // union-find over layers for ties
    func find(_ x: Int) -> Int {
      var x = x
      while parent[x] != x {
        parent[x] = parent[parent[x]]
        x = parent[x]
      }
      return x
    }
    func union(_ a: Int, _ b: Int) {
      let (ra, rb) = (find(a), find(b))
      if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }
    let indexByName = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($1.name, $0) })

    for constraint in problem.constraints {
      switch constraint {
      case .pin(let pattern, let format):
        let regex = try Self.compile(pattern)
        var matched = false
        for (i, layer) in layers.enumerated() where layer.name.contains(regex) {
          matched = true
          if pinned[i] { continue }  // an earlier pin already decided this layer
          guard let option = layer.options.firstIndex(where: { $0.format == format }) else {
            let formats = layer.options.map(\.format).joined(separator: ", ")
            throw AllocationError(
              .unknownFormat,
              "pin '\(pattern)=\(format)': layer '\(layer.name)' does not allow '\(format)' "
                + "(allowed: \(formats))")
          }
          allowed[i] = [option]
          pinned[i] = true
        }
        guard matched else { throw AllocationError(.unmatchedPattern, "pin pattern '\(pattern)' matches no layer") }
      case .tie(let pattern):
        let regex = try Self.compile(pattern)
        var firstByKey = [String: Int]()
        for (i, layer) in layers.enumerated() {
          guard let match = layer.name.firstMatch(of: regex) else { continue }
          let key: String
          if match.output.count > 1, let capture = match.output[1].substring {
            key = String(capture)
          } else {
            key = String(layer.name[..<match.range.lowerBound]) + String(layer.name[match.range.upperBound...])
          }
          if let first = firstByKey[key] { union(first, i) } else { firstByKey[key] = i }
        }
        guard !firstByKey.isEmpty else {
          throw AllocationError(.unmatchedPattern, "tie pattern '\(pattern)' matches no layer")
        }
      case .tieNames(let names):
        var indices = [Int]()
        for name in names {
          guard let i = indexByName[name] else {
            throw AllocationError(.unmatchedPattern, "tie group names unknown layer '\(name)'")
          }
          indices.append(i)
        }
        for i in indices.dropFirst() { union(indices[0], i) }
      }
    }

    var membersByRoot = [Int: [Int]]()
    var roots = [Int]()
    for i in layers.indices {
      let root = find(i)
      if membersByRoot[root] == nil { roots.append(root) }
      membersByRoot[root, default: []].append(i)
    }
    var groups = [Group]()
    groups.reserveCapacity(roots.count)
    for root in roots {
      let members = membersByRoot[root]!
      var options = [GroupOption]()
      for first in allowed[members[0]] {
        let format = layers[members[0]].options[first].format
        var option = GroupOption(bytes: 0, loss: 0, memberOptions: [])
        for m in members {
          guard let k = allowed[m].first(where: { layers[m].options[$0].format == format }) else { break }
          option.bytes += layers[m].options[k].bytes
          option.loss += layers[m].options[k].loss
          option.memberOptions.append(k)
        }
        if option.memberOptions.count == members.count { options.append(option) }
      }
      guard !options.isEmpty else {
        let names = members.prefix(4).map { "'\(layers[$0].name)'" }.joined(separator: ", ")
        throw AllocationError(
          .incompatibleTie,
          "tie group of \(members.count) layers (\(names)\(members.count > 4 ? ", ..." : "")) shares no allowed format")
      }
      let parameters = members.reduce(0) { $0 + layers[$1].parameterCount }
      groups.append(Group(members: members, options: options, parameterCount: parameters))
    }
    self.groups = groups
  }

  /// Σ of per-group minimum bytes ... Σ of per-group maximum bytes.
  package var achievableBytes: ClosedRange<Int> {
    var (low, high) = (0, 0)
    for group in groups {
      low += group.options.lazy.map(\.bytes).min()!
      high += group.options.lazy.map(\.bytes).max()!
    }
    return low...high
  }

  /// Throws `.infeasible` with the achievable range when even the smallest plan exceeds `budget`.
  package func checkFeasible(budget: Int) throws(AllocationError) {
    let range = achievableBytes
    guard budget >= range.lowerBound else { throw AllocationError.infeasible(budget: budget, range: range) }
  }

  /// Expands one option index per group into one option index per layer.
  package func layerChoices(_ groupChoices: [Int]) -> [Int] {
    precondition(groupChoices.count == groups.count, "\(groupChoices.count) choices for \(groups.count) groups")
    var choices = [Int](repeating: -1, count: problem.layers.count)
    for (g, group) in groups.enumerated() {
      for (k, member) in group.members.enumerated() {
        choices[member] = group.options[groupChoices[g]].memberOptions[k]
      }
    }
    return choices
  }

  static func compile(_ pattern: String) throws(AllocationError) -> Regex<AnyRegexOutput> {
    do { return try Regex(pattern) } catch {
      throw AllocationError(.badPattern, "pattern '\(pattern)' is not a valid regular expression: \(error)")
    }
  }
}
