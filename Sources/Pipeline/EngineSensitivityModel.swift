import Engine
import Quantization
import Sensitivity

/// The `SensitivityModel` of a real llama model: the engine's gradients, Hessian-vector products and captured
/// inputs on calibration tokens, the quantizer's formats with the best range calibration per layer, and the
/// engine's logits on held-out tokens for the audit.
///
/// - Layers: every linear weight (`LlamaModel.linearLayers`), in the engine's order, by HF module path; with
///   `includesTokenEmbedding`, then the token embedding as one more layer, `model.embed_tokens` `[vocab, hidden]`
///   (GGUF `token_embd.weight`; for a tied model also the LM head). Its gradient, Hessian block and audit cover
///   every use of the table (the engine's gradient of `model.embed_tokens.weight` includes the LM head's when
///   tied); its output error is the lookup's `Σ_t ‖ΔE[token_t]‖²/n` plus, when tied, the LM head's
///   `tr(ΔE G ΔEᵀ)` over the final-norm hidden states (`TableLookup`).
/// - Fisher: `gradient(window:)` is `∇_W` of the mean NLL of calibration window `window`
///   (`MeasureSettings.calibrationWindows`).
/// - Hessian: `H` is the Hessian of the mean NLL over the first `hvpTokenCount` calibration tokens with respect to
///   all linear weights (and the embedding table when it is measured). `hessianVectorProduct` uses the engine's one-sided difference against the gradient at the
///   unperturbed weights, `(∇L(W + εV) − ∇L(W))/ε` with `ε = √u · ‖W‖/‖V‖` over the blocks `V` touches: one
///   gradient pass per product instead of two (on SmolLM2 at 128 tokens, 1.6 s against 2.9 s for the central
///   difference, measured with `bitplan bench engine`), with a relative error of ~1e-3 in Float (engine
///   `HessianTests`). The first-order error term `ε/2 · ∇³L[v,v]` is odd in `v`, so it cancels from a mean over
///   Rademacher probes and only adds variance. A whole product (power iteration, the Hessian diagonal) reuses one
///   base gradient, computed on first use; the Hutchinson trace (`hutchinsonSample`) needs only the base
///   gradient's projections onto the probes, and regenerates each probe a layer at a time inside the passes.
/// - Inputs: one forward pass over all calibration tokens captures every layer's `X` `[tokens, in]` (kept as Float;
///   about 300 MB for SmolLM2 at 512 tokens).
/// - Audit: `evaluate` scores `evaluationTokens` (see `Measurement`), computing the NLL and KL divergence from the
///   engine's logits in Double; the unquantized model's log-probabilities are computed once and kept.
///
/// A reference type because it caches (the base gradient, the captured inputs, the baseline log-probabilities);
/// all methods run on the caller's thread, one at a time.
public final class EngineSensitivityModel<Scalar: EngineScalar>: SensitivityModel {
  /// The engine. `evaluate` swaps one weight and restores it before returning.
  public let model: LlamaModel<Scalar>
  /// `[BOS]` + the first `tokens − 1` ids of the calibration text.
  public let calibrationTokens: [Int]
  /// How many leading calibration tokens the Hessian is taken over.
  public let hvpTokenCount: Int
  /// Held-out tokens for `evaluate` (empty when no audit is asked for).
  public let evaluationTokens: [Int]
  /// The candidate formats, in column order.
  public let formats: [QuantFormat]
  /// The runtime whose formats are offered per layer and whose bytes are recorded (`Target.canStore`,
  /// `Target.storedBytes`; the embedding gets the target's embedding set).
  public let target: Target
  /// The linear layers, in the engine's order, then `model.embed_tokens` when the embedding is measured.
  public let linearLayers: [MeasuredRun.Layer]
  /// Whether the token embedding is measured as the last layer.
  public let includesTokenEmbedding: Bool
  /// The candidates with their bits per weight over the layers they fit.
  public let candidates: [MeasuredRun.Candidate]
  /// Calibration windows of the Fisher gradient, as ranges of `calibrationTokens`.
  public let windows: [Range<Int>]

