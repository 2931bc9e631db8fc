import TensorCore

/// Hessian-vector products of the mean NLL with respect to all linear weights jointly, and optionally the token
/// embedding (`model.embed_tokens.weight`: for a tied model both of its uses, the lookup and the LM head).
///
/// Method: central differences of the exact (hand-written) gradient along v,
///   Hv ≈ (∇L(W + εV) − ∇L(W − εV)) / 2ε,
/// two forward+backward passes. Per linear layer that is 6 GEMMs of the layer's size (2 × [y = xWᵀ, dx = dy W,
/// dW = dyᵀx]); exact forward-over-reverse needs 8 (ẏ = ẋWᵀ + xVᵀ beside y; dx, ḋx = ḋy W + dy V, ḋW = ḋyᵀx + dyᵀẋ)
/// plus a tangent twin of every forward and backward op, so the difference is both cheaper and simpler. The second
/// gradient is folded into the first in place (`GradientSink` with α = −1/2ε, β = 1/2ε), and W ± εV is formed in
/// buffers kept beside the model (`WeightPerturbation`), so the weights stay bit-for-bit unchanged.
///
/// Step: error(ε) ≈ ε²/6 · |∇³L[v,v]| (truncation) + δ_g/ε (rounding, δ_g = absolute rounding error of a computed
/// gradient ≈ c·u·|∇L|). Minimising gives ε ∝ (δ_g/|∇³L|)^(1/3), i.e. a *relative* perturbation of order u^(1/3):
///   ε = κ · ‖W‖ / ‖V‖,   κ = u^(1/3) / 4   (Float: 9.7e-4, Double: 1.2e-6),
/// norms over the weights V touches, so ε‖V‖ = κ‖W‖ whatever the scale of the probe. The factor 1/4 is
/// measured: on SmolLM2 (T = 128, one Rademacher probe, release build) truncation dominates at κ = u^(1/3):
///   κ        2.5e-4   1e-3     3.9e-3   1.6e-2
///   vᵀHv     4407.9   4405.4   4385.9   4342.7
/// and Hv changes by 1.4e-3 (relative L2) between κ = 2.5e-4 and 1e-3, by 1.6e-2 between 1e-3 and 4e-3, so
/// κ ≈ 1e-3 sits in the plateau with ~1e-3 relative error — far below the Hutchinson noise (~4% for the 64-probe
/// trace). On the tiny test model against the exact Hessian (`HessianTests`): Double ~1e-10, Float ~6e-5.
extension LlamaModel {
  /// Relative step κ = u^(1/3)/4 of the central difference (see above).
  public static var defaultRelativeStep: Double { Double.exp(Double.log(Scalar.unitRoundoff) / 3) / 4 }

