/// Checking declared hyper-parameters against the tensors a file actually holds.
///
/// A config (HF `config.json` or GGUF `llama.*` metadata) is untrusted input like any header: a file that claims
/// 10¹² blocks must not make the loader list 10¹² × 9 tensor names, and one that claims fewer blocks than it holds
/// must not run silently with only those. So before any count sizes anything, the declared counts must match
/// the stored tensors exactly.
extension LlamaConfig {
  /// Checks the config against `tensors` (HF names, PyTorch shapes).
  ///
  /// Rules: the blocks `model.layers.N.*` present are exactly `0..<layerCount` (fewer or more declared than
  /// present is an error); `model.embed_tokens.weight` is `[vocabSize, hiddenSize]`; block 0's `q_proj` is
  /// `[headCount · headDim, hiddenSize]`, `k_proj` and `v_proj` are `[kvHeadCount · headDim, hiddenSize]`,
  /// `gate_proj` is `[intermediateSize, hiddenSize]`; every product fits in `Int`. Blocks beyond 0 are checked
  /// tensor by tensor when the engine is built.
  /// - Throws: `.badConfig` naming the count, the tensor and both shapes.
  public func check(against tensors: [TensorInfo], path: String?) throws(ModelIOError) {
    func bad(_ message: String) -> ModelIOError { ModelIOError(.badConfig, message, path: path) }
    var blocks = Set<Int>()
    var shapes: [String: [Int]] = [:]
    for t in tensors {
      shapes[t.name] = t.shape
      guard t.name.hasPrefix("model.layers.") else { continue }
      let rest = t.name.dropFirst("model.layers.".count)
      if let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]), index >= 0 { blocks.insert(index) }
    }
    let highest = blocks.max() ?? -1
    if layerCount != blocks.count || highest + 1 != blocks.count {
      let held =
        blocks.isEmpty
        ? "no block tensors" : blocks.count == highest + 1 ? "blocks 0…\(highest)" : "\(blocks.count) blocks numbered up to \(highest)"
      throw bad("the config declares \(layerCount) transformer blocks, the file holds tensors for \(held)")
    }
    func product(_ a: Int, _ b: Int, _ what: String) throws(ModelIOError) -> Int {
      let (p, overflow) = a.multipliedReportingOverflow(by: b)
      if overflow || p <= 0 { throw bad("\(what) = \(a) × \(b) is impossible") }
      return p
    }
    func expect(_ name: String, _ shape: [Int], _ what: String) throws(ModelIOError) {
      guard let stored = shapes[name] else { return }  // a missing tensor is the loader's `.missingTensor`
      if stored != shape {
        throw bad("\(what) give '\(name)' the shape \(shape), the file stores \(stored)")
      }
    }
    _ = try product(vocabSize, hiddenSize, "vocabulary × hidden size")
    try expect("model.embed_tokens.weight", [vocabSize, hiddenSize], "vocab_size \(vocabSize) and hidden size \(hiddenSize)")
    guard layerCount > 0 else { return }
    let p = "model.layers.0."
    let qRows = try product(headCount, headDim, "heads × head dimension")
    let kvRows = try product(kvHeadCount, headDim, "kv heads × head dimension")
    try expect(p + "self_attn.q_proj.weight", [qRows, hiddenSize], "\(headCount) heads of \(headDim)")
    try expect(p + "self_attn.k_proj.weight", [kvRows, hiddenSize], "\(kvHeadCount) kv heads of \(headDim)")
    try expect(p + "self_attn.v_proj.weight", [kvRows, hiddenSize], "\(kvHeadCount) kv heads of \(headDim)")
    try expect(p + "mlp.gate_proj.weight", [intermediateSize, hiddenSize], "intermediate size \(intermediateSize)")
  }
}