  /// Weight tensor names (`….weight`) in layer order.
  let weightNames: [String]
  /// Layer index by weight tensor name.
  let layerIndex: [String: Int]
  /// ∇L over the Hessian window at the current weights, once computed (products of whole vectors only).
  var baseGradient: [String: [Scalar]]?
  /// Keep calibration window 0's gradient as `baseGradient` when that window is the Hessian window (the Fisher
  /// stage computes it anyway; the whole-vector products need it): one gradient pass fewer, the same bits (both are
  /// the engine's backward pass over the same tokens into fresh blocks). Off by default, since it holds a model's
  /// worth of gradient from the Fisher stage on; `Measurement` sets it when the probes take whole-vector products
  /// (the Hessian diagonal is kept) and the weights are in memory.
  public var reusesFirstWindowGradient = false
  /// ⟨v_p, ∇L(W)⟩ per layer for Hutchinson probes `first ..< first + values.count` of the stream `seed`
  /// (`hutchinsonSample`).
  var probeBase: (seed: UInt64, first: Int, values: [[Double]])?
  /// Captured inputs per layer, once the capture pass has run.
  var capturedInputs: [[Float]]?
  /// The unmodified model's mean NLL and log-probabilities `[T−1, V]` on `evaluationTokens`, once computed.
  var baseline: Reference?
  /// Every candidate of the layer quantized last by `quantize(layer:candidate:)` for candidate 0.
  var quantizedLayer: (layer: Int, results: [Result<QuantizedWeights?, any Error>])?
  /// The windows single-layer scores resume from, and how the scored layers ran (`EngineSensitivityModel+Scores`).
  public let scoring = ScoringState<Scalar>()
  /// The quantizer of every candidate (`--quantizer`; see `quantize(layer:candidate:)`).
  public var quantizer: QuantizerChoice = .method(.rtn)
  /// GPTQ's damping, batch width and column order.
  public var gptqOptions = GPTQ.Options()
  /// AWQ searches of the current input group, per candidate.
  let awqCache = LayerQuantizer.AWQCache()

