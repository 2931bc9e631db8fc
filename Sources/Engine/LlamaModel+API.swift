/// Public entry points: loss, logits, gradients and input capture for one window of tokens.
///
/// The forward entry points (`meanNLL`, `tokenNLL`, `logits`, `captureInputs`) run through any installed operators
/// (`LlamaModel+Operators.swift`); the ones that need the backward pass throw `.forwardOnly` while any is installed.
/// Every entry point throws `.weightReleased` if a released weight has no operator in its place.
///
/// Each carries `@specialized(where Scalar == Float)` and `(… == Double)` so callers in other modules get the
/// specialized code (generic dispatch in the element-wise loops would be ~150x slower).
extension LlamaModel {
  /// Mean next-token NLL of a window: (1/(T−1)) Σ_{t=1}^{T−1} −log p(tokens[t] | tokens[..<t]).
  /// The window is scored as given; put BOS first if the protocol wants it. PPL = exp(meanNLL).
  /// - Throws: `EngineError.badTokens` for fewer than 2 tokens or an id outside the vocabulary.
  /// - Complexity: one forward pass, ~2·P·T flops (137 GFLOP for SmolLM2 at T = 512).
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func meanNLL(tokens: [Int]) throws(EngineError) -> Double {
    try validate(tokens: tokens)
    return runForward(tokens: tokens, keepActivations: false, probabilities: false).meanNLL
  }

