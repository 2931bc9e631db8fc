import Allocation
import Foundation
import ModelIO

/// The runtimes `bitplan export` writes a plan for, and what it writes for each.
public enum ExportFormat: String, Sendable, CaseIterable {
  /// `llama-quantize --tensor-type-file` recipe (`LlamaCppRecipe`); needs the GGUF model.
  case llamaCpp = "llama-cpp"
  /// config.json `quantization` block (`MLXQuantizationConfig`).
  case mlx
  /// GPTQModel `QuantizeConfig` with `dynamic` (`GPTQModelConfig`).
  case gptqmodel
  /// llm-compressor recipe YAML (`LLMCompressorRecipe`).
  case llmCompressor = "llm-compressor"
  /// The plan with HF and GGUF tensor names (`PlanTensorNames`).
  case json

  /// Whether the export cannot be made without the model's tensor table (llama.cpp's recipe covers every tensor).
  public var needsModel: Bool { self == .llamaCpp }

  /// Refuses a plan whose formats this runtime cannot store, without the model (cheap: run it before reading one).
  /// - Throws: `ExportError` naming the first layer whose format the runtime refuses.
  public func checkFormats(_ plan: PlanDocument) throws(ExportError) {
    switch self {
    case .llamaCpp: _ = try LlamaCppRecipe.checkFormats(plan)
    case .mlx: _ = try MLXQuantizationConfig(plan: plan)
    case .gptqmodel: _ = try GPTQModelConfig(plan: plan)
    case .llmCompressor: _ = try LLMCompressorRecipe(plan: plan)
    case .json: _ = try PlannedLayer.all(in: plan)
    }
  }

  /// The exported file for `plan`, and the lines to show beside it (warnings).
  /// - Parameter tensors: the model's tensors (`ModelFile.tensorInfos`); required for `.llamaCpp`, used for shape
  ///   and name checks by the others when given.
  /// - Throws: `ExportError`: the runtime cannot express the plan (see each exporter).
  public func render(_ plan: PlanDocument, tensors: [TensorInfo]) throws(ExportError) -> (data: Data, warnings: [String]) {
    switch self {
    case .llamaCpp:
      return (Data(try LlamaCppRecipe(plan: plan, tensors: tensors).text.utf8), [])
    case .mlx:
      var shapes: [String: [Int]] = [:]
      for t in tensors where t.name.hasSuffix(".weight") { shapes[String(t.name.dropLast(".weight".count))] = t.shape }
      for name in plan.layers.keys where !tensors.isEmpty && shapes[name] == nil {
        throw ExportError(.unknownLayer, "\(name): the model has no tensor \(name).weight")
      }
      return (try MLXQuantizationConfig(plan: plan, shapes: shapes).jsonData(), [])
    case .gptqmodel:
      let config = try GPTQModelConfig(plan: plan)
      try Self.checkGroups(plan, tensors: tensors)
      return (config.jsonData(), config.warnings)
    case .llmCompressor:
      let recipe = try LLMCompressorRecipe(plan: plan)
      try Self.checkGroups(plan, tensors: tensors)
      return (Data(recipe.yaml.utf8), [])
    case .json:
      return (try PlanTensorNames.jsonData(plan: plan, tensors: tensors), [])
    }
  }

  /// With the model's tensors: every planned layer exists and its int format's group divides its rows (GPTQ and
  /// compressed-tensors group along the input dimension).
  /// - Throws: `.unknownLayer`, `.unsupportedShape`.
  static func checkGroups(_ plan: PlanDocument, tensors: [TensorInfo]) throws(ExportError) {
    guard !tensors.isEmpty else { return }
    let shapes = Dictionary(tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
    for layer in try PlannedLayer.all(in: plan) {
      guard let shape = shapes[layer.name + ".weight"] else {
        throw ExportError(.unknownLayer, "\(layer.name): the model has no tensor \(layer.name).weight")
      }
      if case .integer(_, let group?, _) = layer.format, let columns = shape.last, columns % group != 0 {
        throw ExportError(
          .unsupportedShape, "\(layer.name) \(shape): \(layer.formatName) needs rows of a multiple of \(group) values")
      }
    }
  }
}
