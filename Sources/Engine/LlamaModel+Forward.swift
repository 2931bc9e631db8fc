import TensorCore

/// The forward pass (internal; the public entry points are in `LlamaModel+API.swift`).
extension LlamaModel {
  /// Called with each linear layer's input [T, in] as the forward pass reaches it: (index into `linearLayers`,
  /// base address, rows, columns), and last with the LM head's input, the final-norm hidden states [T, d], under
  /// index `linearLayers.count`. The pointer is valid only during the call.
  typealias InputObserver = (Int, UnsafePointer<Scalar>, Int, Int) -> Void

  /// Runs the window through the model and fills a cache.
  /// - Parameters:
  ///   - keepActivations: keep every block's activations (for a backward pass) or reuse one block's buffers.
  ///   - perturbation: use W + εV for the linear weights V names (HVP by central differences).
  ///   - observer: sees every linear layer's input (capture hooks).
  ///   - logitsObserver: sees the logits [T−1, V] before they are turned into probabilities in place.
  ///   - resume: start at block `block` with `state` [T, d] as its residual input instead of embedding the tokens
  ///     (blocks before it are skipped; `block == layers` runs only the final norm and the head). See
  ///     `LlamaModel+Resume.swift`.
  ///   - blockInputObserver: sees each block's residual input [T, d] (index `layers`: the final hidden state).
  ///   - probabilities: leave the softmax in `cache.probabilities` (for a backward pass or a caller that reads
  ///     them); without it the buffer keeps the logits and only the NLLs are formed (the same NLLs).
  /// - Complexity: O(T·P) for P parameters, plus O(T²·d) attention; every product is a GEMM.
  func runForward(
    tokens: [Int], keepActivations: Bool, perturbation: WeightPerturbation<Scalar>? = nil,
    observer: InputObserver? = nil, logitsObserver: ((UnsafePointer<Scalar>) -> Void)? = nil,
    resume: (block: Int, state: UnsafePointer<Scalar>)? = nil, blockInputObserver: ((Int, UnsafePointer<Scalar>) -> Void)? = nil,
    probabilities: Bool = true
  ) -> ForwardCache<Scalar> {
    let c = configuration
    let cache: ForwardCache<Scalar>
    if let i = workspace.firstIndex(where: { $0.fits(count: tokens.count, keepsActivations: keepActivations) }) {
      cache = workspace.remove(at: i)
      cache.reset(tokens: tokens)
    } else {
      workspace.removeAll { $0.keepsActivations == keepActivations }
      cache = ForwardCache(tokens: tokens, configuration: c, keepsActivations: keepActivations)
    }
    defer { workspace.append(cache) }
    let (t, d, f) = (tokens.count, c.hidden, c.intermediate)
    // the seam (`LlamaModel+Operators.swift`): one array read per linear layer; all nil unless Scalar == Float
    let operators = linearOperators

    // x₀[t] = E[token_t] (E + εV when an HVP perturbs the embedding)
    let x0 = cache.residual(resume?.block ?? 0).pointer
    if let resume {
      x0.update(from: resume.state, count: tokens.count * d)
    } else if let source = embeddingSource {
      source.rows(tokens, into: Self.floats(x0))
    } else if let perturbation, perturbation.streamsTable {
      // E[token] + εv[token], formed row by row: the streamed direction never forms the whole table
      let (stored, count) = (readable(embedding, Self.embeddingWeightName), valueCount(Self.embeddingWeightName))
      for (i, token) in tokens.enumerated() {
        perturbation.tableRow(stored, row: token, columns: d, tableCount: count, into: x0 + i * d)
      }
    } else {
      let stored = readable(embedding, Self.embeddingWeightName)
      let table = perturbation?.effective(stored, count: valueCount(Self.embeddingWeightName), name: Self.embeddingWeightName) ?? stored
      for (i, token) in tokens.enumerated() { (x0 + i * d).update(from: table + token * d, count: d) }
    }

    for (l, block) in blocks.enumerated() where l >= resume?.block ?? 0 {
      blockInputObserver?(l, cache.residual(l).constant)
      let a = cache.block(l)
      let (x, next) = (cache.residual(l).constant, cache.residual(l + 1).pointer)
      let weight = { (kind: LinearKind) -> UnsafePointer<Scalar> in
        let name = block.linearNames[kind.rawValue]
        let w = self.readable(block.linear[kind.rawValue], name)
        return perturbation?.effective(w, count: c.linearShapes[kind.rawValue].1.reduce(1, *), name: name) ?? w
      }
      // y[T,out] = x[T,in] · W[out,in]ᵀ
      func linear(_ kind: LinearKind, _ input: UnsafePointer<Scalar>, _ output: UnsafeMutablePointer<Scalar>, accumulate: Bool = false) {
        let shape = c.linearShapes[kind.rawValue].1
        observer?(l * 7 + kind.rawValue, input, t, shape[1])
        if let op = operators[l * 7 + kind.rawValue] {
          op.apply(Self.floats(input), tokens: t, into: Self.floats(output), accumulate: accumulate)
          return
        }
        if perturbation == nil, packedProduct(
          block.linear[kind.rawValue], block.linearNames[kind.rawValue], rows: shape[0], columns: shape[1], input,
          tokens: t, output, ldy: shape[0], accumulate: accumulate)
        {
          return
        }
        if perturbation != nil, t <= BLAS.packedBlockRows, panelProduct(
          weight(kind), rows: shape[0], columns: shape[1], ldw: shape[1], input, tokens: t, output, ldy: shape[0],
          accumulate: accumulate)
        {
          return
        }
        Scalar.gemm(
          transposeA: false, transposeB: true, m: t, n: shape[0], k: shape[1], alpha: 1, a: input, lda: shape[1],
          b: weight(kind), ldb: shape[1], beta: accumulate ? 1 : 0, c: output, ldc: shape[0])
      }

      // attention half: n₁ = RMSNorm(x), q,k,v projections, RoPE, causal GQA, o_proj into the residual
      RMSNorm.forward(
        x: x, gamma: block.inputNorm.constant, rows: t, n: d, epsilon: c.rmsEps, y: a.inputNormed.pointer,
        inverseRMS: a.inputInverseRMS.pointer)
      linear(.q, a.inputNormed.constant, a.q.pointer)
      linear(.k, a.inputNormed.constant, a.k.pointer)
      linear(.v, a.inputNormed.constant, a.v.pointer)
      cache.rope.apply(a.q.pointer, rows: t, heads: c.heads)
      cache.rope.apply(a.k.pointer, rows: t, heads: c.kvHeads)
      CausalAttention.forward(
        q: a.q.constant, k: a.k.constant, v: a.v.constant, tokens: t, heads: c.heads, kvHeads: c.kvHeads,
        headDim: c.headDim, probabilities: a.probabilities.pointer, output: a.attention.pointer)
      a.middle.pointer.update(from: x, count: t * d)
      linear(.o, a.attention.constant, a.middle.pointer, accumulate: true)

      // MLP half: n₂ = RMSNorm(x_mid), h = silu(n₂W_gᵀ) ⊙ n₂W_uᵀ, x_next = x_mid + h W_dᵀ
      RMSNorm.forward(
        x: a.middle.constant, gamma: block.postNorm.constant, rows: t, n: d, epsilon: c.rmsEps,
        y: a.postNormed.pointer, inverseRMS: a.postInverseRMS.pointer)
      linear(.gate, a.postNormed.constant, a.gate.pointer)
      linear(.up, a.postNormed.constant, a.up.pointer)
      SwiGLU.forward(gate: a.gate.constant, up: a.up.constant, count: t * f, output: a.hidden.pointer)
      next.update(from: a.middle.constant, count: t * d)
      linear(.down, a.hidden.constant, next, accumulate: true)
    }

    // final norm, LM head on the T − 1 positions that predict a token, softmax cross-entropy
    blockInputObserver?(c.layers, cache.residual(c.layers).constant)
    RMSNorm.forward(
      x: cache.residual(c.layers).constant, gamma: finalNorm.constant, rows: t, n: d, epsilon: c.rmsEps,
      y: cache.finalNormed.pointer, inverseRMS: cache.finalInverseRMS.pointer)
    observer?(linearLayers.count, cache.finalNormed.constant, t, d)
    if let op = lmHeadOperator {
      op.apply(Self.floats(cache.finalNormed.constant), tokens: t - 1, into: Self.floats(cache.probabilities.pointer), accumulate: false)
    } else {
      forEachHeadChunk(perturbation) { rows, table in
        if panelProduct(
          table, rows: rows.count, columns: d, ldw: d, cache.finalNormed.constant, tokens: t - 1,
          cache.probabilities.pointer + rows.lowerBound, ldy: c.vocab, accumulate: false)
        {
          return
        }
        Scalar.gemm(
          transposeA: false, transposeB: true, m: t - 1, n: rows.count, k: d, alpha: 1, a: cache.finalNormed.constant,
          lda: d, b: table, ldb: d, beta: 0, c: cache.probabilities.pointer + rows.lowerBound, ldc: c.vocab)
      }
    }
    logitsObserver?(cache.probabilities.constant)
    cache.nll = CrossEntropy.forward(
      logits: cache.probabilities.pointer, targets: tokens[1...], rows: t - 1, vocab: c.vocab,
      probabilities: probabilities)
    return cache
  }

