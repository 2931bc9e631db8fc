import TensorCore

/// The activations of one window that the backward pass reads, kept once (no per-op copies).
///
/// Per block (T tokens, d hidden, F intermediate, H heads): x [T,d] (residual input), r₁ [T], n₁ [T,d],
/// q [T,H·D], k, v [T,G·D] (q and k after RoPE), P [H,T,T], o [T,H·D], x_mid [T,d], r₂ [T], n₂ [T,d],
/// g, u, h [T,F]. For SmolLM2 at T = 512 that is ~25 MB per block, ~0.75 GB for 30 blocks, plus the
/// [T−1, V] probabilities (100 MB). A loss-only pass (`keepsActivations == false`) reuses one block's buffers and two
/// residual buffers, so it needs ~40 MB besides the probabilities.
final class ForwardCache<S: EngineScalar> {
  /// Activations of one decoder block.
  struct BlockActivations {
    let inputInverseRMS, inputNormed, q, k, v, probabilities, attention: Buffer<S>
    let middle, postInverseRMS, postNormed, gate, up, hidden: Buffer<S>

    init(tokens t: Int, _ c: LlamaConfiguration) {
      let (d, f, qw, kvw) = (c.hidden, c.intermediate, c.heads * c.headDim, c.kvHeads * c.headDim)
      inputInverseRMS = Buffer(count: t)
      inputNormed = Buffer(count: t * d)
      q = Buffer(count: t * qw)
      k = Buffer(count: t * kvw)
      v = Buffer(count: t * kvw)
      probabilities = Buffer(count: c.heads * t * t)
      attention = Buffer(count: t * qw)
      middle = Buffer(count: t * d)
      postInverseRMS = Buffer(count: t)
      postNormed = Buffer(count: t * d)
      gate = Buffer(count: t * f)
      up = Buffer(count: t * f)
      hidden = Buffer(count: t * f)
    }
  }

  private(set) var tokens: [Int]
  let keepsActivations: Bool
  /// Residual stream: `residual[l]` is the input of block l, `residual[layers]` the final hidden state. In
  /// loss-only mode two buffers alternate (`residual(l)` resolves it).
  private let residuals: [Buffer<S>]
  private let blockBuffers: [BlockActivations]
  let finalInverseRMS: Buffer<S>
  let finalNormed: Buffer<S>
  /// After the forward pass: softmax probabilities [T−1, V] of the next-token predictions.
  let probabilities: Buffer<S>
  let rope: RoPE<S>
  /// NLL of tokens[1...] given their prefixes (filled by the forward pass).
  var nll: [Double] = []

  init(tokens: [Int], configuration c: LlamaConfiguration, keepsActivations: Bool) {
    let t = tokens.count
    self.tokens = tokens
    self.keepsActivations = keepsActivations
    residuals = (0..<(keepsActivations ? c.layers + 1 : 2)).map { _ in Buffer(count: t * c.hidden) }
    blockBuffers = (0..<(keepsActivations ? c.layers : 1)).map { _ in BlockActivations(tokens: t, c) }
    finalInverseRMS = Buffer(count: t)
    finalNormed = Buffer(count: t * c.hidden)
    probabilities = Buffer(count: (t - 1) * c.vocab)
    rope = RoPE(positions: t, headDim: c.headDim, theta: c.ropeTheta)
  }

  var count: Int { tokens.count }

  /// Whether this cache's buffers fit a window of `count` tokens with the same kind of pass.
  func fits(count: Int, keepsActivations keep: Bool) -> Bool { tokens.count == count && keepsActivations == keep }

  /// Reuses the buffers for another window of the same length. Every buffer the forward pass reads is written by
  /// it first, except the never-visible upper triangle of P, which stays zero from allocation.
  func reset(tokens: [Int]) {
    precondition(tokens.count == self.tokens.count, "cache for \(self.tokens.count) tokens reused for \(tokens.count)")
    self.tokens = tokens
    nll = []
  }

  /// Input of block `l` (l == layers: the final hidden state).
  func residual(_ l: Int) -> Buffer<S> { residuals[keepsActivations ? l : l % 2] }

  /// Activations of block `l`.
  func block(_ l: Int) -> BlockActivations {
    precondition(keepsActivations || blockBuffers.count == 1, "cache inconsistent")
    return blockBuffers[keepsActivations ? l : 0]
  }

  /// Mean NLL over the T − 1 predicted positions.
  var meanNLL: Double { nll.reduce(0, +) / Double(nll.count) }
}

/// A direction `v` in linear-weight space and a step ε: the forward and backward passes then use W + ε·V for every
/// linear weight that `v` names. W + εV is formed once per weight and pass pair, on first use, into a buffer of the
/// model's `PerturbedWeights` pool, so the backward pass reads what the forward pass formed (one sweep over the
/// weights per perturbation instead of two) and the model's weights are never modified: they are restored exactly,
/// and no second perturbation may be in use at the same time.
final class WeightPerturbation<S: EngineScalar> {
  let direction: [String: [S]]
  let epsilon: S
  private let pool: PerturbedWeights<S>
  private var formed: Set<String> = []

  init(direction: [String: [S]], epsilon: S, pool: PerturbedWeights<S>) {
    self.direction = direction
    self.epsilon = epsilon
    self.pool = pool
  }

  /// Pointer to W + ε·V for `name`, or to W itself if `direction` has no entry for it. Valid until another
  /// perturbation of the same model is used.
  func effective(_ w: Buffer<S>, name: String) -> UnsafePointer<S> {
    guard let v = direction[name] else { return w.constant }
    let out = pool.buffer(name, count: w.count)
    if formed.insert(name).inserted {
      let (target, base, step) = (out.pointer, w.pointer, epsilon)
      v.withUnsafeBufferPointer { vp in
        Parallel.forEachChunk(w.count) { range in
          for i in range { target[i] = base[i] + step * vp[i] }
        }
      }
    }
    return out.constant
  }
}

/// Buffers for perturbed weights, one per linear weight an HVP has moved, kept by the model between products so
/// that probes do not page-fault fresh memory (425 MB for every linear weight of SmolLM2; freed by
/// `LlamaModel.releaseWorkspace()`).
final class PerturbedWeights<S: EngineScalar> {
  private var buffers: [String: Buffer<S>] = [:]

  func buffer(_ name: String, count: Int) -> Buffer<S> {
    if let b = buffers[name], b.count == count { return b }
    let b = Buffer<S>(count: count)
    buffers[name] = b
    return b
  }
}