  /// Per-position NLL: element t − 1 is −log p(tokens[t] | tokens[..<t]), t = 1..<T.
  /// - Throws: `EngineError.badTokens`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func tokenNLL(tokens: [Int]) throws(EngineError) -> [Double] {
    try validate(tokens: tokens)
    return runForward(tokens: tokens, keepActivations: false, probabilities: false).nll
  }

  /// Logits [T−1, V] of the next-token predictions (row t − 1 predicts tokens[t]), before softmax; for KL divergence
  /// between a reference and a quantized model.
  /// - Throws: `EngineError.badTokens`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func logits(tokens: [Int]) throws(EngineError) -> Matrix<Scalar> {
    try validate(tokens: tokens)
    let (rows, vocab) = (tokens.count - 1, configuration.vocab)
    var result: [Scalar] = []
    _ = runForward(tokens: tokens, keepActivations: false, logitsObserver: { z in
      result = Array(UnsafeBufferPointer(start: z, count: rows * vocab))
    }, probabilities: false)
    return Matrix(rows: rows, columns: vocab, storage: result)
  }

  /// The mean NLL and its gradient with respect to the named tensors.
  /// - Parameters:
  ///   - names: tensor names (`….q_proj.weight`, norms, `model.embed_tokens.weight`). Weight-gradient GEMMs of
  ///     tensors not named are skipped; activation gradients always flow. For a tied model the embedding's
  ///     gradient includes the LM head's.
  /// - Returns: the loss and one array per name, same layout as the weight.
  /// - Throws: `EngineError.badTokens`, or `.unknownTensor` for a name the model does not have; `.forwardOnly`
  ///   while operators are installed; `.weightReleased` if a released weight has no operator in its place.
  /// - Complexity: forward + backward, ~6·P·T flops when every weight is named (~4·P·T + 2·V·d·T without the
  ///   embedding).
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func gradients(tokens: [Int], of names: Set<String>) throws(EngineError) -> (loss: Double, gradients: [String: [Scalar]]) {
    try requireBackward("gradients(tokens:of:)")
    try validate(tokens: tokens)
    try validate(names: names)
    let cache = runForward(tokens: tokens, keepActivations: true)
    let sink = GradientSink<Scalar>(wanted: names)
    runBackward(cache: cache, sink: sink)
    return (cache.meanNLL, sink.gradients)
  }

  /// ∂L/∂x₀ [T, d]: the gradient of the mean NLL with respect to the embedded tokens (the residual stream's input),
  /// plus the loss. The activation gradient every parameter gradient flows through.
  /// - Throws: `EngineError.badTokens`; `.forwardOnly` while operators are installed.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func embeddedInputGradient(tokens: [Int]) throws(EngineError) -> (loss: Double, gradient: Matrix<Scalar>) {
    try requireBackward("embeddedInputGradient(tokens:)")
    try validate(tokens: tokens)
    let cache = runForward(tokens: tokens, keepActivations: true)
    let dx = runBackward(cache: cache, sink: GradientSink(wanted: []))
    return (cache.meanNLL, Matrix(rows: tokens.count, columns: configuration.hidden, storage: dx.array))
  }

  /// Runs the window forward and hands each linear layer's input activations X [T, in] to `body` as the pass
  /// reaches it (for XᵀX statistics and GPTQ). q/k/v share one input, as do gate/up; each is reported per layer.
  /// - Parameters:
  ///   - layers: module paths to capture (`model.layers.0.self_attn.q_proj`, or `lm_head`); nil captures all
  ///     7·layers (not the LM head).
  ///   - body: receives the layer and a copy of its inputs. The LM head (`lmHeadLayer`) receives the final-norm
  ///     hidden states of all T positions, [T, hidden] (the last one predicts nothing, but it is the input the
  ///     head would see there; linear layers are captured at all T positions too).
  /// - Returns: the mean NLL of the window.
  /// - Throws: `EngineError.badTokens`, or `.unknownTensor` for an unknown layer name.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func captureInputs(
    tokens: [Int], layers: Set<String>? = nil, _ body: (LinearLayer, Matrix<Scalar>) -> Void
  ) throws(EngineError) -> Double {
    try validate(tokens: tokens)
    let head = lmHeadLayer
    if let layers, let bad = layers.first(where: { name in name != head.name && !linearLayers.contains { $0.name == name } }) {
      throw EngineError(.unknownTensor, "no linear layer '\(bad)' (expected a module path like model.layers.0.mlp.up_proj, or lm_head)")
    }
    // the observer is stored as an optional (escaping) closure but only called during this forward pass
    return withoutActuallyEscaping(body) { body in
      runForward(tokens: tokens, keepActivations: false, observer: { index, x, rows, columns in
        let layer = index == self.linearLayers.count ? head : self.linearLayers[index]
        guard layers?.contains(layer.name) ?? (index < self.linearLayers.count) else { return }
        let values = Array(UnsafeBufferPointer(start: x, count: rows * columns))
        body(layer, Matrix(rows: rows, columns: columns, storage: values))
      }, probabilities: false).meanNLL
    }
  }

  /// The LM head as a layer: `lm_head` (`lmHeadSlot`), `[vocab, hidden]`, block index `layers` (after the last
  /// block). Its `weightName` is `lm_head.weight`; for a tied model the table is `model.embed_tokens.weight`.
  public var lmHeadLayer: LinearLayer {
    LinearLayer(
      name: Self.lmHeadSlot, block: configuration.layers, outFeatures: configuration.vocab,
      inFeatures: configuration.hidden)
  }

  /// The token embedding as a layer: `model.embed_tokens`, `[vocab, hidden]` (one row per token), block index −1
  /// (before the first block); its `weightName` is `model.embed_tokens.weight`. For a tied model the same table is
  /// the LM head.
  public var embeddingLayer: LinearLayer {
    LinearLayer(name: Self.embeddingSlot, block: -1, outFeatures: configuration.vocab, inFeatures: configuration.hidden)
  }

  /// Every weight matrix a plan may quantize, in forward order: the token embedding, the linear layers, and for an
  /// untied model the LM head (`lm_head`; a tied model's head is the embedding).
  public var plannableLayers: [LinearLayer] { Self.plannableLayers(of: configuration) }

  /// `plannableLayers` of a model of this configuration, before any model is built (e.g. to read a plan first and
  /// defer the weights it replaces: `init(configuration:weights:deferred:)`).
  public static func plannableLayers(of configuration: Configuration) -> [LinearLayer] {
    let (vocab, hidden) = (configuration.vocab, configuration.hidden)
    var layers = [LinearLayer(name: embeddingSlot, block: -1, outFeatures: vocab, inFeatures: hidden)]
    for l in 0..<configuration.layers {
      for (suffix, shape) in configuration.linearShapes {
        layers.append(LinearLayer(name: "model.layers.\(l).\(suffix)", block: l, outFeatures: shape[0], inFeatures: shape[1]))
      }
    }
    if !configuration.tied {
      layers.append(LinearLayer(name: lmHeadSlot, block: configuration.layers, outFeatures: vocab, inFeatures: hidden))
    }
    return layers
  }

  /// Checks that every name is a tensor of the model.
  func validate(names: Set<String>) throws(EngineError) {
    if let bad = names.first(where: { tensors[$0] == nil && !($0 == "lm_head.weight" && configuration.tied) }) {
      throw EngineError(.unknownTensor, "no tensor '\(bad)' in this model")
    }
    if configuration.tied && names.contains("lm_head.weight") {
      throw EngineError(.unknownTensor, "'lm_head.weight' is tied to 'model.embed_tokens.weight'; ask for that name")
    }
  }
}
