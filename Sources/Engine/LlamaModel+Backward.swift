import TensorCore

/// The hand-written backward pass (internal; public entry points in `LlamaModel+API.swift`).
///
/// Reverse of `runForward`, op by op; each op's own backward lives beside its forward (`RMSNorm`, `RoPE`,
/// `CausalAttention`, `SwiGLU`, `CrossEntropy`). For a linear layer y = x Wᵀ with upstream dy:
/// dx = dy W and dW = dyᵀ x. The residual stream's gradient dx [T,d] is accumulated in one buffer, block by block.
extension LlamaModel {
  /// Scratch for one block's backward pass, reused by every block.
  private struct Scratch {
    let dHidden, dUp, dNormed, dAttention, dq, dk, dv, dScores, dGamma: Buffer<Scalar>
    init(tokens t: Int, _ c: LlamaConfiguration) {
      let (qw, kvw) = (c.heads * c.headDim, c.kvHeads * c.headDim)
      dHidden = Buffer(count: t * c.intermediate)
      dUp = Buffer(count: t * c.intermediate)
      dNormed = Buffer(count: t * c.hidden)
      dAttention = Buffer(count: t * qw)
      dq = Buffer(count: t * qw)
      dk = Buffer(count: t * kvw)
      dv = Buffer(count: t * kvw)
      dScores = Buffer(count: CausalAttention.backwardScratchCount(tokens: t, heads: c.heads, headDim: c.headDim))
      dGamma = Buffer(count: c.hidden)
    }
  }