  /// H·v for the Hessian H of the mean NLL over the linear weights.
  /// - Parameters:
  ///   - tokens: the window (BOS first if the protocol wants it).
  ///   - vector: v by linear weight name (`model.layers.N.….weight`) or `model.embed_tokens.weight`, each in the
  ///     weight's `[out, in]` layout (the embedding `[vocab, hidden]`); weights not named are zero in v. Norms
  ///     (and an untied model's `lm_head.weight`) are not variables.
  ///   - names: which blocks of Hv to return (default: every linear weight; add the embedding's name for its block).
  ///   - relativeStep: κ, the perturbation's norm relative to the weights' (default `defaultRelativeStep`).
  /// - Returns: (Hv)_W for each name, same layout as W.
  /// - Throws: `EngineError.badTokens`, `.unknownTensor` for a name that is not a variable, `.shapeMismatch`
  ///   for a block of v with the wrong size, `.forwardOnly` while operators are installed (every HVP form).
  /// - Complexity: two gradient passes without the embedding gradient, ~8·P·T flops.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianVectorProduct(
    tokens: [Int], vector: [String: [Scalar]], of names: Set<String>? = nil, relativeStep: Double? = nil
  ) throws(EngineError) -> [String: [Scalar]] {
    let (wanted, step) = try prepareHVP(tokens: tokens, vector: vector, of: names, relativeStep: relativeStep ?? Self.defaultRelativeStep)
    guard let epsilon = step else { return zeroBlocks(wanted) }
    // g₊ = ∇L(W + εV), kept in the first sink
    let plus = WeightPerturbation(direction: vector, epsilon: epsilon, pool: perturbedWeights)
    let first = GradientSink<Scalar>(wanted: wanted)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: first, perturbation: plus)
    // Hv = (g₊ − g₋)/2ε, folded into g₊'s arrays
    let minus = WeightPerturbation(direction: vector, epsilon: -epsilon, pool: perturbedWeights)
    let half = 1 / (2 * epsilon)
    let second = GradientSink<Scalar>(wanted: wanted, alpha: -half, beta: half, continuing: first)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: minus), sink: second, perturbation: minus)
    return second.gradients
  }

  /// H·v by a one-sided difference against a gradient the caller already has: (∇L(W + εV) − g₀)/ε. One gradient
  /// pass instead of two, for many probes at the same weights (Hutchinson): compute g₀ once with
  /// `gradients(tokens:of:)` over the same tokens and names.
  ///
  /// Error: ε/2 · |∇³L[v,v]| (first order) + 2δ_g/ε, minimised at a relative step κ = √u (Float 2.4e-4, Double
  /// 1.5e-8) with error O(√u): measured 1e-3 relative for Float, 5e-8 for Double on the tiny model (`HessianTests`). For
  /// Rademacher probes the first-order term of vᵀHv is ε/2·∇³L[v,v,v], odd in v, so it averages out of a
  /// Hutchinson mean and adds only variance.
  /// - Parameters:
  ///   - baseGradient: ∇L at the current weights for every name in `names` (default: every linear weight).
  /// - Throws: as `hessianVectorProduct(tokens:vector:of:relativeStep:)`, and `.missingTensor` when
  ///   `baseGradient` lacks a requested block.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianVectorProduct(
    tokens: [Int], vector: [String: [Scalar]], baseGradient: [String: [Scalar]], of names: Set<String>? = nil,
    relativeStep: Double? = nil
  ) throws(EngineError) -> [String: [Scalar]] {
    let kappa = relativeStep ?? Scalar.unitRoundoff.squareRoot()
    let (wanted, step) = try prepareHVP(tokens: tokens, vector: vector, of: names, relativeStep: kappa)
    if let missing = wanted.first(where: { baseGradient[$0] == nil }) {
      throw EngineError(.missingTensor, "baseGradient has no block '\(missing)'")
    }
    guard let epsilon = step else { return zeroBlocks(wanted) }
    let plus = WeightPerturbation(direction: vector, epsilon: epsilon, pool: perturbedWeights)
    let sink = GradientSink<Scalar>(wanted: wanted, alpha: 1 / epsilon, beta: -1 / epsilon, existing: baseGradient)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: sink, perturbation: plus)
    return sink.gradients
  }

  /// The one-sided H·v of `hessianVectorProduct(tokens:vector:baseGradient:of:relativeStep:)`, handed to `consume`
  /// one linear weight at a time as the backward pass finishes it (in backward order: last block's down_proj first),
  /// instead of returned: each block is formed in one layer-sized scratch buffer, valid only during the call, so a
  /// product allocates nothing model-sized (Hutchinson needs only vᵀ(Hv) and v ⊙ Hv per block). Every linear weight
  /// is handed over exactly once, zero blocks of v included, and with `includingEmbedding` the embedding too (last:
  /// its gradient is complete only at the end of the backward pass).
  /// - Parameter includingEmbedding: hand over (Hv) for `model.embed_tokens.weight` as well; `baseGradient` must
  ///   then have its block.
  /// - Throws: as `hessianVectorProduct(tokens:vector:baseGradient:of:relativeStep:)`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianVectorProduct(
    tokens: [Int], vector: [String: [Scalar]], baseGradient: [String: [Scalar]], includingEmbedding: Bool = false,
    relativeStep: Double? = nil, consume: (String, UnsafeBufferPointer<Scalar>) -> Void
  ) throws(EngineError) {
    let kappa = relativeStep ?? Scalar.unitRoundoff.squareRoot()
    let names = includingEmbedding ? Set(linearWeightNames + [Self.embeddingWeightName]) : nil
    let (wanted, step) = try prepareHVP(tokens: tokens, vector: vector, of: names, relativeStep: kappa)
    if let missing = wanted.first(where: { baseGradient[$0] == nil }) {
      throw EngineError(.missingTensor, "baseGradient has no block '\(missing)'")
    }
    guard let epsilon = step else {
      for (name, block) in zeroBlocks(wanted) { block.withUnsafeBufferPointer { consume(name, $0) } }
      return
    }
    let scratch = Buffer<Scalar>(count: largestBlock(wanted))
    let plus = WeightPerturbation(direction: vector, epsilon: epsilon, pool: perturbedWeights)
    withoutActuallyEscaping(consume) { consume in
      let sink = GradientSink<Scalar>(
        wanted: wanted, alpha: 1 / epsilon, beta: -1 / epsilon, initial: baseGradient, scratch: scratch,
        handler: consume)
      runBackward(
        cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: sink, perturbation: plus)
    }
  }

  /// Per-layer quadratic forms vᵀ_W (Hv)_W of the central-difference HVP, for every linear weight W (zero where v has
  /// no block) and the embedding when v has a block for it: the Hutchinson summands, Σ_W of which is vᵀHv. Equal to dotting `hessianVectorProduct`'s blocks with
  /// v, but no gradient is stored: each pass reduces ⟨v_W, ∇_W L(W ± εV)⟩ to one Double per layer as its GEMM
  /// finishes, so a probe allocates one layer-sized scratch instead of 425 MB (SmolLM2).
  /// - Throws: as `hessianVectorProduct(tokens:vector:of:relativeStep:)`.
  /// - Complexity: two gradient passes, as the HVP.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianQuadraticForms(
    tokens: [Int], vector: [String: [Scalar]], relativeStep: Double? = nil
  ) throws(EngineError) -> [String: Double] {
    let (_, step) = try prepareHVP(tokens: tokens, vector: vector, of: nil, relativeStep: relativeStep ?? Self.defaultRelativeStep)
    var result = Dictionary(uniqueKeysWithValues: linearWeightNames.map { ($0, 0.0) })
    guard let epsilon = step else { return result }
    let wanted = Set(vector.keys)
    let projectionScratch = Buffer<Scalar>(count: largestBlock(wanted))
    let half = 1 / (2 * Double(epsilon))
    let plus = WeightPerturbation(direction: vector, epsilon: epsilon, pool: perturbedWeights)
    let first = GradientSink<Scalar>(wanted: wanted, projectingOnto: vector, coefficient: half, scratch: projectionScratch)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: first, perturbation: plus)
    let minus = WeightPerturbation(direction: vector, epsilon: -epsilon, pool: perturbedWeights)
    let second = GradientSink<Scalar>(
      wanted: wanted, projectingOnto: vector, coefficient: -half, scratch: projectionScratch, continuing: first)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: minus), sink: second, perturbation: minus)
    for (name, value) in second.projections { result[name] = value }
    return result
  }

  /// Per-layer one-sided quadratic forms vᵀ_W (Hv)_W ≈ (⟨v_W, ∇_W L(W + εV)⟩ − ⟨v_W, ∇_W L(W)⟩)/ε along a
  /// direction regenerated block by block (`StreamedVector`), for every tensor `probe` names: the Hutchinson
  /// summands of the one-sided product (`hessianVectorProduct(tokens:vector:baseGradient:…)`) with nothing
  /// model-sized in memory. v is formed a weight at a time as the passes reach it (W + εV beside it, in two
  /// layer-sized buffers), and each weight's gradient is reduced to ⟨v_W, ·⟩ (Double, in fixed chunks) as its GEMM
  /// finishes. The base gradient enters only through `baseProjections`, ⟨v_W, ∇_W L(W)⟩ per tensor, which the caller
  /// forms from one streamed gradient pass (`gradients(tokens:of:consume:)`) for all the probes it will draw.
  ///
  /// Differs from dotting the one-sided product's blocks with v only in rounding: the difference is taken between
  /// two Double sums instead of element by element in `Scalar`, which is the more accurate of the two.
  /// - Parameters:
  ///   - probe: the direction; each name a linear weight or the embedding, given once.
  ///   - baseProjections: ⟨v_W, ∇_W L(W)⟩ over the same tokens, for every name of `probe`.
  ///   - relativeStep: κ (default √u, the one-sided optimum).
  /// - Returns: the form per name of `probe` (all 0 when v = 0).
  /// - Throws: `EngineError.badTokens`; `.unknownTensor` for a name that is not a variable or is given twice;
  ///   `.missingTensor` when `baseProjections` lacks a name; `.forwardOnly` while operators are installed.
  /// - Complexity: one gradient pass, ~6·P·T flops, plus forming W + εV twice per weight.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianQuadraticForms(
    tokens: [Int], probe: StreamedVector<Scalar>, baseProjections: [String: Double], relativeStep: Double? = nil
  ) throws(EngineError) -> [String: Double] {
    let (seen, step) = try prepareStreamedHVP(
      tokens: tokens, probe: probe, relativeStep: relativeStep, linearOnly: false, has: { baseProjections[$0] != nil },
      missing: "baseProjections has no entry for")
    var result = Dictionary(uniqueKeysWithValues: probe.names.map { ($0, 0.0) })
    guard let epsilon = step else { return result }
    let plus = WeightPerturbation(streaming: probe, epsilon: epsilon, pool: perturbedWeights)
    // the embedding's gradient is projected in row chunks (`contributeRows`), so the scratch holds a linear weight
    let scratch = Buffer<Scalar>(count: largestBlock(seen.subtracting([Self.embeddingWeightName])))
    let (d, tableCount) = (configuration.hidden, embeddingLayer.parameterCount)
    let sink = GradientSink<Scalar>(
      wanted: seen,
      projectingWith: { name, contribution, count in
        // the backward pass has just read W + εV of this weight, so its block of v is the one held
        guard let v = plus.streamedDirection(name: name) else { return nil }
        return Self.chunkedDot(v, contribution, count: count)
      },
      rowDot: { name, rows, contribution, count, sum in
        // the table's rows of v, regenerated; chunks of whole 2¹⁶-value sums keep the whole table's bits
        guard name == Self.embeddingWeightName, plus.streamsTable else { return false }
        let v = plus.tableDirection(rows: rows, columns: d, tableCount: tableCount)
        Self.chunkedDot(v, contribution, count: count, adding: &sum)
        return true
      }, coefficient: 1 / Double(epsilon), scratch: scratch)
    runBackward(cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: sink, perturbation: plus)
    for name in probe.names {
      result[name] = (sink.projections[name] ?? 0) - baseProjections[name]! / Double(epsilon)
    }
    return result
  }

  /// The one-sided H·v of `hessianVectorProduct(tokens:vector:baseGradient:includingEmbedding:relativeStep:consume:)`
  /// along a direction regenerated block by block (`StreamedVector`), as `hessianQuadraticForms(tokens:probe:…)`
  /// forms it: v's block and W + εV in two layer-sized buffers when a pass reaches the weight. `consume(name, v_W,
  /// (Hv)_W)` receives each block of `probe` once, in backward order, with v's block beside the product's (both valid
  /// only during the call). So a Hutchinson diagonal `Σ v ⊙ Hv` needs no model-sized probe, no perturbed copy of the
  /// weights and no pass for ‖v‖², which `probe.squaredNorm` gives.
  ///
  /// Bit for bit the dense form's blocks for the same v whenever `probe.squaredNorm` is the dense form's Σv² (exact
  /// for a Rademacher probe, whose sum is its count): the same ε, the same W + εV, the same GEMMs.
  /// - Parameters:
  ///   - probe: the direction; each name a linear weight (not the embedding), given once.
  ///   - baseGradient: ∇L at the current weights over the same tokens, for every name of `probe`.
  ///   - relativeStep: κ (default √u, the one-sided optimum).
  /// - Throws: `EngineError.badTokens`; `.unknownTensor` for a name that is not a linear weight or is given twice;
  ///   `.missingTensor` when `baseGradient` lacks a name; `.forwardOnly` while operators are installed.
  /// - Complexity: one gradient pass, ~6·P·T flops, plus forming W + εV twice per weight.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func hessianVectorProduct(
    tokens: [Int], probe: StreamedVector<Scalar>, baseGradient: [String: [Scalar]], relativeStep: Double? = nil,
    consume: (String, UnsafeBufferPointer<Scalar>, UnsafeBufferPointer<Scalar>) -> Void
  ) throws(EngineError) {
    let (wanted, step) = try prepareStreamedHVP(
      tokens: tokens, probe: probe, relativeStep: relativeStep, linearOnly: true, has: { baseGradient[$0] != nil },
      missing: "baseGradient has no block")
    let scratch = Buffer<Scalar>(count: largestBlock(wanted))
    guard let epsilon = step else {
      // v = 0: each block of v beside a zero product
      let zeros = Buffer<Scalar>(count: scratch.count)
      zeros.zero()
      for name in probe.names {
        let count = valueCount(name)
        probe.fill(name, UnsafeMutableBufferPointer(start: scratch.pointer, count: count))
        consume(name, UnsafeBufferPointer(start: scratch.constant, count: count), UnsafeBufferPointer(start: zeros.constant, count: count))
      }
      return
    }
    let plus = WeightPerturbation(streaming: probe, epsilon: epsilon, pool: perturbedWeights)
    withoutActuallyEscaping(consume) { consume in
      let sink = GradientSink<Scalar>(
        wanted: wanted, alpha: 1 / epsilon, beta: -1 / epsilon, initial: baseGradient, scratch: scratch
      ) { name, hv in
        // the backward pass has just formed W + εV of this weight for its dx product, so v's block is the one held
        guard let v = plus.streamedDirection(name: name) else { preconditionFailure("no streamed block of v for '\(name)'") }
        consume(name, UnsafeBufferPointer(start: v, count: hv.count), hv)
      }
      runBackward(
        cache: runForward(tokens: tokens, keepActivations: true, perturbation: plus), sink: sink, perturbation: plus)
    }
  }

  /// Validates a streamed HVP request: the probe's names (linear weights, and the embedding unless `linearOnly`,
  /// each once, each one `has` accepts), and returns them with ε = κ‖W‖/‖V‖ (nil when ‖v‖² = 0), ‖W‖² summed in
  /// layer order as `prepareHVP` does and ‖V‖² from `probe.squaredNorm`.
  private func prepareStreamedHVP(
    tokens: [Int], probe: StreamedVector<Scalar>, relativeStep: Double?, linearOnly: Bool, has: (String) -> Bool,
    missing: String
  ) throws(EngineError) -> (names: Set<String>, epsilon: Scalar?) {
    try requireBackward("a Hessian-vector product")
    try validate(tokens: tokens)
    let variables = Set((linearOnly ? linearLayers : hessianVariables).map(\.weightName))
    var seen = Set<String>()
    for name in probe.names {
      guard variables.contains(name), seen.insert(name).inserted else {
        let what = linearOnly ? "a linear weight" : "a linear weight or the token embedding"
        throw EngineError(.unknownTensor, "'\(name)' is not \(what), or is named twice")
      }
      guard has(name) else { throw EngineError(.missingTensor, "\(missing) '\(name)'") }
    }
    let weightSquares = hessianVariables.map(\.weightName).filter(seen.contains).reduce(0.0) { $0 + squaredNorm(of: $1) }
    guard probe.squaredNorm > 0 else { return (seen, nil) }
    let kappa = relativeStep ?? Scalar.unitRoundoff.squareRoot()
    return (seen, Scalar(kappa * (weightSquares.squareRoot() / probe.squaredNorm.squareRoot())))
  }

  /// The mean NLL's gradient with respect to the named tensors, handed to `consume` one tensor at a time as the
  /// backward pass finishes it (each in one scratch buffer, valid only during the call), instead of returned: no
  /// model-sized gradient is stored. Each name is handed over exactly once (for a tied model the embedding's
  /// gradient, head included, comes last).
  /// - Returns: the window's mean NLL.
  /// - Throws: as `gradients(tokens:of:)`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  @discardableResult
  public func gradients(
    tokens: [Int], of names: Set<String>, consume: (String, UnsafeBufferPointer<Scalar>) -> Void
  ) throws(EngineError) -> Double {
    try requireBackward("gradients(tokens:of:consume:)")
    try validate(tokens: tokens)
    try validate(names: names)
    let scratch = Buffer<Scalar>(count: names.map { tensors[$0] == nil ? 0 : valueCount($0) }.max() ?? 0)
    let cache = runForward(tokens: tokens, keepActivations: true)
    withoutActuallyEscaping(consume) { consume in
      let sink = GradientSink<Scalar>(wanted: names, alpha: 1, beta: 0, initial: [:], scratch: scratch, handler: consume)
      runBackward(cache: cache, sink: sink)
    }
    return cache.meanNLL
  }

  /// Σ a[i]·b[i] in Double over fixed chunks of 2¹⁶ (each with 8 interleaved partial sums), chunk sums added in
  /// order: the same bits for any number of workers.
  static func chunkedDot(_ a: UnsafePointer<Scalar>, _ b: UnsafePointer<Scalar>, count n: Int) -> Double {
    var sum = 0.0
    chunkedDot(a, b, count: n, adding: &sum)
    return sum
  }

  /// `chunkedDot` with its chunk sums added in order to `sum`: vectors split at multiples of 2¹⁶ values and summed
  /// piece by piece into one `sum` give the bits of the whole vector's `chunkedDot`.
  static func chunkedDot(_ a: UnsafePointer<Scalar>, _ b: UnsafePointer<Scalar>, count n: Int, adding sum: inout Double) {
    let size = 1 << 16
    let chunks = (n + size - 1) / size
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(chunks, 1))
    defer { partials.deallocate() }
    nonisolated(unsafe) let out = partials  // each chunk writes its own slot
    Parallel.forEachChunk(chunks, costPerItem: size) { range in
      for c in range {
        let (start, end) = (c * size, min(c * size + size, n))
        var lanes = SIMD8<Double>()
        var i = start
        while i + 8 <= end {
          var p = SIMD8<Double>()
          for j in 0..<8 { p[j] = Double(a[i + j]) * Double(b[i + j]) }
          lanes += p
          i += 8
        }
        var sum = lanes.sum()
        while i < end {
          sum += Double(a[i]) * Double(b[i])
          i += 1
        }
        out[c] = sum
      }
    }
    for c in 0..<chunks { sum += partials[c] }
  }

  /// Validates an HVP request; returns the output blocks and ε = κ‖W‖/‖V‖ (nil when V = 0).
  private func prepareHVP(
    tokens: [Int], vector: [String: [Scalar]], of names: Set<String>?, relativeStep kappa: Double
  ) throws(EngineError) -> (wanted: Set<String>, epsilon: Scalar?) {
    try requireBackward("a Hessian-vector product")
    try validate(tokens: tokens)
    let variables = Dictionary(uniqueKeysWithValues: hessianVariables.map { ($0.weightName, $0) })
    for (name, v) in vector {
      guard let layer = variables[name] else {
        throw EngineError(.unknownTensor, "'\(name)' is not a linear weight or the token embedding")
      }
      guard v.count == layer.parameterCount else {
        throw EngineError(.shapeMismatch, "vector for '\(name)' has \(v.count) values, weight [\(layer.outFeatures), \(layer.inFeatures)] has \(layer.parameterCount)")
      }
    }
    let wanted = names ?? Set(linearWeightNames)
    if let bad = wanted.first(where: { variables[$0] == nil }) {
      throw EngineError(.unknownTensor, "'\(bad)' is not a linear weight or the token embedding")
    }
    // ε = κ‖W‖/‖V‖ over the weights V touches (sums of squares in Double, in layer order: a dictionary's order
    // changes from process to process, and so would the last bits of ε)
    // Each block's Σv² is computed on its own (the blocks spread over the workers), then added in layer order:
    // the same sums in the same order as one block after another on one thread.
    let moved = hessianVariables.map(\.weightName).filter { vector[$0] != nil }
    let blockSquares = Self.squaredSums(moved.map { vector[$0]! })
    var (weightSquares, vectorSquares) = (0.0, 0.0)
    for (name, squares) in zip(moved, blockSquares) {
      weightSquares += squaredNorm(of: name)
      vectorSquares += squares
    }
    guard vectorSquares > 0 else { return (wanted, nil) }
    return (wanted, Scalar(kappa * (weightSquares.squareRoot() / vectorSquares.squareRoot())))
  }

  /// `squaredSum` of every block, the blocks spread dynamically over `Parallel.workers` (each block's sum whole on
  /// one thread, so every result is bit for bit `squaredSum`'s).
  static func squaredSums(_ blocks: [[Scalar]]) -> [Double] {
    let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: blocks.count)
    defer { sums.deallocate() }
    nonisolated(unsafe) let out = sums  // each task writes its own slot
    Parallel.forEach(blocks.count) { i in out[i] = blocks[i].withUnsafeBufferPointer(Self.squaredSum) }
    return Array(sums)
  }

  /// Σ x² in Double with 8 interleaved partial sums (a fixed order; one serial chain of 106 M additions took
  /// ~0.15 s per SmolLM2 probe).
  static func squaredSum(_ x: UnsafeBufferPointer<Scalar>) -> Double {
    var partial = SIMD8<Double>()
    let whole = x.count / 8 * 8
    var i = 0
    while i < whole {
      var lane = SIMD8<Double>()
      for j in 0..<8 { lane[j] = Double(x[i + j]) }
      partial += lane * lane
      i += 8
    }
    var sum = partial.sum()
    while i < x.count {
      sum += Double(x[i]) * Double(x[i])
      i += 1
    }
    return sum
  }

  /// The variables of the HVPs, in order: every linear layer, then the token embedding as a layer named
  /// `model.embed_tokens` (`[vocab, hidden]`, weight `model.embed_tokens.weight`).
  var hessianVariables: [LinearLayer] { linearLayers + [embeddingLayer] }

  /// The largest block among `names` (scratch size for the streaming and projecting sinks).
  private func largestBlock(_ names: Set<String>) -> Int {
    hessianVariables.filter { names.contains($0.weightName) }.map(\.parameterCount).max() ?? 0
  }

  private func zeroBlocks(_ names: Set<String>) -> [String: [Scalar]] {
    let sizes = Dictionary(uniqueKeysWithValues: hessianVariables.map { ($0.weightName, $0.parameterCount) })
    return Dictionary(uniqueKeysWithValues: names.map { ($0, [Scalar](repeating: 0, count: sizes[$0]!)) })
  }
}

