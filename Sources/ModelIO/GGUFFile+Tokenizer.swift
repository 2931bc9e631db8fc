/// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata.
extension GGUFFile {
  /// Builds the byte-level BPE tokenizer from `tokenizer.ggml.model` (must be `gpt2`), `.tokens`, `.merges`,
  /// `.token_type`, `.pre`, `.bos_token_id`, `.eos_token_id` and `.add_bos_token` (default true when a BOS id is
  /// given, as llama.cpp does for BPE vocabularies).
  /// - Throws: `.badTokenizer` when the tokens are missing, `.unsupported` for another tokenizer model or an
  ///   unknown pre-tokenizer, with this file's path.
  public func tokenizer() throws(ModelIOError) -> BPETokenizer {
    do throws(ModelIOError) {
      guard let model = try string("tokenizer.ggml.model") else {
        throw ModelIOError(.badTokenizer, "no tokenizer.ggml.model key: the file carries no tokenizer")
      }
      try BPETokenizer.checkGGUFModel(model)
      guard let tokens = try stringArray("tokenizer.ggml.tokens") else {
        throw ModelIOError(.badTokenizer, "no tokenizer.ggml.tokens")
      }
      let merges = try stringArray("tokenizer.ggml.merges") ?? []
      let types = try intArray("tokenizer.ggml.token_type").map { $0.map { Int32(truncatingIfNeeded: $0) } }
      guard let pre = try string("tokenizer.ggml.pre") else {
        throw ModelIOError(.unsupported, "no tokenizer.ggml.pre: the pre-tokenizer is unknown")
      }
      let bos = try int("tokenizer.ggml.bos_token_id")
      let eos = try int("tokenizer.ggml.eos_token_id")
      let addBOS = try bool("tokenizer.ggml.add_bos_token") ?? (bos != nil)
      return try BPETokenizer(
        tokens: tokens, merges: merges, tokenTypes: types, pre: pre, bosTokenId: bos, eosTokenId: eos, addBOS: addBOS)
    } catch {
      throw path.map { error.at($0) } ?? error
    }
  }
}