  /// Back-propagates the mean NLL of `cache` (which must keep activations; its probabilities are consumed) and
  /// writes the wanted parameter gradients into `sink`.
  /// - Parameter logitGradient: turns the probabilities [T−1, V] into ∂L/∂z in place for another loss than the
  ///   mean NLL (distillation, `LlamaModel+Distillation.swift`); nil: the mean NLL's.
  /// - Returns: ∂L/∂x₀ [T, d], the gradient with respect to the embedded tokens.
  @discardableResult
  func runBackward(
    cache: ForwardCache<Scalar>, sink: GradientSink<Scalar>, perturbation: WeightPerturbation<Scalar>? = nil,
    logitGradient: ((UnsafeMutablePointer<Scalar>) -> Void)? = nil
  ) -> Buffer<Scalar> {
    precondition(cache.keepsActivations, "backward pass needs a cache that keeps activations")
    let c = configuration
    let (t, d, f, v) = (cache.count, c.hidden, c.intermediate, c.vocab)
    let s = Scratch(tokens: t, c)
    let dx = Buffer<Scalar>(count: t * d)

    // loss: L = (1/(T−1)) Σ NLL → dz = (softmax − onehot)/(T−1), in place over the probabilities
    let dLogits = cache.probabilities.pointer
    if let logitGradient {
      logitGradient(dLogits)
    } else {
      CrossEntropy.backward(
        probabilities: dLogits, targets: cache.tokens[1...], rows: t - 1, vocab: v, scale: 1 / Scalar(t - 1))
    }
    // LM head z = n_F Eᵀ: dn_F = dz E (row T−1 predicts nothing: stays 0), dE = dzᵀ n_F
    let dFinal = s.dNormed
    dFinal.zero()
    // (a streamed perturbation of the tied table gives it in row chunks: dn_F is then their sum, k chunk by chunk)
    forEachHeadChunk(perturbation) { rows, table in
      Scalar.inputGradient(
        m: t - 1, n: d, k: rows.count, a: dLogits + rows.lowerBound, lda: v, b: table, ldb: d,
        beta: rows.lowerBound == 0 ? 0 : 1, c: dFinal.pointer, ldc: d)
    }
    // G[rows] (α,β)= dz[:, rows]ᵀ n_F. For a tied model this is formed at the end, with the lookup's rows, as one
    // contribution (a streaming sink takes exactly one per tensor); dz is not overwritten before then.
    let headGradient = { (rows: Range<Int>, g: UnsafeMutablePointer<Scalar>, alpha: Scalar, beta: Scalar) in
      Scalar.weightGradient(
        m: rows.count, n: d, k: t - 1, alpha: alpha, a: dLogits + rows.lowerBound, lda: v,
        b: cache.finalNormed.constant, ldb: d, beta: beta, c: g, ldc: d, streaming: sink.storesArrays)
    }
    if !c.tied { sink.contribute("lm_head.weight", count: v * d) { g, alpha, beta in headGradient(0..<v, g, alpha, beta) } }
    rmsNormBackward(
      x: cache.residual(c.layers), gamma: finalNorm, inverseRMS: cache.finalInverseRMS, dy: dFinal, dx: dx,
      rows: t, name: "model.norm.weight", sink: sink, scratch: s.dGamma)

    for (l, block) in blocks.enumerated().reversed() {
      let a = cache.block(l)
      let weight = { (kind: LinearKind) -> UnsafePointer<Scalar> in
        let name = block.linearNames[kind.rawValue]
        let w = self.readable(block.linear[kind.rawValue], name)
        return perturbation?.effective(w, count: c.linearShapes[kind.rawValue].1.reduce(1, *), name: name) ?? w
      }
      // for y = x Wᵀ: dx (+)= dy W  [T,in] and dW = dyᵀ x  [out,in]: the same flops, run side by side, each whole
      // on one of two workers (`Parallel.sideBySide`), rather than each cut in two; a product's bits do not depend
      // on how it is cut (analysis.md, sixteenth session: a 512-token forward + backward 1.738–1.752 → 1.695–1.710 s,
      // ~2% at 128 tokens)
      func linearBackward(_ kind: LinearKind, dy: UnsafePointer<Scalar>, x: Buffer<Scalar>, dx: Buffer<Scalar>, accumulate: Bool) {
        let shape = c.linearShapes[kind.rawValue].1
        let (out, inp, w) = (shape[0], shape[1], weight(kind))
        let inputGradient = {
          Scalar.inputGradient(
            m: t, n: inp, k: out, a: dy, lda: out, b: w, ldb: inp, beta: accumulate ? 1 : 0, c: dx.pointer, ldc: inp)
        }
        var formed = false
        sink.contribute(block.linearNames[kind.rawValue], count: out * inp) { g, alpha, beta in
          Parallel.sideBySide(inputGradient) {
            Scalar.weightGradient(
              m: out, n: inp, k: t, alpha: alpha, a: dy, lda: out, b: x.constant, ldb: inp, beta: beta, c: g, ldc: inp,
              streaming: sink.storesArrays)
          }
          formed = true
        }
        if !formed { inputGradient() }
      }

      // MLP half: x_next = x_mid + down(silu(gate(n₂)) ⊙ up(n₂)), n₂ = RMSNorm(x_mid); dx holds ∂L/∂x_next
      linearBackward(.down, dy: dx.constant, x: a.hidden, dx: s.dHidden, accumulate: false)
      SwiGLU.backward(
        gate: a.gate.constant, up: a.up.constant, dh: s.dHidden.constant, count: t * f, dGate: s.dHidden.pointer,
        dUp: s.dUp.pointer)
      linearBackward(.gate, dy: s.dHidden.constant, x: a.postNormed, dx: s.dNormed, accumulate: false)
      linearBackward(.up, dy: s.dUp.constant, x: a.postNormed, dx: s.dNormed, accumulate: true)
      rmsNormBackward(
        x: a.middle, gamma: block.postNorm, inverseRMS: a.postInverseRMS, dy: s.dNormed, dx: dx, rows: t,
        name: block.postNormName, sink: sink, scratch: s.dGamma)

      // attention half: x_mid = x + o_proj(attention(rope(q(n₁)), rope(k(n₁)), v(n₁))), n₁ = RMSNorm(x)
      linearBackward(.o, dy: dx.constant, x: a.attention, dx: s.dAttention, accumulate: false)
      CausalAttention.backward(
        q: a.q.constant, k: a.k.constant, v: a.v.constant, probabilities: a.probabilities.constant,
        dOutput: s.dAttention.constant, tokens: t, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
        dq: s.dq.pointer, dk: s.dk.pointer, dv: s.dv.pointer, scratch: s.dScores.pointer)
      cache.rope.apply(s.dq.pointer, rows: t, heads: c.heads, inverse: true)
      cache.rope.apply(s.dk.pointer, rows: t, heads: c.kvHeads, inverse: true)
      linearBackward(.q, dy: s.dq.constant, x: a.inputNormed, dx: s.dNormed, accumulate: false)
      linearBackward(.k, dy: s.dk.constant, x: a.inputNormed, dx: s.dNormed, accumulate: true)
      linearBackward(.v, dy: s.dv.constant, x: a.inputNormed, dx: s.dNormed, accumulate: true)
      rmsNormBackward(
        x: cache.residual(l), gamma: block.inputNorm, inverseRMS: a.inputInverseRMS, dy: s.dNormed, dx: dx,
        rows: t, name: block.inputNormName, sink: sink, scratch: s.dGamma)
    }

    // embedding x₀[t] = E[token_t]: dE[token_t] += dx₀[t] (tied: after the head's dzᵀ n_F, which applies β); given
    // whole, or in row chunks to a sink that projects them (`GradientSink.contributeRows`)
    sink.contributeRows(Self.embeddingWeightName, rows: v, columns: d, chunkRows: tableChunkRows) { rows, g, alpha, beta in
      if c.tied {
        headGradient(rows, g, alpha, beta)
      } else if beta != 1 {
        for i in 0..<(rows.count * d) { g[i] = beta == 0 ? 0 : beta * g[i] }
      }
      for (i, token) in cache.tokens.enumerated() where rows.contains(token) {
        let (row, src) = (g + (token - rows.lowerBound) * d, dx.constant + i * d)
        for j in 0..<d { row[j] += alpha * src[j] }
      }
    }
    return dx
  }

  /// RMSNorm backward into the residual gradient `dx` (accumulating) and, if wanted, its weight's gradient.
  private func rmsNormBackward(
    x: Buffer<Scalar>, gamma: Buffer<Scalar>, inverseRMS: Buffer<Scalar>, dy: Buffer<Scalar>, dx: Buffer<Scalar>,
    rows: Int, name: String, sink: GradientSink<Scalar>, scratch: Buffer<Scalar>
  ) {
    let wanted = sink.wanted.contains(name)
    RMSNorm.backward(
      x: x.constant, gamma: gamma.constant, inverseRMS: inverseRMS.constant, dy: dy.constant, rows: rows,
      n: gamma.count, dx: dx.pointer, dgamma: wanted ? scratch.pointer : nil)
    if wanted { sink.contribute(name, vector: scratch.constant, count: gamma.count) }
  }
}
