/// A llama-family decoder held in memory for measurement: forward pass, hand-written backward pass and
/// Hessian-vector products of the mean next-token NLL, in `Float` (real models) or `Double` (checks).
///
/// Architecture (HF `LlamaForCausalLM`): token embedding → `layers` × [RMSNorm → GQA causal attention with
/// rotate-half RoPE → residual → RMSNorm → SwiGLU MLP → residual] → RMSNorm → LM head (tied or untied).
/// Float matrix products run on CKernels' packed kernel where the CPU has one: the forward's linear layers on
/// weights packed once, the LM head and perturbed passes a panel at a time, and the gradients of windows up to 256
/// tokens (`LlamaModel+PackedWeights.swift`, `EngineScalar`); the rest goes through OpenBLAS (`EngineScalar.gemm`).
///
/// Names: tensors by HF name (`model.layers.0.self_attn.q_proj.weight`), layers by module path
/// (`model.layers.0.self_attn.q_proj`); see `LinearLayer`.
///
/// Not thread-safe: one pass at a time per instance (passes share the activation workspace).
///
/// Memory: the weights are copied once into the model (540 MB for SmolLM2 in Float); callers may drop their
/// copy. A Float model adds a packed copy of its block matrices on its first forward (405 MiB for SmolLM2). No
/// pass copies a weight; the forward pass keeps one set of activations per window (see `ForwardCache`).
public final class LlamaModel<Scalar: EngineScalar> {
  public typealias Configuration = LlamaConfiguration
  public typealias Weights = [String: WeightTensor<Scalar>]

  /// Hyper-parameters.
  public let configuration: Configuration
  /// The 7 · `layers` linear layers, block by block in forward order (q, k, v, o, gate, up, down).
  public let linearLayers: [LinearLayer]

  /// Every tensor by HF name (for a tied model the LM head is the embedding buffer).
  let tensors: [String: Buffer<Scalar>]
  let blocks: [Block<Scalar>]
  let embedding: Buffer<Scalar>
  let finalNorm: Buffer<Scalar>
  let lmHead: Buffer<Scalar>
  /// Activation buffers of the last window, reused by the next pass of the same length and kind so that repeated
  /// passes (Hutchinson probes, gradient steps) do not page-fault hundreds of MB of fresh memory each time.
  var workspace: [ForwardCache<Scalar>] = []
  /// W + εV for the weights HVPs perturb, reused from product to product.
  var perturbedWeights = PerturbedWeights<Scalar>()
  /// ‖W‖² per tensor for the HVP step, computed on first use and dropped by `replaceWeight`.
  var squaredNorms: [String: Double] = [:]
  /// Whether the Float forward packs each resident linear weight once for TensorCore's packed GEMM
  /// (`LlamaModel+PackedWeights.swift`; one more copy of those weights, 405 MiB for SmolLM2). Turning it off drops
  /// the packed copies; the forward then runs every product through OpenBLAS (other last bits).
  public var packsWeights = true {
    didSet { if !packsWeights { dropPackedWeights() } }
  }
  /// Forward-only operators by index into `linearLayers` (nil: the dense weight); see `LlamaModel+Operators.swift`.
  /// Only ever non-nil when `Scalar == Float`.
  var linearOperators: [(any LinearOperator)?]
  /// The LM head's operator (for a tied model it replaces only the output projection).
  var lmHeadOperator: (any LinearOperator)?
  /// Where the forward pass reads token-embedding rows, instead of `embedding`.
  var embeddingSource: (any EmbeddingSource)?
  /// Tensors whose dense values were released, in release order.
  var releasedTensors: [String] = []
  /// About how many values of the embedding table a streamed Hessian-vector product forms at a time (its chunks of
  /// E + εV and of the gradient's projection; `tableChunkRows`). 2²² (16 MB in Float) unless a test lowers it to
  /// reach several chunks on a small model.
  public var tableChunkElements = 1 << 22
  /// Readers and expansion buffers of the weights streamed from their files (`LlamaModel+Streaming.swift`).
  let streamed = StreamedWeights<Scalar>()
  /// The released tensors that no installed operator or source covers: a pass that reaches them throws
  /// `.weightReleased`. Recomputed when the seam changes, so the entry points check one array.
  var uncoveredTensors: [String] = []