  /// Wraps `model` for a measurement.
  /// - Parameters:
  ///   - calibrationTokens: the calibration tokens (at least 2).
  ///   - hvpTokenCount: the Hessian window length, in `2...calibrationTokens.count`; also the calibration window
  ///     length of the Fisher gradient.
  ///   - evaluationTokens: held-out tokens for the audit; empty when there is none.
  ///   - formats: candidate formats; each must fit at least one layer.
  ///   - target: offers a format to a layer only where `target.canStore` it, at `target.storedBytes`.
  ///   - includesTokenEmbedding: measure the token embedding too, as the last layer `model.embed_tokens`.
  /// - Throws: `MeasureError.badSettings` for token counts out of range, `.badCandidate` for a format that fits no
  ///   layer.
  public init(
    model: LlamaModel<Scalar>, calibrationTokens: [Int], hvpTokenCount: Int, evaluationTokens: [Int] = [],
    formats: [QuantFormat], target: Target = .any, includesTokenEmbedding: Bool = false
  ) throws(MeasureError) {
    if calibrationTokens.count < 2 || hvpTokenCount < 2 || hvpTokenCount > calibrationTokens.count {
      throw MeasureError(
        .badSettings, "need 2 ≤ Hessian tokens (\(hvpTokenCount)) ≤ calibration tokens (\(calibrationTokens.count))")
    }
    if evaluationTokens.count == 1 { throw MeasureError(.badSettings, "an evaluation window needs 2 tokens") }
    if formats.isEmpty { throw MeasureError(.badCandidate, "no candidate formats") }
    self.model = model
    self.calibrationTokens = calibrationTokens
    self.hvpTokenCount = hvpTokenCount
    self.evaluationTokens = evaluationTokens
    self.formats = formats
    self.target = target
    let layers = model.linearLayers + (includesTokenEmbedding ? [model.embeddingLayer] : [])
    self.includesTokenEmbedding = includesTokenEmbedding
    linearLayers = layers.map { MeasuredRun.Layer(name: $0.name, rows: $0.outFeatures, columns: $0.inFeatures) }
    weightNames = layers.map(\.weightName)
    layerIndex = Dictionary(uniqueKeysWithValues: weightNames.enumerated().map { ($0.element, $0.offset) })
    windows = MeasureSettings.calibrationWindows(tokens: calibrationTokens.count, windowLength: hvpTokenCount)
    var candidates: [MeasuredRun.Candidate] = []
    for format in formats {
      let fitting = linearLayers.filter {
        target.canStore(format, rows: $0.rows, columns: $0.columns, isEmbedding: Self.isEmbedding($0))
      }
      if fitting.isEmpty {
        let widths = Set(linearLayers.map(\.columns)).sorted().map(String.init).joined(separator: ", ")
        throw MeasureError(
          .badCandidate, "'\(format.name)' fits no linear layer of this model (input widths \(widths)): "
            + "\(format.name) needs its group size to divide the width")
      }
      // Bits per weight over the layers it fits, metadata included: 8 · Σ bytes / Σ weights.
      let bytes = fitting.reduce(0) {
        $0 + target.storedBytes(format, rows: $1.rows, columns: $1.columns, isEmbedding: Self.isEmbedding($1))
      }
      let weights = fitting.reduce(0) { $0 + $1.parameterCount }
      candidates.append(.init(name: format.name, bitsPerWeight: 8 * Double(bytes) / Double(weights)))
    }
    self.candidates = candidates
  }

  /// The Hessian window: the first `hvpTokenCount` calibration tokens.
  public var hvpTokens: [Int] { Array(calibrationTokens.prefix(hvpTokenCount)) }

  /// One window per `MeasureSettings.calibrationWindows`.
  public var calibrationWindowCount: Int { windows.count }

  /// The layer's current weights as Float.
  public func weights(of layer: Int) throws -> [Float] {
    Self.floats(try model.weight(named: weightNames[layer]))
  }

  /// `∇_W` of window `window`'s mean NLL for every linear weight.
  public func gradient(window: Int) throws -> [[Float]] {
    let range = windows[window]
    let g = try model.gradients(tokens: Array(calibrationTokens[range]), of: Set(weightNames)).gradients
    return weightNames.map { Self.floats(g[$0]!) }
  }

  /// `∇_W` of window `window`'s mean NLL handed over a layer at a time as the backward pass finishes it
  /// (`LlamaModel.gradients(tokens:of:consume:)`): the same values as `gradient(window:)`, with no model-sized
  /// gradient stored.
  public func gradient(window: Int, consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
    let keeps = reusesFirstWindowGradient && baseGradient == nil && windows[window] == 0..<hvpTokenCount
    var kept: [String: [Scalar]] = [:]
    try handingOver(to: consume) { handler in
      try model.gradients(tokens: Array(calibrationTokens[windows[window]]), of: Set(weightNames)) { name, block in
        if keeps { kept[name] = Array(block) }
        handler(name, block)
      }
    }
    if keeps && kept.count == weightNames.count { baseGradient = kept }
  }

  /// Runs `pass` with a handler for the engine's per-tensor blocks that hands each to `consume` by layer index, as
  /// Float (the same memory when `Scalar` is `Float`). After `consume` throws, the remaining blocks are skipped and
  /// the error is rethrown once the pass ends.
  func handingOver(
    to consume: (Int, UnsafeBufferPointer<Float>) throws -> Void,
    _ pass: ((String, UnsafeBufferPointer<Scalar>) -> Void) throws -> Void
  ) throws {
    var failure: (any Error)?
    let layerIndex = self.layerIndex
    try withoutActuallyEscaping(consume) { consume in
      try pass { name, block in
        guard failure == nil else { return }
        do {
          try Self.floats(block) { try consume(layerIndex[name]!, $0) }
        } catch {
          failure = error
        }
      }
    }
    if let failure { throw failure }
  }

