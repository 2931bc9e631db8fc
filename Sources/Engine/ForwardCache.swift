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
/// linear weight that `v` names, and the model's weights are never modified.
///
/// Two forms:
/// - dense (`direction`): W + εV is formed once per weight and pass pair, on first use, into a buffer of the
///   model's `PerturbedWeights` pool, so the backward pass reads what the forward pass formed (one sweep over the
///   weights per perturbation instead of two); the pool holds up to one copy of the weights.
/// - streamed (`StreamedVector`): v is regenerated block by block when a pass reaches the weight, and W + εV formed
///   beside it in two layer-sized buffers that the next weight reuses. The embedding table is never formed whole:
///   the lookup forms the rows of its tokens (`tableRow`), and the tied head, its backward product and the
///   projection of its gradient form `[rows, hidden]` chunks of the table in a pair of their own (`tableChunk`,
///   `tableDirection`). A forward + backward pair forms most weights twice, so no model-sized vector or perturbed
///   copy ever exists, and nothing of the table's size besides the table.
/// No second perturbation of the same model may be in use at the same time.
final class WeightPerturbation<S: EngineScalar> {
  let direction: [String: [S]]
  let epsilon: S
  private let pool: PerturbedWeights<S>
  private var formed: Set<String> = []
  /// The streamed direction and the names it covers (nil: dense form).
  private let streamed: (vector: StreamedVector<S>, names: Set<String>)?
  /// The streamed weight whose v and W + εV the rotating pair holds now.
  private var current: String?

  init(direction: [String: [S]], epsilon: S, pool: PerturbedWeights<S>) {
    self.direction = direction
    self.epsilon = epsilon
    self.pool = pool
    streamed = nil
  }

  /// A perturbation along a direction regenerated block by block (see the type).
  init(streaming vector: StreamedVector<S>, epsilon: S, pool: PerturbedWeights<S>) {
    direction = [:]
    self.epsilon = epsilon
    self.pool = pool
    streamed = (vector, Set(vector.names))
  }

  /// Pointer to W + ε·V for `name`, or to W itself if the direction has no block for it. Valid until another
  /// perturbation of the same model is used, and in the streamed form until the next weight is formed.
  /// - Parameters:
  ///   - w: the weight's values as the pass reads them, `count` of them.
  func effective(_ w: UnsafePointer<S>, count: Int, name: String) -> UnsafePointer<S> {
    if streamed != nil {
      precondition(name != LlamaModel<S>.embeddingWeightName || !streamsTable, "the streamed table is formed by rows")
      guard let slots = formStreamed(w, count: count, name: name) else { return w }
      return slots.perturbed.constant
    }
    guard let v = direction[name] else { return w }
    let out = pool.buffer(name, count: count)
    if formed.insert(name).inserted {
      let (target, base, step) = (out.pointer, w, epsilon)
      v.withUnsafeBufferPointer { vp in
        Parallel.forEachChunk(count) { range in
          for i in range { target[i] = base[i] + step * vp[i] }
        }
      }
    }
    return out.constant
  }

  /// The streamed direction's block for `name` when it is the one formed last (the weight whose gradient the
  /// backward pass has just formed), or nil when it is not, the direction has no such block or is dense. Never the
  /// embedding's (`tableDirection`).
  func streamedDirection(name: String) -> UnsafePointer<S>? {
    guard let (_, names) = streamed, names.contains(name), current == name else { return nil }
    return pool.streamingPair(embedding: false, count: 0).direction.constant
  }

  /// Whether the direction is streamed and has a block for the token embedding: then the passes form the table's
  /// rows as they need them (`tableRow`, `tableChunk`), never the whole table.
  var streamsTable: Bool {
    streamed?.names.contains(LlamaModel<S>.embeddingWeightName) ?? false
  }

