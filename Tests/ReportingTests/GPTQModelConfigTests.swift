import Foundation
import Testing

@testable import Reporting

/// The config read the way GPTQModel reads `dynamic`. Consumer: GPTQModel `gptqmodel/quantization/config.py`
/// `_get_dynamic_patterns` (strip `+:`/`-:`, compile) and `dynamic_get` (PCRE `match`: start-anchored; the first
/// matching entry in dict order wins; `-:` means skip). vLLM's `gptq_utils.py` `get_dynamic_override` is the same
/// with `re.match`.
@Suite struct GPTQModelConfigTests {
  /// `dynamic_get` for `module`: the override dict, `false` for a negative match, nil when no rule matches.
  /// Rules are tried in the JSON text's order.
  static func dynamicGet(_ rules: [(String, [String: Any])], _ module: String) -> Any? {
    for (key, override) in rules {
      let negative = key.hasPrefix("-:")
      let raw = key.hasPrefix("-:") || key.hasPrefix("+:") ? String(key.dropFirst(2)) : key
      if ExportFixtures.matchesFromStart(raw, module) { return negative ? false : override }
    }
    return nil
  }

  /// The `dynamic` entries in file order (JSONSerialization loses order, so read the keys' positions in the text).
  static func orderedDynamic(_ data: Data) throws -> [(String, [String: Any])] {
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let dynamic = try #require(object["dynamic"] as? [String: [String: Any]])
    let text = String(decoding: data, as: UTF8.self)
    return try dynamic.map { key, value in
      let encoded = String(decoding: try JSONSerialization.data(withJSONObject: [key], options: .withoutEscapingSlashes), as: UTF8.self)
      let literal = String(encoded.dropFirst().dropLast())  // the key as the text spells it, quotes included
      return (text.range(of: literal)!.lowerBound, key, value)
    }.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
  }

  @Test func everyPlannedLayerResolvesToItsOwnSettingAndNothingElseMatches() throws {
    let names = ExportFixtures.layerNames(blocks: 12)
    let formats = ExportFixtures.randomPlan(names, seed: 11) { _ in ["int4-g128", "int4-g128", "int8", "int2-g64", "int3-g32-asym", "f16"] }
    let config = try GPTQModelConfig(plan: ExportFixtures.plan(formats))
    let data = config.jsonData()
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(object["bits"] as? Int == 4 && object["group_size"] as? Int == 128 && object["sym"] as? Bool == true)
    #expect(object["desc_act"] as? Bool == false)
    let rules = try Self.orderedDynamic(data)
    #expect(rules.count == names.count)
    for (name, format) in formats {
      let got = Self.dynamicGet(rules, name)
      if format == "f16" {
        #expect(got as? Bool == false, "\(name) is skipped")
        continue
      }
      let o = try #require(got as? [String: Any], "\(name)")
      let (bits, group, sym): (Int, Int, Bool) =
        switch format {
        case "int4-g128": (4, 128, true)
        case "int8": (8, -1, true)
        case "int2-g64": (2, 64, true)
        default: (3, 32, false)
        }
      #expect(o["bits"] as? Int == bits && o["group_size"] as? Int == group && o["sym"] as? Bool == sym, "\(name)")
    }
    // `model.layers.1.` must not capture `model.layers.10.`: the `$` and the escaped dots make every rule exact.
    for stranger in ["model.layers.1.mlp.down_proj_extra", "model.layers.100.mlp.down_proj", "modelXlayers.1.mlp.down_proj", "lm_head"] {
      #expect(Self.dynamicGet(rules, stranger) == nil, "\(stranger)")
    }
  }

  @Test func formatsGPTQModelCannotHoldAreRefused() {
    for format in ["int5-g64", "int6", "affine4-g64", "q4_0", "nf4-g64"] {
      let plan = ExportFixtures.plan(["model.layers.0.mlp.up_proj": "int4-g128", "model.layers.2.mlp.down_proj": format])
      #expect {
        try GPTQModelConfig(plan: plan)
      } throws: { error in
        let e = error as! ExportError
        return e.code == .unsupportedFormat && e.message.hasPrefix("model.layers.2.mlp.down_proj: \(format)")
      }
    }
    #expect(throws: ExportError.self) { try GPTQModelConfig(plan: ExportFixtures.plan(["model.embed_tokens": "int8"])) }
  }

  @Test func differingFusedSiblingsAreWrittenWithOneWarningPerBlock() throws {
    var formats = Dictionary(uniqueKeysWithValues: ExportFixtures.layerNames(blocks: 3).map { ($0, "int4-g128") })
    formats["model.layers.1.self_attn.k_proj"] = "int8"
    formats["model.layers.2.mlp.up_proj"] = "f16"
    let config = try GPTQModelConfig(plan: ExportFixtures.plan(formats))
    #expect(config.warnings.count == 2)
    #expect(config.warnings[0].contains("model.layers.1.self_attn") && config.warnings[0].contains("k_proj int8"))
    #expect(config.warnings[1].contains("model.layers.2.mlp") && config.warnings[1].contains("--tie"))
    let uniform = try GPTQModelConfig(plan: ExportFixtures.plan(formats.mapValues { _ in "int4-g128" }))
    #expect(uniform.warnings.isEmpty)
  }

  @Test func anIntPlannedHeadTurnsOnLMHeadQuantization() throws {
    let config = try GPTQModelConfig(plan: ExportFixtures.plan(["lm_head": "int8", "model.layers.0.mlp.up_proj": "int4-g128"]))
    let object = try #require(try JSONSerialization.jsonObject(with: config.jsonData()) as? [String: Any])
    #expect(object["lm_head"] as? Bool == true)
    let rules = try Self.orderedDynamic(config.jsonData())
    #expect((Self.dynamicGet(rules, "lm_head") as? [String: Any])?["bits"] as? Int == 8)
  }
}