  /// `H v` by the one-sided difference against the cached base gradient (see the type's documentation). Blocks
  /// of `v` that are entirely zero are left out of the perturbation, so the step is relative to the weights `v`
  /// actually moves (power iteration probes one layer at a time).
  public func hessianVectorProduct(_ v: [[Float]]) throws -> [[Float]] {
    var hv = [[Float]](repeating: [], count: weightNames.count)
    try hessianVectorProduct(v) { layer, block in hv[layer] = Array(block) }
    return hv
  }

  /// `H v` as `hessianVectorProduct(_:)`, streamed from the engine's backward pass one layer at a time (no
  /// model-sized product is stored). After `consume` throws, the remaining blocks are skipped and the error is
  /// rethrown once the pass ends.
  public func hessianVectorProduct(_ v: [[Float]], consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
    if v.count != weightNames.count {
      throw SensitivityError(.shapeMismatch, "\(v.count) probe blocks for \(weightNames.count) layers")
    }
    let base = try hessianBaseGradient()
    var vector: [String: [Scalar]] = [:]
    for (name, block) in zip(weightNames, v) where block.contains(where: { $0 != 0 }) {
      vector[name] = Self.scalars(block)
    }
    try handingOver(to: consume) { handler in
      try model.hessianVectorProduct(
        tokens: hvpTokens, vector: vector, baseGradient: base, includingEmbedding: includesTokenEmbedding, consume: handler)
    }
  }

  /// Probe `index` of `trace` without a model-sized vector: the engine regenerates each layer's block of the
  /// Rademacher probe when its passes reach the layer (`LlamaModel.hessianQuadraticForms(tokens:probe:…)`), and the
  /// one-sided difference `(⟨v, ∇L(W + εV)⟩ − ⟨v, ∇L(W)⟩)/ε` takes the base gradient only through its projections
  /// onto the probes, formed from one streamed gradient pass for a batch of up to `baseProjectionBatch` probes
  /// (`probeBase`). Nothing of the size of the weights is held beyond the weights themselves: no probe, no
  /// perturbed copy, no base gradient.
  /// - Throws: `SensitivityError.shapeMismatch` when `trace` is not laid out like the layers; `EngineError`.
  public func hutchinsonSample(of trace: HutchinsonTrace, probe index: Int) throws -> [Double] {
    try requireLayers(trace.blocks)
    let base = try baseProjections(trace, probe: index, firstWords: trace.firstWords)
    let probe = streamedVector(trace.streamedProbe(index))
    let forms = try model.hessianQuadraticForms(
      tokens: hvpTokens, probe: probe, baseProjections: Dictionary(uniqueKeysWithValues: zip(weightNames, base)))
    return weightNames.map { forms[$0]! }
  }

