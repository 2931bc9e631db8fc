import ArgumentParser
import Engine
import Foundation
import ModelIO
import Pipeline
import Quantization
import TensorCore
import Validation

/// `bitplan ppl MODEL --text FILE [--tokens N]`: mean NLL and perplexity of one window.
struct Ppl: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Perplexity of the model (or of a plan run packed) on [BOS] + the first N−1 tokens of a text (one forward pass).")

  @OptionGroup var modelArgument: ModelArgument
  var model: String { modelArgument.model }
  @Option(help: ArgumentHelp("UTF-8 text to score.", valueName: "file")) var text: String
  @Option(parsing: .unconditional, help: "Window length in tokens, BOS included (at most the model's context length).")
  var tokens = 512
  @Option(help: ArgumentHelp("Run this plan's layers packed (quantized from the model file, as validate does).", valueName: "PLAN.json")) var plan: String?
  @OptionGroup var activationsOption: ActivationsOption
  var activations: String { activationsOption.activations }
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  func validate() throws {
    guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2, got \(tokens)") }
    guard ActivationMode(rawValue: activations) != nil else { throw ValidationError("--activations must be int8 or f32, got '\(activations)'") }
  }

  func run() throws {
    if plan == nil { HeapPolicy.keepLargeArraysInHeap() }  // a plan's packed layers free their dense weights
    let start = Date()
    var inputs = [InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "--text", path: self.text)]
    if let plan { inputs.append(InputPath(option: "--plan", path: plan)) }
    try FileChecks.check(inputs: inputs, outputs: [])
    try Preflight.check(model: model, tokens: tokens, workload: .perplexity, texts: [self.text])
    let text = try TokenWindow.readText(self.text, option: "--text")
    // With a plan, the planned layers are never expanded to Float: the plan is read against the model's
    // configuration first, and those layers are installed packed from the file's values.
    // Without a plan, a model whose Float weights would take more than an eighth of the memory is read from its file a
    // weight at a time (`Preflight.streamsWeights`; same numbers).
    var formats: [String: QuantFormat] = [:]
    let streaming = plan == nil ? try Preflight.streamsWeights(model: model) : false
    let loaded = try LoadedModel.load(path: model, deferring: { configuration in
      guard let plan else { return [] }
      let document = try PlanFile.read(plan, option: "--plan")
      formats = try PlanFile.formats(
        of: document, path: plan, modelSHA256: try Measurement.modelSHA256(path: model),
        layers: LlamaModel<Float>.plannableLayers(of: configuration))
      return Set(formats.keys)
    }, streaming: streaming)
    if plan != nil {
      try PackedModel(loaded, activations: ActivationMode(rawValue: activations)!).install(formats)
    }
    let window = try TokenWindow.make(
      text: text, tokenizer: loaded.tokenizer, count: tokens, source: "--text '\(self.text)'")
    let nll = try loaded.model.meanNLL(tokens: window)
    guard nll.isFinite else {
      // a perplexity of NaN or infinity is no answer: the weights (or a plan's packed ones) hold NaN or ±∞
      throw ModelIOError(
        .badValue, "the forward pass gave a mean NLL of \(nll): the weights\(plan == nil ? "" : " or the plan's packed layers") "
          + "hold NaN or infinite values", path: model)
    }
    let seconds = Date().timeIntervalSince(start)
    if json {
      try printJSON(PplReport(model: model, text: self.text, tokens: window.count, meanNLL: nll, perplexity: exp(nll), elapsedSeconds: seconds))
    } else {
      print("tokens \(window.count) (BOS + \(window.count - 1))   mean NLL \(String(format: "%.4f", nll))   PPL \(String(format: "%.3f", exp(nll)))   (\(String(format: "%.1f", seconds)) s)")
    }
  }
}

struct PplReport: Codable {
  var model: String
  var text: String
  var tokens: Int
  var meanNLL: Double
  var perplexity: Double
  var elapsedSeconds: Double
}