  /// Tensor name of the token embedding (for a tied model also the LM head's table).
  public static var embeddingWeightName: String { "model.embed_tokens.weight" }

  /// Tensor name of the LM head's table: `lm_head.weight`, or the embedding for a tied model.
  var lmHeadWeightName: String { configuration.tied ? Self.embeddingWeightName : "lm_head.weight" }

  /// The LM head's table as the pass reads it: W + εV when `perturbation` moves it, else the weights.
  func effectiveLMHead(_ perturbation: WeightPerturbation<Scalar>?) -> UnsafePointer<Scalar> {
    let stored = readable(lmHead, lmHeadWeightName)
    return perturbation?.effective(stored, count: valueCount(lmHeadWeightName), name: lmHeadWeightName) ?? stored
  }

  /// Calls `body` with the LM head's table as the pass reads it (`effectiveLMHead`): once with every row, or, when a
  /// streamed perturbation moves the tied table, with E + εV for consecutive row ranges of `tableChunkRows` rows
  /// (formed a chunk at a time, `WeightPerturbation.tableChunk`), so that no perturbed copy of the table exists.
  func forEachHeadChunk(_ perturbation: WeightPerturbation<Scalar>?, _ body: (Range<Int>, UnsafePointer<Scalar>) -> Void) {
    let (v, d) = (configuration.vocab, configuration.hidden)
    guard configuration.tied, let perturbation, perturbation.streamsTable else {
      return body(0..<v, effectiveLMHead(perturbation))
    }
    let (stored, count) = (readable(lmHead, lmHeadWeightName), valueCount(lmHeadWeightName))
    let step = tableChunkRows
    for start in stride(from: 0, to: v, by: step) {
      let rows = start..<min(start + step, v)
      body(rows, perturbation.tableChunk(stored, rows: rows, columns: d, tableCount: count))
    }
  }

  /// Rows of the embedding table a streamed perturbation forms at a time: about `tableChunkElements` values,
  /// rounded down to a multiple of the rows that make a whole number of 2¹⁶-value sums (`chunkedDot`'s), so that a
  /// projection summed chunk by chunk has the bits of the whole table's.
  var tableChunkRows: Int {
    let d = configuration.hidden
    var (a, b) = (d, 1 << 16)
    while b != 0 { (a, b) = (b, a % b) }
    let aligned = (1 << 16) / a
    let rows = max(1, tableChunkElements / d)
    return rows >= aligned ? rows / aligned * aligned : rows
  }
}