  /// E[row] + εv[row] (`columns` values) into `out`, for the streamed table.
  func tableRow(_ table: UnsafePointer<S>, row: Int, columns: Int, tableCount: Int, into out: UnsafeMutablePointer<S>) {
    let v = tableDirection(rows: row..<(row + 1), columns: columns, tableCount: tableCount)
    let (base, step) = (table + row * columns, epsilon)
    for j in 0..<columns { out[j] = base[j] + step * v[j] }
  }

  /// E + εV over the table rows `rows` (`[rows.count, columns]`, in the pool's chunk pair; valid until the next
  /// chunk or row is formed). The same values, element by element, as the whole table formed at once.
  func tableChunk(_ table: UnsafePointer<S>, rows: Range<Int>, columns: Int, tableCount: Int) -> UnsafePointer<S> {
    let count = rows.count * columns
    let v = tableDirection(rows: rows, columns: columns, tableCount: tableCount)
    let out = pool.streamingPair(embedding: true, count: count).perturbed.pointer
    let (base, step) = (table + rows.lowerBound * columns, epsilon)
    Parallel.forEachChunk(count) { range in
      for i in range { out[i] = base[i] + step * v[i] }
    }
    return UnsafePointer(out)
  }

  /// v's table rows `rows` regenerated into the pool's chunk pair (valid until the next chunk or row is formed).
  func tableDirection(rows: Range<Int>, columns: Int, tableCount: Int) -> UnsafePointer<S> {
    let (vector, _) = streamed!
    let count = rows.count * columns
    let direction = pool.streamingPair(embedding: true, count: count).direction.pointer
    vector.fill(
      LlamaModel<S>.embeddingWeightName, offset: rows.lowerBound * columns, blockCount: tableCount,
      into: UnsafeMutableBufferPointer(start: direction, count: count))
    return UnsafePointer(direction)
  }

  /// Forms v and W + εV for `name` in the pool's streaming buffers, unless they already hold them.
  private func formStreamed(_ w: UnsafePointer<S>, count: Int, name: String) -> (direction: Buffer<S>, perturbed: Buffer<S>)? {
    guard let (vector, names) = streamed, names.contains(name) else { return nil }
    let slots = pool.streamingPair(embedding: false, count: count)
    if current == name { return slots }
    let v = UnsafeMutableBufferPointer(start: slots.direction.pointer, count: count)
    vector.fill(name, v)
    let (target, base, step, direction) = (slots.perturbed.pointer, w, epsilon, slots.direction.pointer)
    Parallel.forEachChunk(count) { range in
      for i in range { target[i] = base[i] + step * direction[i] }
    }
    current = name
    return slots
  }
}

/// Buffers for perturbed weights, one per linear weight an HVP has moved, kept by the model between products so
/// that probes do not page-fault fresh memory (425 MB for every linear weight of SmolLM2; freed by
/// `LlamaModel.releaseWorkspace()`); and the streamed form's two pairs of layer-sized buffers.
final class PerturbedWeights<S: EngineScalar> {
  private var buffers: [String: Buffer<S>] = [:]
  /// (v, W + εV) for the streamed linear weights, and for chunks of the embedding's rows; each grown to the
  /// largest request.
  private var pairs: [(direction: Buffer<S>, perturbed: Buffer<S>)?] = [nil, nil]

  func buffer(_ name: String, count: Int) -> Buffer<S> {
    if let b = buffers[name], b.count == count { return b }
    let b = Buffer<S>(count: count)
    buffers[name] = b
    return b
  }

  /// The streamed form's pair for the embedding's chunks or for the linear weights, holding at least `count`
  /// values.
  func streamingPair(embedding: Bool, count: Int) -> (direction: Buffer<S>, perturbed: Buffer<S>) {
    let slot = embedding ? 1 : 0
    if let pair = pairs[slot], pair.direction.count >= count { return pair }
    let pair = (Buffer<S>(count: count), Buffer<S>(count: count))
    pairs[slot] = pair
    return pair
  }
}