  /// Validates and copies `weights`.
  /// - Parameters:
  ///   - configuration: sizes; checked with `Configuration.validate()`.
  ///   - weights: at least every tensor in `configuration.expectedTensors`, with exactly that shape. Other names
  ///     (e.g. `rotary_emb.inv_freq`) are ignored.
  ///   - deferred: weight matrices (linear weights, `model.embed_tokens.weight`, `lm_head.weight`) that are not
  ///     given and start released, as if an operator had replaced them: the caller installs their operators
  ///     (`installOperator`, `installEmbedding`) before running, so a packed model never holds their Float values.
  ///     Until then a pass throws `.weightReleased`, and gradients and HVPs stay unavailable.
  ///   - streamed: weight matrices not given either, read by their `WeightReader` whenever a pass reaches them
  ///     (`LlamaModel+Streaming.swift`): the model never holds more than one of them at a time besides the
  ///     embedding and an untied LM head.
  /// - Throws: `EngineError` `.badConfiguration`, `.missingTensor` or `.shapeMismatch` naming the tensor and both
  ///   shapes; `.unknownTensor` for a deferred or streamed name that is not a weight matrix of this configuration,
  ///   or a name that is both.
  public init(
    configuration: Configuration, weights: Weights, deferred: Set<String> = [], streamed readers: [String: WeightReader] = [:]
  ) throws(EngineError) {
    try configuration.validate()
    let matrices = Set(Self.plannableLayers(of: configuration).map(\.weightName))
    if let bad = (deferred.sorted() + readers.keys.sorted()).first(where: { !matrices.contains($0) || (deferred.contains($0) && readers[$0] != nil) }) {
      throw EngineError(.unknownTensor, "'\(bad)' is not a weight matrix of this model, so it cannot be deferred or streamed (or it is both)")
    }
    var tensors: [String: Buffer<Scalar>] = [:]
    for (name, shape) in configuration.expectedTensors {
      if deferred.contains(name) {
        tensors[name] = Buffer.released()
        continue
      }
      if let read = readers[name] {
        tensors[name] = Buffer(count: 0)
        streamed.readers[name] = (shape.reduce(1, *), read)
        continue
      }
      guard let w = weights[name] else {
        throw EngineError(.missingTensor, "tensor '\(name)' (shape \(shape)) is missing")
      }
      guard w.shape == shape else {
        throw EngineError(.shapeMismatch, "tensor '\(name)' has shape \(w.shape), expected \(shape)")
      }
      guard w.values.count == shape.reduce(1, *) else {
        throw EngineError(.shapeMismatch, "tensor '\(name)' has \(w.values.count) values, shape \(shape) needs \(shape.reduce(1, *))")
      }
      tensors[name] = Buffer(w.values)
    }
    if configuration.tied { tensors["lm_head.weight"] = nil }
    self.configuration = configuration
    embedding = tensors["model.embed_tokens.weight"]!
    finalNorm = tensors["model.norm.weight"]!
    lmHead = configuration.tied ? embedding : tensors["lm_head.weight"]!
    var blocks: [Block<Scalar>] = []
    var linear: [LinearLayer] = []
    for l in 0..<configuration.layers {
      let p = "model.layers.\(l)."
      var weights: [Buffer<Scalar>] = []
      for (suffix, shape) in configuration.linearShapes {
        weights.append(tensors[p + suffix + ".weight"]!)
        linear.append(LinearLayer(name: p + suffix, block: l, outFeatures: shape[0], inFeatures: shape[1]))
      }
      blocks.append(
        Block(
          inputNorm: tensors[p + "input_layernorm.weight"]!, postNorm: tensors[p + "post_attention_layernorm.weight"]!,
          linear: weights, linearNames: configuration.linearShapes.map { p + $0.0 + ".weight" },
          inputNormName: p + "input_layernorm.weight", postNormName: p + "post_attention_layernorm.weight"))
    }
    self.tensors = tensors
    self.blocks = blocks
    self.linearLayers = linear
    linearOperators = Array(repeating: nil, count: linear.count)
    releasedTensors = configuration.expectedTensors.map { $0.name }.filter { deferred.contains($0) && tensors[$0] != nil }
    updateCoverage()
  }

