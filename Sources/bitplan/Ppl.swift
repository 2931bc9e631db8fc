import ArgumentParser
import Foundation
import Pipeline
import TensorCore

/// `bitplan ppl MODEL --text FILE [--tokens N]`: mean NLL and perplexity of one window.
struct Ppl: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Perplexity of the model on [BOS] + the first N−1 tokens of a text (one forward pass).")

  @Argument(help: "A .gguf file, or a Hugging Face folder.") var model: String
  @Option(help: "UTF-8 text file.") var text: String
  @Option(parsing: .unconditional, help: "Window length in tokens, BOS included (at most the model's context length).")
  var tokens = 512
  @Flag(help: "Machine-readable output on stdout.") var json = false

  func validate() throws {
    guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2, got \(tokens)") }
  }

  func run() throws {
    HeapPolicy.keepLargeArraysInHeap()
    let start = Date()
    try FileChecks.check(
      inputs: [InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "--text", path: self.text)],
      outputs: [])
    try Preflight.check(model: model, tokens: tokens, workload: .perplexity, texts: [self.text])
    let text = try TokenWindow.readText(self.text, option: "--text")
    let loaded = try LoadedModel.load(path: model)
    let window = try TokenWindow.make(
      text: text, tokenizer: loaded.tokenizer, count: tokens, source: "--text '\(self.text)'")
    let nll = try loaded.model.meanNLL(tokens: window)
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
