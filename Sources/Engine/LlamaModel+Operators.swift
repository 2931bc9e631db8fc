/// The operator seam: forward-only replacements for the linear layers, the LM head and the embedding lookup.
///
/// Slots: one per linear layer (`linearLayers`, by module path), one for the LM head (`lm_head`, for a tied model
/// only the output projection), one embedding source. The forward pass reads one array element per linear layer
/// and calls the operator instead of the GEMM when there is one; with no operators installed it does exactly what
/// it did before the seam existed. The backward pass has no way through an operator, so while anything is
/// installed every entry point that needs it throws `EngineError.forwardOnly` rather than silently using the dense
/// weights. Operators are Float-only: the install methods exist for `LlamaModel<Float>`.
///
/// A third kind of slot would be added the same way: a stored optional beside `linearOperators`, a branch at its
/// one call site in `runForward`, and a clause in `coverage` and `seamDescription`.
extension LlamaModel {
  /// Number of installed linear operators, the LM head's included (the embedding source is not counted).
  public var installedOperatorCount: Int {
    linearOperators.reduce(0) { $0 + ($1 == nil ? 0 : 1) } + (lmHeadOperator == nil ? 0 : 1)
  }

  /// Whether an embedding source replaces the dense embedding lookup.
  public var hasEmbeddingSource: Bool { embeddingSource != nil }

  /// Module paths of the layers that run through an installed operator, in forward order (`lm_head` last).
  public var operatorLayers: [String] {
    var names = zip(linearLayers, linearOperators).compactMap { $1 == nil ? nil : $0.name }
    if lmHeadOperator != nil { names.append(Self.lmHeadSlot) }
    return names
  }

  /// Tensor names whose dense values were released for an operator (`installOperator(…releaseDenseWeight: true)`).
  public var releasedWeightNames: [String] { releasedTensors }

  /// Removes every operator and the embedding source. Layers whose dense weights were kept run densely again, as
  /// before installation; a pass that needs a released weight then throws `EngineError.weightReleased` (the model
  /// cannot get those values back: load it again).
  public func removeOperators() {
    for i in linearOperators.indices { linearOperators[i] = nil }
    lmHeadOperator = nil
    embeddingSource = nil
    updateCoverage()
  }

  /// The name of the LM head's slot in `installOperator(_:forLayer:releaseDenseWeight:)`.
  public static var lmHeadSlot: String { "lm_head" }

  /// The plan name of the token embedding (`embeddingLayer`; GGUF `token_embd.weight`).
  public static var embeddingSlot: String { "model.embed_tokens" }

  /// Throws `.forwardOnly` when anything is installed: the caller needs the backward pass.
  func requireBackward(_ what: String) throws(EngineError) {
    guard installedOperatorCount > 0 || embeddingSource != nil else { return }
    throw EngineError(
      .forwardOnly, "\(what) needs the backward pass, but \(seamDescription) installed (forward only); "
        + "call removeOperators() first")
  }

  /// "3 linear operators and an embedding source are" (for messages).
  var seamDescription: String {
    let n = installedOperatorCount
    var parts: [String] = []
    if n > 0 { parts.append("\(n) linear operator" + (n == 1 ? "" : "s")) }
    if embeddingSource != nil { parts.append("an embedding source") }
    return parts.joined(separator: " and ") + (n + (embeddingSource == nil ? 0 : 1) == 1 ? " is" : " are")
  }

  /// Throws `.weightReleased` for a buffer whose values were released.
  func requireDense(_ buffer: Buffer<Scalar>, _ name: String) throws(EngineError) {
    guard buffer.isReleased else { return }
    throw EngineError(
      .weightReleased, "the dense values of '\(name)' were released when an operator replaced it; load the model again")
  }

  /// The error for a pass that would read a released tensor.
  func uncoveredError() -> EngineError {
    EngineError(
      .weightReleased, "the dense values of \(uncoveredTensors.map { "'\($0)'" }.joined(separator: ", ")) were "
        + "released and no operator is installed in their place; install one or load the model again")
  }

  /// Recomputes `uncoveredTensors` after the seam changed.
  func updateCoverage() {
    uncoveredTensors = releasedTensors.filter { !isCovered($0) }
  }

  /// Whether every reader of `tensor` goes through an installed operator or source.
  func isCovered(_ tensor: String) -> Bool {
    switch tensor {
    case "model.embed_tokens.weight":
      return embeddingSource != nil && (!configuration.tied || lmHeadOperator != nil)
    case "lm_head.weight":
      return lmHeadOperator != nil
    default:
      guard let i = linearLayers.firstIndex(where: { $0.weightName == tensor }) else { return false }
      return linearOperators[i] != nil
    }
  }

  /// Marks `tensor` released and frees its buffer (shared by every reader, so once is everywhere).
  func release(_ tensor: String) {
    guard let buffer = tensors[tensor], !buffer.isReleased else { return }
    buffer.release()
    streamed.drop(tensor)
    releasedTensors.append(tensor)
    squaredNorms[tensor] = nil
    perturbedWeights = PerturbedWeights()
  }

