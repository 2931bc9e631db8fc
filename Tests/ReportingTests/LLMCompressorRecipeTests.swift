import Foundation
import TensorCore
import Testing

@testable import Reporting

/// The recipe read the way llm-compressor applies it. Consumer: compressed-tensors `src/compressed_tensors/utils/match.py`
/// `match_name` (`re:` targets with `re.match`, others by equality; exact names before regexes) and
/// `quantization/lifecycle/apply.py` (a module's scheme is the group of its first matching target; `ignore` uses
/// the same matcher). The YAML is read by a small reader of the subset the exporter writes (block mappings, flow
/// lists of single-quoted strings, plain scalars), which fails on anything else.
@Suite struct LLMCompressorRecipeTests {
  /// A YAML mapping node: scalars, flow lists, nested mappings.
  indirect enum Node { case scalar(String), list([String]), map([(String, Node)]) }

  static func parseYAML(_ text: String) throws -> Node {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)[...]
    func indent(_ line: String) -> Int { line.prefix { $0 == " " }.count }
    func parseMap(at level: Int) throws -> Node {
      var entries: [(String, Node)] = []
      while let line = lines.first, indent(line) == level {
        lines.removeFirst()
        let body = line.dropFirst(level)
        let colon = try #require(body.firstIndex(of: ":"), "not a mapping entry: \(line)")
        let key = String(body[..<colon])
        let rest = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        if rest.isEmpty {
          let next = try #require(lines.first, "\(key) has no value")
          try #require(indent(next) > level)
          entries.append((key, try parseMap(at: indent(next))))
        } else if rest.hasPrefix("[") {
          try #require(rest.hasSuffix("]"))
          var items: [String] = []
          var inner = Substring(rest.dropFirst().dropLast())
          while !inner.isEmpty {
            inner = inner.drop { $0 == " " || $0 == "," }
            if inner.isEmpty { break }
            try #require(inner.first == "'", "flow items are single-quoted: \(rest)")
            inner = inner.dropFirst()
            var item = ""
            while true {
              let c = try #require(inner.first, "unterminated string")
              inner = inner.dropFirst()
              if c == "'" {
                if inner.first == "'" { item.append("'"); inner = inner.dropFirst() } else { break }
              } else {
                item.append(c)
              }
            }
            items.append(item)
          }
          entries.append((key, .list(items)))
        } else {
          entries.append((key, .scalar(rest)))
        }
      }
      return .map(entries)
    }
    let root = try parseMap(at: 0)
    try #require(lines.isEmpty, "unparsed: \(lines.first ?? "")")
    return root
  }

  static func child(_ node: Node, _ key: String) throws -> Node {
    guard case .map(let entries) = node else { throw CancellationError() }
    return try #require(entries.first { $0.0 == key }?.1, "missing \(key)")
  }

  /// `match_name(name, target)`.
  static func matchName(_ name: String, _ target: String) -> Bool {
    target.hasPrefix("re:") ? ExportFixtures.matchesFromStart(String(target.dropFirst(3)), name) : target == name
  }

  @Test func everyIntLayerIsTargetedByExactlyOneGroupWithItsFormat() throws {
    // Siblings share a format per block, as `--tie` makes them.
    var formats: [String: String] = [:]
    var generator = SplitMix64(seed: 5)
    func pick(_ n: Int) -> Int { Int(generator.next() % UInt64(n)) }
    for b in 0..<6 {
      let attention = ["int4-g128", "int8", "f16", "int3-g64-asym"][pick(4)]
      let mlp = ["int4-g128", "int2-g32", "int8"][pick(3)]
      for l in ["q_proj", "k_proj", "v_proj"] { formats["model.layers.\(b).self_attn.\(l)"] = attention }
      formats["model.layers.\(b).self_attn.o_proj"] = ["int4-g128", "f16", "int6-g64"][pick(3)]
      for l in ["gate_proj", "up_proj"] { formats["model.layers.\(b).mlp.\(l)"] = mlp }
      formats["model.layers.\(b).mlp.down_proj"] = ["int8", "int5-g64"][pick(2)]
    }
    let recipe = try LLMCompressorRecipe(plan: ExportFixtures.plan(formats))
    let root = try Self.parseYAML(recipe.yaml)
    let modifier = try Self.child(try Self.child(try Self.child(root, "quant_stage"), "quant_modifiers"), "QuantizationModifier")
    guard case .list(let ignore) = try Self.child(modifier, "ignore"), case .map(let groups) = try Self.child(modifier, "config_groups") else {
      Issue.record("ignore is a list and config_groups a mapping")
      return
    }
    #expect(ignore.contains("lm_head"))
    for (name, format) in formats {
      let ignored = ignore.contains { Self.matchName(name, $0) }
      let matching = try groups.filter { _, group in
        guard case .list(let targets) = try Self.child(group, "targets") else { return false }
        return targets.contains { Self.matchName(name, $0) }
      }
      if format == "f16" {
        #expect(ignored && matching.isEmpty, "\(name) is left unquantized")
        continue
      }
      #expect(!ignored && matching.count == 1, "\(name): \(matching.count) groups")
      let weights = try Self.child(try #require(matching.first).1, "weights")
      func scalar(_ key: String) throws -> String? {
        guard case .map(let entries) = weights, case .scalar(let s)? = entries.first(where: { $0.0 == key })?.1 else { return nil }
        return s
      }
      let parts = format.split(separator: "-")
      let bits = String(parts[0].dropFirst(3))
      let group = parts.first { $0.hasPrefix("g") }.map { String($0.dropFirst()) }
      #expect(try scalar("num_bits") == bits && scalar("type") == "int" && scalar("dynamic") == "false", "\(name)")
      #expect(try scalar("strategy") == (group == nil ? "channel" : "group") && scalar("group_size") == group, "\(name)")
      #expect(try scalar("symmetric") == (format.hasSuffix("-asym") ? "false" : "true"), "\(name)")
    }
    #expect(!ignore.contains { Self.matchName("model.layers.0.mlp.down_proj", $0) })
  }

  @Test func differingFusedSiblingsAreRefusedWithTheTieAdvice() {
    var formats = Dictionary(uniqueKeysWithValues: ExportFixtures.layerNames(blocks: 4).map { ($0, "int4-g128") })
    formats["model.layers.2.self_attn.v_proj"] = "int8"
    #expect {
      try LLMCompressorRecipe(plan: ExportFixtures.plan(formats))
    } throws: { error in
      let e = error as! ExportError
      return e.code == .fusedMismatch && e.message.contains("model.layers.2.self_attn") && e.message.contains("v_proj int8")
        && e.message.contains("--tie 'layers\\.(\\d+)\\.self_attn\\.[qkv]_proj'") && !e.message.contains("\n")
    }
  }

  @Test func nonIntFormatsAreRefused() {
    for format in ["affine4-g64", "q4_k", "nf4-g64"] {
      #expect(throws: ExportError.self, "\(format)") {
        try LLMCompressorRecipe(plan: ExportFixtures.plan(["model.layers.0.mlp.down_proj": format]))
      }
    }
  }
}