  /// Tensor names of all linear weights (`linearLayers.map(\.weightName)`), the domain of the Hessian.
  public var linearWeightNames: [String] { linearLayers.map(\.weightName) }

  /// A copy of the tensor's current values.
  /// - Throws: `EngineError.unknownTensor` if the model has no such tensor, `.weightReleased` if its dense values
  ///   were released for an operator.
  public func weight(named name: String) throws(EngineError) -> [Scalar] {
    guard let b = tensors[name] else { throw EngineError(.unknownTensor, "no tensor '\(name)' in this model") }
    try requireDense(b, name)
    if isStreaming(b, name) {
      let count = valueCount(name)
      return [Scalar](unsafeUninitializedCapacity: count) { out, initialized in
        StreamedWeights<Scalar>.expand(streamed.readers[name]!.read, count: count, into: out.baseAddress!)
        initialized = count
      }
    }
    return b.array
  }

  /// Swaps a tensor's values in place, e.g. for a quantized-then-dequantized weight. Later passes use the new
  /// values; nothing else changes. For a tied model, replacing `model.embed_tokens.weight` changes the LM head too.
  /// A layer with an installed operator keeps running the operator; the new dense values count once it is removed.
  /// - Throws: `EngineError.unknownTensor` for an unknown name, `.shapeMismatch` if the count differs,
  ///   `.weightReleased` if the tensor's dense values were released for an operator.
  public func replaceWeight(name: String, with values: [Scalar]) throws(EngineError) {
    guard let b = tensors[name] else { throw EngineError(.unknownTensor, "no tensor '\(name)' in this model") }
    try requireDense(b, name)
    let count = valueCount(name)
    guard values.count == count else {
      throw EngineError(.shapeMismatch, "replacement for '\(name)' has \(values.count) values, tensor has \(count)")
    }
    squaredNorms[name] = nil
    guard let reader = streamed.readers[name] else {
      b.copy(from: values)
      return
    }
    // a streamed weight holds replaced values until it is given its file's values back
    streamed.drop(name)
    if let file = reader.read.values(count: count), zip(file, values).allSatisfy({ Scalar($0) == $1 }) {
      b.empty()
    } else {
      b.hold(values)
    }
  }

  /// ‖W‖² of a tensor, summed in Double (cached).
  func squaredNorm(of name: String) -> Double {
    if let cached = squaredNorms[name] { return cached }
    let (w, count) = (readable(tensors[name]!, name), valueCount(name))
    var sum = 0.0
    for i in 0..<count { sum += Double(w[i]) * Double(w[i]) }
    squaredNorms[name] = sum
    return sum
  }

  /// Frees the activation buffers kept between passes (~0.8 GB after a 512-token gradient on SmolLM2), the
  /// perturbed weights kept between Hessian-vector products (up to one copy of the linear weights) and the packed
  /// weights of the forward (made again on the next forward).
  public func releaseWorkspace() {
    workspace.removeAll()
    perturbedWeights = PerturbedWeights()
    dropPackedWeights()
  }

  /// Checks a window: at least 2 tokens (one prediction), every id in `0..<vocab`; and that every tensor the pass
  /// reads is there (none released without an operator in its place).
  func validate(tokens: [Int]) throws(EngineError) {
    if !uncoveredTensors.isEmpty { throw uncoveredError() }
    guard tokens.count >= 2 else { throw EngineError(.badTokens, "need at least 2 tokens, got \(tokens.count)") }
    if let bad = tokens.firstIndex(where: { $0 < 0 || $0 >= configuration.vocab }) {
      throw EngineError(.badTokens, "token \(tokens[bad]) at position \(bad) outside vocabulary 0..<\(configuration.vocab)")
    }
  }
}

/// The parameters of one decoder block, by reference into `LlamaModel.tensors`.
struct Block<Scalar: EngineScalar> {
  let inputNorm: Buffer<Scalar>
  let postNorm: Buffer<Scalar>
  /// q, k, v, o, gate, up, down (`LinearKind` order).
  let linear: [Buffer<Scalar>]
  let linearNames: [String]
  let inputNormName: String
  let postNormName: String
}

/// Index of a block's linear layer in `Block.linear` (forward order).
enum LinearKind: Int, CaseIterable {
  case q, k, v, o, gate, up, down
}
