import ArgumentParser
import ModelIO

/// `bitplan tiny-model DIR`: writes a small seeded llama model as an HF folder and as GGUF (test fixtures).
struct TinyModel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tiny-model",
    abstract: "Write a small seeded llama model as DIR/tiny-llama/ (HF folder) and DIR/tiny-llama.gguf.",
    shouldDisplay: false)

  @Argument(help: "Output folder.") var directory: String
  @Option(help: "Seed of the weights.") var seed: UInt64 = 1
  @Option(help: "Transformer blocks.") var layers = 2
  @Option(help: "Hidden size.") var hidden = 64
  @Option(help: "Attention heads.") var heads = 4
  @Option(help: "Key/value heads.") var kvHeads = 2
  @Option(help: "MLP width.") var intermediate = 128
  @Flag(inversion: .prefixedNo, help: "Tie the LM head to the embedding.") var tied = true

  func run() throws {
    let config = TinyLlama.configuration(
      layers: layers, hidden: hidden, heads: heads, kvHeads: kvHeads, intermediate: intermediate, tied: tied)
    try TinyLlama.writeHFFolder(directory + "/tiny-llama", config: config, seed: seed)
    try TinyLlama.writeGGUF(directory + "/tiny-llama.gguf", config: config, seed: seed)
    print("wrote \(directory)/tiny-llama/ and \(directory)/tiny-llama.gguf")
  }
}
