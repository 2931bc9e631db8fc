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
    try capture(model, windows: [tokens], layers: layers)
  }

  /// The inputs of `layers` over several windows, each its own forward pass, rows concatenated in window order.
  /// - Throws: `EngineError` from the forward pass.
  public static func capture(
    _ model: LlamaModel<Float>, windows: [[Int]], layers: [String]
  ) throws -> [String: (values: [Float], rows: Int)] {
    var captured: [String: (values: [Float], rows: Int)] = [:]
    for tokens in windows {
      _ = try model.captureInputs(tokens: tokens, layers: Set(layers)) { layer, x in
        captured[layer.name, default: ([], 0)].values += x.storage
        captured[layer.name]!.rows += tokens.count
      }
    }
    return captured
  }

  /// Tokens per calibration window when more are asked for than one window holds (validation's window length).
  public static let calibrationWindowLength = 512

  /// `count` calibration tokens as windows of at most `window` tokens, each starting with BOS (as the evaluation
  /// windows and GPTQ's own calibration samples do), cut from the start of `path`'s text in order. Up to `window`
  /// tokens this is the one window `measure` takes (`calibrationTokens`), so GPTQ and AWQ then see exactly the
  /// inputs `measure` scored; beyond it, one long sequence would weigh the BOS position (the attention sink, whose
  /// activations are largest) ever less and take positions the evaluation never reaches.
  /// - Throws: `WindowError`/`MeasureError` for an unreadable or too short text.
  public static func calibrationWindows(
    path: String, tokenizer: BPETokenizer, count: Int, window: Int = calibrationWindowLength
  ) throws -> [[Int]] {
    guard count > window else { return [try calibrationTokens(path: path, tokenizer: tokenizer, count: count)] }
    let bos = tokenizer.bosTokenId.map { [$0] } ?? []
    let perWindow = window - bos.count
    let windows = (count + window - 1) / window
    let ids = Array(
      try calibrationTokens(path: path, tokenizer: tokenizer, count: count - bos.count * windows + bos.count)
        .dropFirst(bos.count))
    return stride(from: 0, to: ids.count, by: perWindow).map { bos + ids[$0..<min($0 + perWindow, ids.count)] }
  }

  /// The calibration tokens of a run: `[BOS]` + the first `count − 1` ids of `path`'s text, as `measure` takes them.
  /// - Throws: `WindowError`/`MeasureError` for an unreadable or too short text.
  public static func calibrationTokens(path: String, tokenizer: BPETokenizer, count: Int) throws -> [Int] {
    let text = try TokenWindow.readText(path, option: "--calib")
    return try TokenWindow.make(text: text, tokenizer: tokenizer, count: count, source: "--calib '\(path)'")
  }

  /// The importance weights of a layer whose captured inputs are `X` `[rows, columns]`: `diag(XᵀX)/n` as llama-quantize
  /// reads it back from the file `bitplan export --imatrix` writes (`ImportanceQuantizer.weights`). `measure` and
  /// `validate` both take them from here, so both quantize a layer to the same codes.
  static func importance(inputs x: [Float], rows: Int, columns: Int) -> [Float] {
    ImportanceQuantizer.weights(squareMeans: GramMatrix.columnSquareMeans(inputs: x, rows: rows, columns: columns), count: rows)
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
    case .imatrix:
      if ImportanceQuantizer.supports(format), let x = inputs[name] {
        let weights = Self.importance(inputs: x.values, rows: x.rows, columns: columns)
        return (try ImportanceQuantizer.quantize(values, rows: rows, columns: columns, format: format, weights: weights), nil, .imatrix)
      }
    case .rtn:
      break
    }
    return (try Quantization.quantize(values, rows: rows, columns: columns, format: format, calibration: calibration), nil, .rtn)
  }
}
