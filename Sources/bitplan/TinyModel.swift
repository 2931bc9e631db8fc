import ArgumentParser
import Foundation
import ModelIO
import TensorCore

/// `bitplan tiny-model DIR`: writes a small seeded llama model as an HF folder and as GGUF (test fixtures).
struct TinyModel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tiny-model",
    abstract: "Write a small seeded llama model as DIR/tiny-llama/ (HF folder) and DIR/tiny-llama.gguf.",
    shouldDisplay: false)

  @Argument(help: "Output folder (created if absent).") var directory: String
  // Not SeedOption: its default is 1 (the tiny models tests and scripts already use).
  @Option(help: "Seed of the weights.") var seed: UInt64 = 1
  @Option(parsing: .unconditional, help: "Transformer blocks (1...16).") var layers = 2
  @Option(parsing: .unconditional, help: "Hidden size (1...1024, a multiple of --heads).") var hidden = 64
  @Option(parsing: .unconditional, help: "Attention heads (1...64).") var heads = 4
  @Option(parsing: .unconditional, help: "Key/value heads (divides --heads).") var kvHeads = 2
  @Option(parsing: .unconditional, help: "MLP width (1...4096).") var intermediate = 128
  @Flag(inversion: .prefixedNo, help: "Tie the LM head to the embedding.") var tied = true

  /// The largest model written: 16M weights (64 MB per copy in F32).
  static let maximumParameters = 16 << 20

  func validate() throws {
    guard (1...16).contains(layers) else { throw ValidationError("--layers must be in 1...16, got \(layers)") }
    guard (1...64).contains(heads) else { throw ValidationError("--heads must be in 1...64, got \(heads)") }
    guard (1...1024).contains(hidden), hidden % heads == 0 else {
      throw ValidationError("--hidden must be in 1...1024 and a multiple of --heads (\(heads)), got \(hidden)")
    }
    guard kvHeads >= 1, kvHeads <= heads, heads % kvHeads == 0 else {
      throw ValidationError("--kv-heads must divide --heads (\(heads)), got \(kvHeads)")
    }
    guard (1...4096).contains(intermediate) else {
      throw ValidationError("--intermediate must be in 1...4096, got \(intermediate)")
    }
    let config = TinyLlama.configuration(
      layers: layers, hidden: hidden, heads: heads, kvHeads: kvHeads, intermediate: intermediate, tied: tied)
    let count = TinyLlama.parameterCount(config)
    guard count <= Self.maximumParameters else {
      throw ValidationError("these sizes give \(count) weights; a tiny model has at most \(Self.maximumParameters)")
    }
  }

  func run() throws {
    let config = TinyLlama.configuration(
      layers: layers, hidden: hidden, heads: heads, kvHeads: kvHeads, intermediate: intermediate, tied: tied)
    let folder = directory + "/tiny-llama"
    for path in [directory, folder] { try Self.makeFolder(path) }
    try FileChecks.check(
      inputs: [],
      outputs: [folder + "/model.safetensors", folder + "/config.json", folder + "/tokenizer.json", directory + "/tiny-llama.gguf"]
        .map { OutputPath(option: "DIR", path: $0) })
    try TinyLlama.writeHFFolder(folder, config: config, seed: seed)
    try TinyLlama.writeGGUF(directory + "/tiny-llama.gguf", config: config, seed: seed)
    print("wrote \(directory)/tiny-llama/ and \(directory)/tiny-llama.gguf")
  }

  /// Creates `path` as a folder unless it is one; anything else there is refused.
  static func makeFolder(_ path: String) throws {
    guard !path.isEmpty else { throw FileCheckError(.cannotCreate, option: "DIR", path: path, "is empty") }
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
      guard isFolder.boolValue else {
        throw FileCheckError(.cannotCreate, option: "DIR", path: path, "exists and is not a folder")
      }
      return
    }
    // mkdir -p with POSIX calls, so the reason is strerror's, not a Foundation error domain.
    var partial = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
      partial += "/" + component
      if mkdir(partial, 0o755) != 0 && errno != EEXIST {
        throw FileCheckError(
          .cannotCreate, option: "DIR", path: path,
          "cannot create the folder '\(partial)': \(String(cString: strerror(errno)))")
      }
    }
  }
}