  /// A Float pointer to a `Scalar` buffer. Only called where an operator or source is installed, which the install
  /// methods allow only for `Scalar == Float`.
  @inline(__always)
  static func floats(_ p: UnsafePointer<Scalar>) -> UnsafePointer<Float> {
    assert(Scalar.self == Float.self, "operators are Float-only")
    return UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
  }

  @inline(__always)
  static func floats(_ p: UnsafeMutablePointer<Scalar>) -> UnsafeMutablePointer<Float> {
    assert(Scalar.self == Float.self, "operators are Float-only")
    return UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
  }
}

extension LlamaModel where Scalar == Float {
  /// Installs a forward-only operator in place of one linear layer's dense GEMM (or replaces the one installed).
  ///
  /// The forward entry points (`meanNLL`, `tokenNLL`, `logits`, `captureInputs`) then call `op.apply` for that
  /// layer, with `accumulate: true` for `o_proj` and `down_proj` (their output is added into the residual stream);
  /// gradients and Hessian-vector products throw `.forwardOnly` until `removeOperators()`.
  /// - Parameters:
  ///   - op: Y (+)= X · Wᵀ with W of the layer's shape `[out, in]`.
  ///   - name: a module path of `linearLayers` (`model.layers.0.self_attn.q_proj`), or `lm_head` (`lmHeadSlot`)
  ///     for the output projection `[vocab, hidden]`: for a tied model only the projection, the embedding lookup
  ///     keeps reading the table unless an embedding source is installed.
  ///   - releaseDenseWeight: free the layer's dense Float values now (memory ≈ the operator's own). They cannot be
  ///     read, replaced or run again (`.weightReleased`). For a tied model the LM head's table is the embedding
  ///     table, so releasing it needs an embedding source installed first.
  /// - Throws: `EngineError.unknownTensor` for a name that is no slot, `.shapeMismatch` when the operator's
  ///   `[outFeatures, inFeatures]` differs from the layer's, `.weightReleased` for a tied release without an
  ///   embedding source.
  public func installOperator(
    _ op: any LinearOperator, forLayer name: String, releaseDenseWeight: Bool = false
  ) throws(EngineError) {
    let (shape, index) = try slot(name)
    guard op.outFeatures == shape.out, op.inFeatures == shape.in else {
      throw EngineError(
        .shapeMismatch, "operator for '\(name)' is [\(op.outFeatures), \(op.inFeatures)], the layer is [\(shape.out), \(shape.in)]")
    }
    let tensor = index.map { linearLayers[$0].weightName } ?? (configuration.tied ? "model.embed_tokens.weight" : "lm_head.weight")
    if releaseDenseWeight && index == nil && configuration.tied && embeddingSource == nil {
      throw EngineError(
        .weightReleased, "lm_head is tied to 'model.embed_tokens.weight', which the embedding lookup still reads; "
          + "install an embedding source before releasing it")
    }
    if let index { linearOperators[index] = op } else { lmHeadOperator = op }
    if releaseDenseWeight { release(tensor) }
    updateCoverage()
  }

  /// Installs a source of token-embedding rows in place of the dense lookup (or replaces the one installed).
  /// - Parameters:
  ///   - releaseDenseWeight: free the dense embedding table. For a tied model the table is also the LM head, so
  ///     an `lm_head` operator must be installed first.
  /// - Throws: `EngineError.shapeMismatch` when `source.dimension` is not the hidden size, `.weightReleased` for a
  ///   tied release without an LM head operator.
  public func installEmbedding(_ source: any EmbeddingSource, releaseDenseWeight: Bool = false) throws(EngineError) {
    guard source.dimension == configuration.hidden else {
      throw EngineError(
        .shapeMismatch, "embedding source rows have \(source.dimension) values, the model's hidden size is \(configuration.hidden)")
    }
    if releaseDenseWeight && configuration.tied && lmHeadOperator == nil {
      throw EngineError(
        .weightReleased, "'model.embed_tokens.weight' is tied to the LM head, which still reads it; "
          + "install an lm_head operator before releasing it")
    }
    embeddingSource = source
    if releaseDenseWeight { release("model.embed_tokens.weight") }
    updateCoverage()
  }

  /// The shape `[out, in]` of a slot and its index into `linearLayers` (nil for the LM head).
  private func slot(_ name: String) throws(EngineError) -> (shape: (out: Int, in: Int), index: Int?) {
    if name == Self.lmHeadSlot { return ((configuration.vocab, configuration.hidden), nil) }
    guard let i = linearLayers.firstIndex(where: { $0.name == name }) else {
      throw EngineError(
        .unknownTensor, "no linear layer '\(name)' (expected a module path like model.layers.0.self_attn.q_proj, or lm_head)")
    }
    return ((linearLayers[i].outFeatures, linearLayers[i].inFeatures), i)
  }
}
