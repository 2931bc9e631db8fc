#if canImport(TensorCore)
  import TensorCore
#endif
import Foundation

/// Writing tiny llama models to disk: the same model as an HF folder and as a GGUF file, each with its tokenizer.
extension TinyLlama {
  /// Writes `folder/config.json`, `folder/model.safetensors` (F32) and `folder/tokenizer.json`.
  /// The folder is created if needed; each file is written atomically.
  public static func writeHFFolder(_ folder: String, config: LlamaConfig, seed: UInt64) throws(ModelIOError) {
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      throw ModelIOError(.io, "cannot create the folder: \(error.localizedDescription)", path: folder)
    }
    let items = tensors(config: config, seed: seed).map { (name: $0.name, shape: $0.shape, values: $0.values) }
    try SafetensorsWriter.write(items, metadata: ["format": "pt"], to: folder + "/model.safetensors")
    try SafetensorsWriter.writeAtomically(Array(hfConfigJSON(config).utf8), to: folder + "/config.json")
    try SafetensorsWriter.writeAtomically(Array(tokenizerJSON(vocabSize: config.vocabSize).utf8), to: folder + "/tokenizer.json")
  }

  /// Writes the same model as a GGUF v3 file (F32, q/k rows permuted as llama.cpp's converter does), with its
  /// byte-level tokenizer in `tokenizer.ggml.*`.
  public static func writeGGUF(_ path: String, config: LlamaConfig, seed: UInt64) throws(ModelIOError) {
    var writer = try ggufWriter(config: config, seed: seed)
    var named: [String: Tensor] = [:]
    for t in tensors(config: config, seed: seed) { named[t.name] = Tensor(shape: t.shape, storage: t.values) }
    try writer.addLlamaTensors(named, config: config)
    try writer.write(to: path)
  }

  /// A GGUF writer holding the model's metadata and tokenizer (no tensors yet).
  static func ggufWriter(config: LlamaConfig, seed: UInt64) throws(ModelIOError) -> GGUFWriter {
    var writer = GGUFWriter()
    try writer.add("general.name", .string("tiny-llama-seed\(seed)"))
    try writer.addLlamaMetadata(config)
    let vocab = vocabulary(count: config.vocabSize)
    try writer.add("tokenizer.ggml.model", .string("gpt2"))
    try writer.add("tokenizer.ggml.pre", .string("gpt-2"))
    try writer.add("tokenizer.ggml.tokens", .array(.string, vocab.map { .string($0) }))
    try writer.add("tokenizer.ggml.merges", .array(.string, []))
    try writer.add(
      "tokenizer.ggml.token_type", .array(.int32, vocab.indices.map { .int32($0 < 256 ? 1 : 3) }))  // normal, control
    try writer.add("tokenizer.ggml.add_bos_token", .bool(true))
    return writer
  }

  /// HF `config.json` for `config` (classic llama keys, `rope_theta` at the top level).
  public static func hfConfigJSON(_ c: LlamaConfig) -> String {
    var lines = [
      "\"architectures\": [\"LlamaForCausalLM\"]", "\"model_type\": \"llama\"", "\"hidden_size\": \(c.hiddenSize)",
      "\"intermediate_size\": \(c.intermediateSize)", "\"num_hidden_layers\": \(c.layerCount)",
      "\"num_attention_heads\": \(c.headCount)", "\"num_key_value_heads\": \(c.kvHeadCount)",
      "\"head_dim\": \(c.headDim)", "\"vocab_size\": \(c.vocabSize)", "\"rms_norm_eps\": \(c.rmsNormEpsilon)",
      "\"rope_theta\": \(c.ropeTheta)", "\"tie_word_embeddings\": \(c.tieWordEmbeddings)",
      "\"max_position_embeddings\": \(c.maxPositionEmbeddings)", "\"hidden_act\": \"silu\"",
      "\"attention_bias\": false", "\"mlp_bias\": false", "\"torch_dtype\": \"float32\"",
    ]
    if let bos = c.bosTokenId { lines.append("\"bos_token_id\": \(bos)") }
    if let eos = c.eosTokenId { lines.append("\"eos_token_id\": \(eos)") }
    return "{\n  " + lines.joined(separator: ",\n  ") + "\n}\n"
  }

  /// A `tokenizer.json` for the byte-level vocabulary: BPE with no merges, GPT-2 byte-level pre-tokenizer.
  public static func tokenizerJSON(vocabSize: Int = 258) -> String {
    let vocab = vocabulary(count: vocabSize)
    func quoted(_ s: String) -> String {
      var out = "\""
      for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default:
          if u.value < 0x20 || u.value > 0x7E { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
      }
      return out + "\""
    }
    let entries = vocab.enumerated().map { "\(quoted($0.element)): \($0.offset)" }.joined(separator: ", ")
    let added = (256..<vocab.count).map {
      "{\"id\": \($0), \"content\": \(quoted(vocab[$0])), \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
    }.joined(separator: ", ")
    return """
      {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [\(added)], "normalizer": null,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
      "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
      "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {\(entries)}, "merges": []}}

      """
  }
}
