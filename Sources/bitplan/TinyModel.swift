import ArgumentParser
import Foundation
import ModelIO
import TensorCore

/// `bitplan tiny-model DIR`: writes a seeded llama model as an HF folder and as GGUF: small ones as test
/// fixtures, large ones (any llama shape, f16 or bf16) to try the tool at scale. The weights are made and written
/// a block of rows at a time, so memory stays small whatever the size.
struct TinyModel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tiny-model",
    abstract: "Write a seeded llama model as DIR/tiny-llama/ (HF folder) and DIR/tiny-llama.gguf.",
    shouldDisplay: false)

  @Argument(help: "Output folder (created if absent).") var directory: String
  // Not SeedOption: its default is 1 (the tiny models tests and scripts already use).
  @Option(help: "Seed of the weights.") var seed: UInt64 = 1
  @Option(parsing: .unconditional, help: "Transformer blocks (1...512).") var layers = 2
  @Option(parsing: .unconditional, help: "Hidden size (1...65536, a multiple of 2·--heads).") var hidden = 64
  @Option(parsing: .unconditional, help: "Attention heads (1...512).") var heads = 4
  @Option(parsing: .unconditional, help: "Key/value heads (divides --heads).") var kvHeads = 2
  @Option(parsing: .unconditional, help: "MLP width (1...1048576).") var intermediate = 128
  @Option(parsing: .unconditional, help: "Vocabulary size (258...1048576: byte tokens, BOS, EOS, then control tokens).")
  var vocab = 258
  @Option(help: "How the weight matrices are stored: f32, f16 or bf16 (GGUF keeps norms in f32).") var dtype = "f32"
  @Flag(inversion: .prefixedNo, help: "Tie the LM head to the embedding.") var tied = true

  var config: LlamaConfig {
    TinyLlama.configuration(
      layers: layers, hidden: hidden, heads: heads, kvHeads: kvHeads, intermediate: intermediate, tied: tied, vocab: vocab)
  }

  func validate() throws {
    guard (1...512).contains(layers) else { throw ValidationError("--layers must be in 1...512, got \(layers)") }
    guard (1...512).contains(heads) else { throw ValidationError("--heads must be in 1...512, got \(heads)") }
    guard (1...65536).contains(hidden), hidden % heads == 0, (hidden / heads) % 2 == 0 else {
      throw ValidationError("--hidden must be in 1...65536 and a multiple of 2·--heads (\(heads)), got \(hidden)")
    }
    guard kvHeads >= 1, kvHeads <= heads, heads % kvHeads == 0 else {
      throw ValidationError("--kv-heads must divide --heads (\(heads)), got \(kvHeads)")
    }
    guard (1...1_048_576).contains(intermediate) else {
      throw ValidationError("--intermediate must be in 1...1048576, got \(intermediate)")
    }
    guard (258...1_048_576).contains(vocab) else { throw ValidationError("--vocab must be in 258...1048576, got \(vocab)") }
    guard TinyLlama.StoredType(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32, f16 or bf16, got '\(dtype)'") }
  }

  func run() throws {
    let config = self.config, type = TinyLlama.StoredType(rawValue: dtype)!
    let folder = directory + "/tiny-llama"
    for path in [directory, folder] { try Self.makeFolder(path) }
    try FileChecks.check(
      inputs: [],
      outputs: [folder + "/model.safetensors", folder + "/config.json", folder + "/tokenizer.json", directory + "/tiny-llama.gguf"]
        .map { OutputPath(option: "DIR", path: $0) })
    // Both files are streamed; refuse before writing anything when the folder's file system cannot hold them.
    let needed = try TinyLlama.ggufBytes(config: config, seed: seed, type: type) + TinyLlama.safetensorsBytes(config: config, type: type)
    var fs = statvfs()
    if statvfs(directory, &fs) == 0 {
      let free = Int(fs.f_bavail) * Int(fs.f_frsize)
      guard needed <= free else {
        throw FileCheckError(
          .cannotCreate, option: "DIR", path: directory,
          "the two files need \(needed / 1_048_576) MiB and the file system has \(free / 1_048_576) MiB free")
      }
    }
    try TinyLlama.streamHFFolder(folder, config: config, seed: seed, type: type)
    try TinyLlama.streamGGUF(directory + "/tiny-llama.gguf", config: config, seed: seed, type: type)
    print("wrote \(directory)/tiny-llama/ and \(directory)/tiny-llama.gguf (\(TinyLlama.parameterCount(config)) weights, \(dtype))")
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
