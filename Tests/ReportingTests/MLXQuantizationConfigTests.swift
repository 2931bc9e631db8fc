import Foundation
import Quantization
import Testing

@testable import Reporting

/// The block read the way MLX loaders read it. Consumers: mlx-swift-lm `Libraries/MLXLMCommon/BaseConfiguration.swift`
/// (per-layer values: `false`, or an object with non-optional `group_size` and `bits`, optional `mode`; other keys
/// must be a bool or such an object) and mlx-lm `mlx_lm/utils.py` `load_model` (`class_predicate` returns
/// `config["quantization"][path]`, passed verbatim to `to_quantized(**params)`).
@Suite struct MLXQuantizationConfigTests {
  /// mlx-swift-lm's `BaseConfiguration.Quantization` with its per-layer map, decoded as it decodes them: every key
  /// but the skipped ones is tried as `Bool` first (`false` → skip), else decoded as an object whose `group_size`
  /// and `bits` are required (a missing one throws and fails the whole config).
  struct MLXSwiftLMQuantization: Decodable {
    struct Layer: Decodable {
      var groupSize: Int
      var bits: Int
      var mode: String?
      enum CodingKeys: String, CodingKey { case groupSize = "group_size", bits, mode }
    }
    struct Key: CodingKey {
      var stringValue: String
      var intValue: Int? { nil }
      init?(stringValue: String) { self.stringValue = stringValue }
      init?(intValue: Int) { nil }
    }
    var groupSize: Int
    var bits: Int
    /// nil: skip (`false`).
    var layers: [String: Layer?] = [:]

    init(from decoder: any Decoder) throws {
      let c = try decoder.container(keyedBy: Key.self)
      groupSize = try c.decode(Int.self, forKey: Key(stringValue: "group_size")!)
      bits = try c.decode(Int.self, forKey: Key(stringValue: "bits")!)
      for key in c.allKeys where !["group_size", "bits", "mode", "quant_method", "linear_class", "quantization_mode"].contains(key.stringValue) {
        if let flag = try? c.decode(Bool.self, forKey: key) {
          if !flag { layers[key.stringValue] = .some(nil) }
        } else {
          layers[key.stringValue] = try c.decode(Layer.self, forKey: key)
        }
      }
    }
  }

  struct ConfigJSON: Decodable {
    var quantization: MLXSwiftLMQuantization
    var quantizationConfig: MLXSwiftLMQuantization
    enum CodingKeys: String, CodingKey { case quantization, quantizationConfig = "quantization_config" }
  }

  @Test func everyPlannedLayerHasAnObjectWithGroupSizeBitsAndMode() throws {
    let names = ExportFixtures.layerNames(blocks: 4, embedding: true)
    let formats = ExportFixtures.randomPlan(names, seed: 7) { _ in ["affine4-g64", "affine4-g64", "affine6-g64", "affine3-g32", "affine8-g64", "f16"] }
    let config = try MLXQuantizationConfig(plan: ExportFixtures.plan(formats))
    let json = try #require(try JSONSerialization.jsonObject(with: config.jsonData()) as? [String: Any])
    // mlx-lm's save_config writes the same object twice.
    func canonical(_ key: String) throws -> Data {
      try JSONSerialization.data(withJSONObject: try #require(json[key] as? [String: Any]), options: .sortedKeys)
    }
    #expect(try canonical("quantization") == canonical("quantization_config"))
    let decoded = try JSONDecoder().decode(ConfigJSON.self, from: config.jsonData()).quantization
    #expect(decoded.groupSize == 64 && decoded.bits == 4, "affine4-g64 is the most planned format")
    #expect(Set(decoded.layers.keys) == Set(names))
    for (name, format) in formats {
      let entry = try #require(decoded.layers[name])
      if format == "f16" {
        #expect(entry == nil, "\(name)")
      } else {
        let parsed = try QuantFormat(parsing: format)
        guard case .affine(let bits) = parsed.scheme else { Issue.record("\(format) is not affine"); continue }
        #expect(entry?.groupSize == parsed.groupSize && entry?.bits == bits && entry?.mode == "affine", "\(name)")
      }
    }
  }

  @Test func formatsMLXCannotHoldAreRefused() {
    for format in ["int4-g64", "q4_0", "affine7-g64", "affine4-g256", "int4-g64-asym", "nf4-g64"] {
      let plan = ExportFixtures.plan(["model.layers.0.mlp.up_proj": "affine4-g64", "model.layers.0.self_attn.v_proj": format])
      #expect {
        try MLXQuantizationConfig(plan: plan)
      } throws: { error in
        let e = error as! ExportError
        return e.code == .unsupportedFormat && e.message.hasPrefix("model.layers.0.self_attn.v_proj: \(format)")
      }
    }
  }

  @Test func aGroupThatDoesNotDivideTheRowIsRefusedWhenShapesAreKnown() {
    let plan = ExportFixtures.plan(["model.layers.0.self_attn.q_proj": "affine4-g128"])
    #expect(throws: Never.self) { try MLXQuantizationConfig(plan: plan) }
    #expect {
      try MLXQuantizationConfig(plan: plan, shapes: ["model.layers.0.self_attn.q_proj": [576, 576]])
    } throws: { ($0 as! ExportError).code == .unsupportedShape }
  }

  @Test func affineNamesReachTheExporterAsAffine() throws {
    #expect(try PlannedFormat(name: "affine4-g64", layer: "x") == .affine(bits: 4, group: 64))
    #expect(try PlannedFormat(name: "AFFINE8-G32", layer: "x") == .affine(bits: 8, group: 32))
    for bad in ["affine1-g64", "affine9-g64", "affine4-g48"] {
      #expect(throws: ExportError.self, "\(bad)") { try PlannedFormat(name: bad, layer: "x") }
    }
  }
}