  /// `H v` for a Hutchinson probe with v's blocks beside the product's (for the diagonal): the engine regenerates
  /// each layer's block of the probe when its passes reach the layer (`LlamaModel.hessianVectorProduct(tokens:probe:
  /// baseGradient:…)`), so neither the probe nor a perturbed copy of the weights is held whole, and no pass sums ‖v‖².
  /// The same numbers as the default (`denseHessianVectorProduct`), which a model that measures its embedding table
  /// still takes (the engine forms the table's v in row chunks) and which leaves `workspace` untouched here.
  /// - Throws: `SensitivityError.shapeMismatch` when the probe is not laid out like the layers; `EngineError`; what
  ///   `consume` throws (after the pass ends, the remaining blocks skipped).
  public func hessianVectorProduct(
    probe: HutchinsonTrace.Probe, workspace: inout [[Float]],
    consume: (Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void
  ) throws {
    if includesTokenEmbedding { return try denseHessianVectorProduct(probe: probe, workspace: &workspace, consume: consume) }
    try requireLayers(probe.blocks)
    let base = try hessianBaseGradient()
    var failure: (any Error)?
    let layerIndex = self.layerIndex
    try withoutActuallyEscaping(consume) { consume in
      try model.hessianVectorProduct(tokens: hvpTokens, probe: streamedVector(probe), baseGradient: base) { name, v, hv in
        guard failure == nil else { return }
        do {
          try Self.floats(v) { v in try Self.floats(hv) { hv in try consume(layerIndex[name]!, v, hv) } }
        } catch {
          failure = error
        }
      }
    }
    if let failure { throw failure }
  }

  /// Checks that Hutchinson blocks are the linear layers, in order and by size.
  /// - Throws: `SensitivityError.shapeMismatch` when they are not.
  func requireLayers(_ blocks: [HutchinsonTrace.Block]) throws(SensitivityError) {
    guard blocks.map(\.name) == linearLayers.map(\.name),
      zip(blocks, linearLayers).allSatisfy({ $0.count == $1.parameterCount })
    else { throw SensitivityError(.shapeMismatch, "the Hutchinson blocks do not match the \(linearLayers.count) layers") }
  }

  /// A Hutchinson probe as the engine's `StreamedVector`: a block, or a range of the table's rows, regenerated from
  /// the probe's stream into the engine's buffer (converted when `Scalar` is not `Float`: ±1 is exact).
  func streamedVector(_ probe: HutchinsonTrace.Probe) -> StreamedVector<Scalar> {
    let layerIndex = self.layerIndex
    func write(_ out: UnsafeMutableBufferPointer<Scalar>, _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
      if Scalar.self == Float.self { return fill(UnsafeMutableRawBufferPointer(out).bindMemory(to: Float.self)) }
      var signs = [Float](repeating: 0, count: out.count)
      signs.withUnsafeMutableBufferPointer { fill($0) }
      for j in 0..<out.count { out[j] = Scalar(signs[j]) }
    }
    return StreamedVector<Scalar>(
      names: weightNames, squaredNorm: Double(probe.blocks.reduce(0) { $0 + $1.count }),
      // the embedding table's rows, a chunk at a time
      fillRange: { name, offset, out in write(out) { probe.fill(block: layerIndex[name]!, offset: offset, into: $0) } }
    ) { name, out in write(out) { probe.fill(block: layerIndex[name]!, into: $0) } }
  }

  /// `body` with `block` as Float: the same memory when `Scalar` is `Float`, a converted copy otherwise.
  static func floats(_ block: UnsafeBufferPointer<Scalar>, _ body: (UnsafeBufferPointer<Float>) throws -> Void) rethrows {
    if Scalar.self == Float.self { return try body(UnsafeRawBufferPointer(block).assumingMemoryBound(to: Float.self)) }
    try block.map { Float($0) }.withUnsafeBufferPointer(body)
  }

  /// How many probes' base projections one gradient pass forms (a pass costs about one probe; the projections
  /// one sign-flipped sum over the weights each).
  public static var baseProjectionBatch: Int { 64 }

  /// ⟨v_k, ∇L(W)⟩ per layer for probe `k` of `trace`, from the batch that holds it (formed when it is not).
  func baseProjections(_ trace: HutchinsonTrace, probe k: Int, firstWords words: [Int]) throws -> [Double] {
    if let b = probeBase, b.seed == trace.seed, b.first <= k, k < b.first + b.values.count { return b.values[k - b.first] }
    let count = max(1, min(Self.baseProjectionBatch, trace.settings.maximumProbes - k))
    var values = [[Double]](repeating: [Double](repeating: 0, count: weightNames.count), count: count)
    let layerIndex = self.layerIndex
    try model.gradients(tokens: hvpTokens, of: Set(weightNames)) { name, g in
      let i = layerIndex[name]!
      for p in 0..<count {
        if Scalar.self == Float.self {
          values[p][i] = trace.probeDot(k + p, block: i, firstWord: words[i], with: UnsafeRawBufferPointer(g).bindMemory(to: Float.self))
        } else {
          var signs = [Float](repeating: 0, count: g.count)
          signs.withUnsafeMutableBufferPointer { trace.streamedProbe(k + p).fill(block: i, into: $0) }
          values[p][i] = zip(signs, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
      }
    }
    probeBase = (trace.seed, k, values)
    return values[0]
  }

  /// The layer's captured calibration inputs `X` `[tokens, in]`; for the embedding of a tied model the LM head's
  /// inputs, the final-norm hidden states `[tokens, hidden]`.
  /// - Throws: `MeasureError.badSettings` for the embedding of an untied model (a lookup only: it has no inputs).
  public func layerInputs(of layer: Int) throws -> (values: [Float], rows: Int) {
    let head = includesTokenEmbedding && model.configuration.tied
    if includesTokenEmbedding && layer == linearLayers.count - 1 && !head {
      throw MeasureError(.badSettings, "the untied token embedding is a lookup only; it has no captured inputs")
    }
    if capturedInputs == nil {
      var captured = [[Float]](repeating: [], count: linearLayers.count)
      var index = Dictionary(uniqueKeysWithValues: linearLayers.enumerated().map { ($0.element.name, $0.offset) })
      var names = Set(model.linearLayers.map(\.name))
      if head {
        // the tied table's projection use: the LM head's inputs, filed under the embedding layer
        index[LlamaModel<Scalar>.lmHeadSlot] = linearLayers.count - 1
        names.insert(LlamaModel<Scalar>.lmHeadSlot)
      }
      _ = try model.captureInputs(tokens: calibrationTokens, layers: names) { layer, x in
        captured[index[layer.name]!] = Self.floats(x.storage)
      }
      capturedInputs = captured
    }
    return (capturedInputs![layer], calibrationTokens.count)
  }

  /// The calibration tokens' lookups of the embedding layer (also a projection when the model is tied); `nil`
  /// for a linear layer.
  public func tableLookup(of layer: Int) throws -> TableLookup? {
    guard includesTokenEmbedding && layer == linearLayers.count - 1 else { return nil }
    return try TableLookup(
      tokens: calibrationTokens, rows: model.configuration.vocab, isAlsoProjection: model.configuration.tied)
  }

  /// Drops the cached base gradient and the engine's workspace (activations, perturbed weights): about two copies
  /// of the weights, unused by the per-layer stage and the audit (`hessianBaseGradient` recomputes the gradient
  /// if a product is asked for again).
  public func releaseCurvatureState() {
    baseGradient = nil
    model.releaseWorkspace()
  }

  /// The gradient at the unperturbed weights over the Hessian window (computed once).
  func hessianBaseGradient() throws -> [String: [Scalar]] {
    if let baseGradient { return baseGradient }
    let g = try model.gradients(tokens: hvpTokens, of: Set(weightNames)).gradients
    baseGradient = g
    return g
  }

  /// `[Scalar]` as `[Float]`: the same array when `Scalar` is `Float` (no copy), converted otherwise.
  static func floats(_ x: [Scalar]) -> [Float] {
    if Scalar.self == Float.self { return unsafeBitCast(x, to: [Float].self) }
    return x.map { Float($0) }
  }

  /// `[Float]` as `[Scalar]`: the same array when `Scalar` is `Float`, converted otherwise.
  static func scalars(_ x: [Float]) -> [Scalar] {
    if Scalar.self == Float.self { return unsafeBitCast(x, to: [Scalar].self) }
    return x.map { Scalar($0) }
  }
}
