/// What a measurement run needs from a model, its calibration data and its quantizer.
///
/// The engine-backed implementation lives with the command line; tests use small quadratic models with exact
/// Hessians. Layers and candidates are addressed by index into `linearLayers` and `candidates`; weights, gradients,
/// probes and products are `[Float]` per layer, `[out, in]` row-major. Every method may throw (a cancellation, an
/// engine failure); the run stops there and resumes from its last checkpoint.
public protocol SensitivityModel {
  /// The linear layers to measure, in a stable order, by Hugging Face module path with shape `[out, in]`.
  var linearLayers: [MeasuredRun.Layer] { get }
  /// The candidate formats, in column order.
  var candidates: [MeasuredRun.Candidate] { get }
  /// Number of calibration windows the Fisher gradient is averaged over (at least 1).
  var calibrationWindowCount: Int { get }

  /// The layer's weights `W`, `[out, in]`.
  func weights(of layer: Int) throws -> [Float]
  /// `∇_W` of the mean NLL of calibration window `window`, for every layer.
  func gradient(window: Int) throws -> [[Float]]
  /// The same `∇_W` handed to `consume(layer, block)` once per layer, in any order, each block valid only during the
  /// call (so a model can stream it from its backward pass without storing a model-sized gradient). The default
  /// calls `gradient(window:)`.
  func gradient(window: Int, consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws
  /// `H v` for the Hessian `H` of the mean NLL over the first `--hvp-tokens` tokens, for every layer.
  func hessianVectorProduct(_ v: [[Float]]) throws -> [[Float]]
  /// The same `H v` handed to `consume(layer, (Hv)_layer)` once per layer, in any order, each block valid only
  /// during the call (so a model can stream it without storing a model-sized product). The default calls
  /// `hessianVectorProduct(_:)`.
  func hessianVectorProduct(_ v: [[Float]], consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws
  /// Probe `index` of `trace`: `vᵢᵀ(Hv)ᵢ` per layer, in layer order. The default draws the whole probe
  /// (`trace.probe(index)`), takes `hessianVectorProduct(_:consume:)` and reduces each block as it comes
  /// (`HutchinsonTrace.accumulate`: the numbers `HutchinsonTrace.record(probe:streaming:)` records); the engine-backed
  /// model regenerates the probe a block at a time instead, so that no model-sized vector is held.
  func hutchinsonSample(of trace: HutchinsonTrace, probe index: Int) throws -> [Double]
  /// `H v` for a Hutchinson probe, handed to `consume(layer, v_layer, (Hv)_layer)` once per layer, in any order, v's
  /// block beside the product's (for the diagonal `Σ v ⊙ Hv`; both valid only during the call). The default forms
  /// the whole probe in `workspace` (kept between calls, 425 MB on SmolLM2) and calls
  /// `hessianVectorProduct(_:consume:)` (`denseHessianVectorProduct`); the engine-backed model regenerates each
  /// block when its passes reach the layer instead, with the same numbers.
  func hessianVectorProduct(
    probe: HutchinsonTrace.Probe, workspace: inout [[Float]],
    consume: (Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void
  ) throws
  /// The layer's captured inputs `X`, `[rows, in]` row-major (one row per calibration token). For an embedding
  /// table (`tableLookup(of:)` non-nil) only called when it is also a projection (a tied LM head): its inputs.
  func layerInputs(of layer: Int) throws -> (values: [Float], rows: Int)
  /// For a layer that is a token-embedding table `[vocab, hidden]`: how the calibration tokens read its rows (its
  /// output error and input trace then count the lookup, plus the projection when it is also the LM head). `nil`
  /// for a linear layer; the default.
  func tableLookup(of layer: Int) throws -> TableLookup?
  /// `Q(W)` dequantized, with its exact byte size and the range calibration chosen (the best for this layer);
  /// `nil` when the format does not fit the layer's shape.
  func quantize(layer: Int, candidate: Int) throws -> QuantizedWeights?
  /// Mean NLL over the model's evaluation tokens (held-out text for the audit; the engine-backed model documents
  /// which), and the mean KL divergence of the next-token distributions from the unmodified model's, with
  /// `layer`'s weights replaced by `weights` (both `nil`: the unmodified model, KLD 0).
  func evaluate(replacing layer: Int?, with weights: [Float]?) throws -> (meanNLL: Double, meanKLD: Double)
  /// Mean NLL of the unmodified model on `text`.
  func baselineNLL(on text: ScoredText) throws -> Double
  /// Mean NLL on `text` and the mean KL divergence of the next-token distributions from the unmodified model's, with
  /// only `layer` quantized to `candidate`; `nil` when the format does not fit the layer. The default quantizes
  /// (`quantize`) and calls `evaluate` for `.heldOut`, and throws for `.calibration`; the engine-backed model runs
  /// the layer packed and recomputes only the blocks from the changed one upward.
  func score(layer: Int, candidate: Int, on text: ScoredText) throws -> (meanNLL: Double, meanKLD: Double)?

  /// Frees what only the Fisher and Hessian stages use (cached gradients, perturbation buffers); the per-layer
  /// stage calls it before it starts. Later calls of any method must still work (recomputing what they need).
  /// Default: nothing to free.
  func releaseCurvatureState()
}

extension SensitivityModel {
  public func tableLookup(of layer: Int) throws -> TableLookup? { nil }

  public func baselineNLL(on text: ScoredText) throws -> Double {
    guard text == .heldOut else { throw ScoredText.unsupported(text) }
    return try evaluate(replacing: nil, with: nil).meanNLL
  }

  public func score(layer: Int, candidate: Int, on text: ScoredText) throws -> (meanNLL: Double, meanKLD: Double)? {
    guard text == .heldOut else { throw ScoredText.unsupported(text) }
    guard let q = try quantize(layer: layer, candidate: candidate) else { return nil }
    return try evaluate(replacing: layer, with: q.weights)
  }

  public func releaseCurvatureState() {}

  public func gradient(window: Int, consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
    let g = try gradient(window: window)
    for i in g.indices { try g[i].withUnsafeBufferPointer { try consume(i, $0) } }
  }

  public func hutchinsonSample(of trace: HutchinsonTrace, probe index: Int) throws -> [Double] {
    let v = trace.probe(index)
    var values = [Double?](repeating: nil, count: v.count)
    try hessianVectorProduct(v) { i, hv in
      guard v.indices.contains(i), values[i] == nil, hv.count == v[i].count else {
        throw SensitivityError(.shapeMismatch, "Hessian-vector product: block \(i) of \(hv.count) values is out of place")
      }
      values[i] = v[i].withUnsafeBufferPointer { HutchinsonTrace.accumulate($0, hv, into: nil) }
    }
    if let i = values.firstIndex(where: { $0 == nil }) {
      throw SensitivityError(.shapeMismatch, "Hessian-vector product: block '\(trace.blocks[i].name)' was not handed over")
    }
    return values.map { $0! }
  }

  public func hessianVectorProduct(_ v: [[Float]], consume: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
    let hv = try hessianVectorProduct(v)
    for i in hv.indices { try hv[i].withUnsafeBufferPointer { try consume(i, $0) } }
  }

  public func hessianVectorProduct(
    probe: HutchinsonTrace.Probe, workspace: inout [[Float]],
    consume: (Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void
  ) throws {
    try denseHessianVectorProduct(probe: probe, workspace: &workspace, consume: consume)
  }

  /// The default `hessianVectorProduct(probe:workspace:consume:)`: the whole probe in `workspace`, then
  /// `hessianVectorProduct(_:consume:)` with each block of v handed over beside the product's.
  public func denseHessianVectorProduct(
    probe: HutchinsonTrace.Probe, workspace v: inout [[Float]],
    consume: (Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void
  ) throws {
    probe.dense(into: &v)
    let blocks = v
    try hessianVectorProduct(blocks) { i, hv in
      guard blocks.indices.contains(i) else {
        throw SensitivityError(.shapeMismatch, "Hessian-vector product: block \(i) of \(hv.count) values is out of place")
      }
      try blocks[i].withUnsafeBufferPointer { try consume(i, $0, hv) }
    }
  }
}

/// The text a single-layer score is measured on.
public enum ScoredText: Sendable, Equatable {
  /// The leading `tokens` calibration tokens (`--score-kld`, `/measured`).
  case calibration(tokens: Int)
  /// The held-out evaluation tokens of `evaluate` (the audit).
  case heldOut

  static func unsupported(_ text: ScoredText) -> SensitivityError {
    SensitivityError(.invalidArgument, "this model cannot score single layers on \(text)")
  }
}

/// One layer quantized to one candidate format and dequantized back.
public struct QuantizedWeights: Sendable, Equatable {
  /// `Q(W)` as `Float`, `[out, in]`.
  public var weights: [Float]
  /// Exact bytes of the layer in this format, scales and zero points included.
  public var bytes: Int
  /// Which range calibration produced it (recorded in `/calibration/method`).
  public var calibration: String
  /// Which quantizer chose the codes (`rtn`, `gptq`, `awq`; recorded in `/calibration/quantizer`).
  public var quantizer: String
  /// The layer's output error per token when it is not a function of ΔW alone: a format that also quantizes the
  /// layer's input (SmoothQuant's `w8a8`: ‖Q8tok(X·s⁻¹)·Q8ch(W·s)ᵀ − X·Wᵀ‖²_F / n). When set it replaces
  /// tr(ΔW G ΔWᵀ) as the candidate's `/error/output` and `output_error` proxy; nil: computed from `weights`.
  public var outputError: Double?

  /// A dequantized layer with its size, calibration and quantizer.
  public init(weights: [Float], bytes: Int, calibration: String, quantizer: String = "rtn", outputError: Double? = nil) {
    self.weights = weights
    self.bytes = bytes
    self.calibration = calibration
    self.quantizer = quantizer
    self.outputError = outputError
  }
}

/// The stages of a measurement, in the order they run.
public enum MeasurementStage: String, Sendable, CaseIterable, Codable {
  /// Mean NLL gradient over the calibration windows (Fisher trace and `fisher_diag`).
  case fisher
  /// Hutchinson probes (trace, standard error, diagonal).
  case hessian
  /// Per-layer top eigenvalue by power iteration (only with `eigenIterations > 0`).
  case eigenvalues
  /// Weight statistics, input trace, errors, bytes and proxies per layer and candidate.
  case layers
  /// Measured single-layer KLD and ΔNLL of every (layer, candidate) on calibration tokens (only with `kldTokens > 0`).
  case kld
  /// True ΔNLL and ΔKLD of single-layer quantizations (only with `auditCount > 0`).
  case audit
}
