import Allocation
import Foundation
import ModelIO

/// The plan as JSON with each layer's tensor named in both spellings: `"tensors": {"hf":
/// "model.layers.0.self_attn.q_proj.weight", "gguf": "blk.0.attn_q.weight"}` beside its format, bits and bytes.
///
/// Names come from the model file when it is given (its own table of GGUF and HF names), else from `NameMapping`
/// (llama GGUF names); a layer outside the mapping gets `"gguf": null`. Every other key and number is written by
/// the same encoder as PLAN.json.
public enum PlanTensorNames {
  /// A layer's tensor in both spellings.
  public struct Names: Encodable, Sendable, Equatable {
    /// `model.layers.0.self_attn.q_proj.weight`.
    public var hf: String
    /// `blk.0.attn_q.weight`, or nil outside the llama mapping.
    public var gguf: String?

    public func encode(to encoder: any Encoder) throws {
      var c = encoder.container(keyedBy: Key.self)
      try c.encode(hf, forKey: Key("hf"))
      try c.encode(gguf, forKey: Key("gguf"))  // null, not absent
    }
  }

  /// The names of every planned layer.
  /// - Parameter tensors: the model's tensors (`ModelFile.tensorInfos`), or empty.
  /// - Throws: `.unknownLayer` when a model is given and lacks a planned layer's weight.
  public static func names(plan: PlanDocument, tensors: [TensorInfo] = []) throws(ExportError) -> [String: Names] {
    let fileNames = Dictionary(tensors.map { ($0.name, $0.fileName) }, uniquingKeysWith: { a, _ in a })
    var out: [String: Names] = [:]
    for name in plan.layers.keys.sorted() {
      let hf = name + ".weight"
      if tensors.isEmpty {
        out[name] = Names(hf: hf, gguf: NameMapping.ggufName(forHF: hf))
      } else {
        guard let fileName = fileNames[hf] else { throw ExportError(.unknownLayer, "\(name): the model has no tensor \(hf)") }
        // A safetensors model names tensors in HF spelling only.
        out[name] = Names(hf: hf, gguf: fileName == hf ? NameMapping.ggufName(forHF: hf) : fileName)
      }
    }
    return out
  }

  /// The JSON text: every key of PLAN.json, and `tensors` in each layer; pretty-printed, sorted keys, newline.
  /// - Throws: as `names(plan:tensors:)`.
  public static func jsonData(plan: PlanDocument, tensors: [TensorInfo] = []) throws(ExportError) -> Data {
    let document = Document(plan: plan, names: try names(plan: plan, tensors: tensors))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Strings, integers, finite doubles, booleans and nulls: encoding cannot fail.
    var data = try! encoder.encode(document)
    data.append(0x0A)
    return data
  }

  struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  /// A plan layer's own keys, then `tensors`.
  struct Layer: Encodable {
    var layer: PlanDocument.Layer
    var names: Names
    func encode(to encoder: any Encoder) throws {
      try layer.encode(to: encoder)
      var c = encoder.container(keyedBy: Key.self)
      try c.encode(names, forKey: Key("tensors"))
    }
  }

  /// The plan's top-level keys as `PlanDocument` writes them, with `layers` replaced.
  struct Document: Encodable {
    var plan: PlanDocument
    var names: [String: Names]
    func encode(to encoder: any Encoder) throws {
      var c = encoder.container(keyedBy: Key.self)
      try c.encode(plan.formatVersion, forKey: Key("format_version"))
      try c.encode(plan.model, forKey: Key("model"))
      try c.encode(plan.modelSHA256, forKey: Key("model_sha256"))
      try c.encode(plan.budgetBytes, forKey: Key("budget_bytes"))
      try c.encode(plan.totalBytes, forKey: Key("total_bytes"))
      try c.encode(plan.bitsPerWeight, forKey: Key("bits_per_weight"))
      try c.encode(plan.solver, forKey: Key("solver"))
      try c.encode(plan.score, forKey: Key("score"))
      try c.encode(plan.predictedLossDelta, forKey: Key("predicted_loss_delta"))
      var layers: [String: Layer] = [:]
      for (name, layer) in plan.layers { layers[name] = Layer(layer: layer, names: names[name]!) }
      try c.encode(layers, forKey: Key("layers"))
    }
  }
}
