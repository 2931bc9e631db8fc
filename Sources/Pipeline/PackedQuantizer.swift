import Engine
import Foundation
import ModelIO
import Quantization
import Sensitivity
import Validation

/// How the packed model chooses each layer's codes: the quantizer per (layer, format) and, for the input-aware
/// ones (GPTQ, AWQ), every layer's inputs on the calibration tokens, captured once from the Float model.
///
/// The inputs are those `measure` captures (`EngineSensitivityModel.layerInputs`): the same calibration tokens
/// (`TokenWindow.make` over the same text and count) through the unquantized model, so GPTQ gives a layer the very
/// codes `measure` scored. They are taken from the unquantized model for every layer (not layer by layer through
/// the already quantized ones, as GPTQ's own sequential mode does): the measurement and the plan assume the same.
public struct PackedQuantizer: @unchecked Sendable {
  /// The quantizer of a (layer name, format); falls back to round to nearest where it does not apply.
  public var method: (String, QuantFormat) -> QuantizerMethod
  /// Captured inputs `X` `[n, in]` by layer name (empty when only round to nearest is used).
  public var inputs: [String: (values: [Float], rows: Int)]
  /// GPTQ's damping, batch width and column order.
  public var gptqOptions = GPTQ.Options()

  /// Every layer by round to nearest.
  public static let roundToNearest = PackedQuantizer(method: { _, _ in .rtn }, inputs: [:])

  public init(method: @escaping (String, QuantFormat) -> QuantizerMethod, inputs: [String: (values: [Float], rows: Int)]) {
    self.method = method
    self.inputs = inputs
  }

  /// Captures the inputs of `layers` (module paths) on `tokens` through `model`, which must still hold its Float
  /// weights (before any packed layer is installed).
  /// - Throws: `EngineError` from the forward pass.
  public static func capture(
    _ model: LlamaModel<Float>, tokens: [Int], layers: [String]
  ) throws -> [String: (values: [Float], rows: Int)] {
    var captured: [String: (values: [Float], rows: Int)] = [:]
    _ = try model.captureInputs(tokens: tokens, layers: Set(layers)) { layer, x in
      captured[layer.name] = (x.storage, tokens.count)
    }
    return captured
  }

  /// The calibration tokens of a run: `[BOS]` + the first `count − 1` ids of `path`'s text, as `measure` takes them.
  /// - Throws: `WindowError`/`MeasureError` for an unreadable or too short text.
  public static func calibrationTokens(path: String, tokenizer: BPETokenizer, count: Int) throws -> [Int] {
    let text = try TokenWindow.readText(path, option: "--calib")
    return try TokenWindow.make(text: text, tokenizer: tokenizer, count: count, source: "--calib '\(path)'")
  }

  /// Layer `name` [rows, columns] with `values` (HF row order) in `format` by its quantizer, and the per-input-channel
  /// scales `s` its input must be divided by (AWQ; nil otherwise). `group` gives the formats of the layers sharing
  /// the input (AWQ's group, module path → format; the layer itself included); `awqResults` keeps a group's search
  /// for its other members.
  /// - Returns: the packed tensor, its input scales, and the quantizer that was used.
  func quantize(
    _ values: [Float], name: String, rows: Int, columns: Int, format: QuantFormat, calibration: RangeCalibration,
    awq: (() throws -> (AWQ.Result, Int)?)
  ) throws -> (PackedTensor, [Float]?, QuantizerMethod) {
    switch method(name, format) {
    case .gptq:
      if GPTQ.supports(format), let x = inputs[name] {
        let gram = try GramMatrix(inputs: x.values, rows: x.rows, columns: columns)
        let (packed, used) = try GuardedGPTQ.quantize(
          values, rows: rows, columns: columns, format: format, gram: gram, calibration: calibration,
          options: gptqOptions)
        return (packed, nil, used)
      }
    case .awq:
      if AWQ.supports(format), let (result, index) = try awq() {
        let (packed, scales) = result.choice(member: index)
        return (packed, scales, scales == nil ? .rtn : .awq)
      }
    case .rtn:
      break
    }
    return (try Quantization.quantize(values, rows: rows, columns: columns, format: format, calibration: calibration), nil, .rtn)
  }
}