/// A direction in weight space given one block at a time, on demand: a Hutchinson probe regenerated from its seed,
/// so that a Hessian-vector product never holds the whole vector (`hessianQuadraticForms(tokens:probe:…)`).
public struct StreamedVector<Scalar: EngineScalar> {
  /// The tensors v has a block for (linear weights by tensor name, or `model.embed_tokens.weight`), each once.
  public var names: [String]
  /// ‖v‖², over every block (it sets the step ε).
  public var squaredNorm: Double
  /// Writes v's block for a name into a buffer of the weight's size, `[out, in]`. Called once or twice per weight
  /// and pass, from the caller's thread; it must give the same values every time.
  public var fill: (String, UnsafeMutableBufferPointer<Scalar>) -> Void
  /// Writes the values `offset ..< offset + buffer.count` of v's block for a name (the table's rows, formed a chunk
  /// at a time); nil: they are cut out of `fill`'s whole block.
  public var fillRange: ((String, Int, UnsafeMutableBufferPointer<Scalar>) -> Void)?

  /// A direction with blocks for `names`, of squared norm `squaredNorm`, written by `fill` (and by `fillRange`
  /// a range at a time, when given).
  public init(
    names: [String], squaredNorm: Double, fillRange: ((String, Int, UnsafeMutableBufferPointer<Scalar>) -> Void)? = nil,
    fill: @escaping (String, UnsafeMutableBufferPointer<Scalar>) -> Void
  ) {
    self.names = names
    self.squaredNorm = squaredNorm
    self.fillRange = fillRange
    self.fill = fill
  }

  /// Values `offset ..< offset + out.count` of the block for `name`, whose size is `blockCount`.
  func fill(_ name: String, offset: Int, blockCount: Int, into out: UnsafeMutableBufferPointer<Scalar>) {
    if let fillRange { return fillRange(name, offset, out) }
    if offset == 0 && out.count == blockCount { return fill(name, out) }
    let whole = UnsafeMutableBufferPointer<Scalar>.allocate(capacity: blockCount)
    defer { whole.deallocate() }
    fill(name, whole)
    _ = out.initialize(from: whole[offset..<(offset + out.count)])
  }
}
