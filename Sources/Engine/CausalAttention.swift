import TensorCore

/// Grouped-query causal self-attention (Ainslie et al. 2023; HF `LlamaAttention` with `repeat_kv`).
///
/// Shapes: q, o [T, H·D]; k, v [T, G·D] with G kv heads; query head h reads kv head h / (H/G).
/// Forward per head: S = q_h k_gᵀ / √D with S_ij = −∞ for j > i, P = softmax_rows(S), o_h = P v_g.
/// Backward (upstream do_h): dP = do_h v_gᵀ, dv_g += Pᵀ do_h, dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik) / √D,
/// dq_h = dS k_g, dk_g += dSᵀ q_h. The softmax Jacobian is diag(p) − p pᵀ per row, which gives the dS line.
///
/// `forward`/`backward` run their products (`EngineScalar.attentionProduct`: the 6 × 64 kernel on AVX-512 for
/// q·kᵀ, P·v, dO·vᵀ and dS·k, BLAS for the rest and elsewhere) in row blocks of `blockRows`, computing only columns
/// j < end of block, so the masked upper triangle costs ~blockRows/(2T) extra instead of 2x. The scores q·kᵀ are
/// formed unscaled and multiplied by 1/√D in the softmax (one rounding, as a GEMM's α would apply it). Both run
/// independent (head, block) tasks concurrently (`Parallel.forEach`), each with single-threaded GEMMs: one block is
/// too small to split well. Every task writes its own rows, and a kv head's gradient sums its query heads in a fixed
/// order, so results do not depend on scheduling. `forwardReference` is the plain triple loop.
package enum CausalAttention {
  /// Row-block height: a multiple of the GEMM kernels' tile, small enough that the masked waste is ~6% at T = 512.
  package static let blockRows = 64

  /// o = attention(q, k, v); stores the probabilities P [H, T, T] (row i has entries 0...i, zeros after).
  package static func forward<S: EngineScalar>(
    q: UnsafePointer<S>, k: UnsafePointer<S>, v: UnsafePointer<S>, tokens t: Int, heads: Int, kvHeads: Int,
    headDim d: Int, probabilities p: UnsafeMutablePointer<S>, output o: UnsafeMutablePointer<S>
  ) {
    let (qStride, kvStride, group) = (heads * d, kvHeads * d, heads / kvHeads)
    let scale = 1 / S(d).squareRoot()
    // one task per (head, row block), the longest (last) blocks first: 9 heads of equal cost left one of 2 workers
    // idle for a ninth of the attention; each block's values are computed exactly as in a loop over the heads
    let blocks = (t + blockRows - 1) / blockRows
    Parallel.forEach(heads * blocks) { task in
      let (h, block) = (task % heads, blocks - 1 - task / heads)
      let g = h / group
      let (qh, kg, vg, ph) = (q + h * d, k + g * d, v + g * d, p + h * t * t)
      let r0 = block * blockRows
      let r1 = min(r0 + blockRows, t), m = r1 - r0
      // S[r0..<r1, 0..<r1] = q_h[r0..<r1] k_g[0..<r1]ᵀ, scaled by 1/√D in the softmax
      S.attentionProduct(
        transposeA: false, transposeB: true, m: m, n: r1, k: d, a: qh + r0 * qStride, lda: qStride, b: kg,
        ldb: kvStride, accumulate: false, c: ph + r0 * t, ldc: t)
      for i in r0..<r1 { softmaxCausalRow(ph + i * t, visible: i + 1, written: r1, scale: scale) }
      // o_h[r0..<r1] = P[r0..<r1, 0..<r1] v_g[0..<r1]
      S.attentionProduct(
        transposeA: false, transposeB: false, m: m, n: d, k: r1, a: ph + r0 * t, lda: t, b: vg, ldb: kvStride,
        accumulate: false, c: o + h * d + r0 * qStride, ldc: qStride)
    }
  }

  /// In place: row[0..<visible] ← softmax(scale · row), row[visible..<written] ← 0.
  @inline(__always) static func softmaxCausalRow<S: EngineScalar>(
    _ row: UnsafeMutablePointer<S>, visible: Int, written: Int, scale: S
  ) {
    for j in 0..<visible { row[j] *= scale }
    let sum = S.expShifted(row, count: visible, shift: S.maximum(row, count: visible))
    let inverse = 1 / S(sum)
    for j in 0..<visible { row[j] *= inverse }
    for j in visible..<written { row[j] = 0 }
  }

  /// Elements of the `scratch` that `backward` needs: dP, then dS, [H, T, T].
  package static func backwardScratchCount(tokens t: Int, heads: Int, headDim d: Int) -> Int {
    heads * t * t
  }

  /// dq, dk, dv (all overwritten) from the upstream gradient `dOutput` [T, H·D].
  ///
  /// Two passes, each over independent tasks run concurrently, the longest first:
  /// 1. per (query head, row block), as the forward: dP = do_h v_gᵀ, then dS in place of dP, then dq_h = dS k_g;
  /// 2. per (kv head, key block [c0, c1)): dv_g[c0..<c1] = Σ_h P_h[c0..<T, c0..<c1]ᵀ do_h[c0..<T] and dk_g likewise
  ///    from dS_h and q_h, the group's query heads added in increasing order. Only rows i ≥ c0 see these keys, and
  ///    every entry they read was written by pass 1 (or the forward) for the same block edges: zeros above the
  ///    diagonal inside the diagonal block, values below it.
  /// Each task writes its own rows of dq, dk, dv, so results do not depend on scheduling. Why two passes: with one
  /// task per query head, SmolLM2's 9 heads on 2 workers left one idle for a ninth of the time, and per-head dk_h,
  /// dv_h had to be summed afterwards.
  /// - Parameter scratch: `backwardScratchCount(tokens:heads:headDim:)` elements of workspace.
  package static func backward<S: EngineScalar>(
    q: UnsafePointer<S>, k: UnsafePointer<S>, v: UnsafePointer<S>, probabilities p: UnsafePointer<S>,
    dOutput dO: UnsafePointer<S>, tokens t: Int, heads: Int, kvHeads: Int, headDim d: Int,
    dq: UnsafeMutablePointer<S>, dk: UnsafeMutablePointer<S>, dv: UnsafeMutablePointer<S>,
    scratch: UnsafeMutablePointer<S>
  ) {
    let (qStride, kvStride, group) = (heads * d, kvHeads * d, heads / kvHeads)
    let scale = 1 / S(d).squareRoot()
    let blocks = (t + blockRows - 1) / blockRows
    Parallel.forEach(heads * blocks) { task in
      let (h, block) = (task % heads, blocks - 1 - task / heads)
      let g = h / group
      let (kg, vg, ph, doh, dS) = (k + g * d, v + g * d, p + h * t * t, dO + h * d, scratch + h * t * t)
      let r0 = block * blockRows
      let r1 = min(r0 + blockRows, t), m = r1 - r0
      // dP[r0..<r1, 0..<r1] = do_h[r0..<r1] v_g[0..<r1]ᵀ
      S.attentionProduct(
        transposeA: false, transposeB: true, m: m, n: r1, k: d, a: doh + r0 * qStride, lda: qStride, b: vg,
        ldb: kvStride, accumulate: false, c: dS + r0 * t, ldc: t)
      // dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, zero above the diagonal
      for i in r0..<r1 {
        let (pi, di) = (ph + i * t, dS + i * t)
        let s = dot(pi, di, count: i + 1)
        for j in 0...i { di[j] = pi[j] * (di[j] - s) * scale }
        for j in (i + 1)..<r1 { di[j] = 0 }
      }
      // dq_h[r0..<r1] = dS k_g[0..<r1]
      S.attentionProduct(
        transposeA: false, transposeB: false, m: m, n: d, k: r1, a: dS + r0 * t, lda: t, b: kg, ldb: kvStride,
        accumulate: false, c: dq + h * d + r0 * qStride, ldc: qStride)
    }
    Parallel.forEach(kvHeads * blocks) { task in
      let (g, block) = (task % kvHeads, task / kvHeads)
      let c0 = block * blockRows
      let keys = min(c0 + blockRows, t) - c0, rows = t - c0
      for h in g * group..<(g + 1) * group {
        let accumulate = h != g * group
        // dv_g[c0..<c1] (+)= P_h[c0..<T, c0..<c1]ᵀ do_h[c0..<T]
        S.attentionProduct(
          transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: p + h * t * t + c0 * t + c0, lda: t,
          b: dO + h * d + c0 * qStride, ldb: qStride, accumulate: accumulate, c: dv + g * d + c0 * kvStride,
          ldc: kvStride)
        // dk_g[c0..<c1] (+)= dS_h[c0..<T, c0..<c1]ᵀ q_h[c0..<T]
        S.attentionProduct(
          transposeA: true, transposeB: false, m: keys, n: d, k: rows, a: scratch + h * t * t + c0 * t + c0, lda: t,
          b: q + h * d + c0 * qStride, ldb: qStride, accumulate: accumulate, c: dk + g * d + c0 * kvStride,
          ldc: kvStride)
      }
    }
  }

  /// Σ a[j] · b[j] over eight interleaved partial sums (j mod 8), added pairwise at the end: independent chains
  /// the compiler keeps in vector lanes, where one running sum would be a serial chain of dependent adds.
  @inline(__always) static func dot<S: EngineScalar>(_ a: UnsafePointer<S>, _ b: UnsafePointer<S>, count: Int) -> S {
    var (s0, s1, s2, s3, s4, s5, s6, s7) = (S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0))
    var j = 0
    while j + 8 <= count {
      s0 += a[j] * b[j]; s1 += a[j + 1] * b[j + 1]; s2 += a[j + 2] * b[j + 2]; s3 += a[j + 3] * b[j + 3]
      s4 += a[j + 4] * b[j + 4]; s5 += a[j + 5] * b[j + 5]; s6 += a[j + 6] * b[j + 6]; s7 += a[j + 7] * b[j + 7]
      j += 8
    }
    var tail = S(0)
    while j < count { tail += a[j] * b[j]; j += 1 }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + tail
  }

  /// Reference forward: explicit loops, Double accumulation, full T×T with the mask. Returns o [T, H·D].
  package static func forwardReference<S: EngineScalar>(
    q: [S], k: [S], v: [S], tokens t: Int, heads: Int, kvHeads: Int, headDim d: Int
  ) -> [S] {
    let (qStride, kvStride, group) = (heads * d, kvHeads * d, heads / kvHeads)
    var o = [S](repeating: 0, count: t * qStride)
    for h in 0..<heads {
      let g = h / group
      for i in 0..<t {
        // scores against keys 0...i (causal), then a numerically stable softmax
        var scores = [Double](repeating: 0, count: i + 1)
        for j in 0...i {
          var dot = 0.0
          for c in 0..<d { dot += Double(q[i * qStride + h * d + c]) * Double(k[j * kvStride + g * d + c]) }
          scores[j] = dot / Double(d).squareRoot()
        }
        let maximum = scores.max()!
        let weights = scores.map { Double.exp($0 - maximum) }
        let total = weights.reduce(0, +)
        for c in 0..<d {
          var acc = 0.0
          for j in 0...i { acc += weights[j] / total * Double(v[j * kvStride + g * d + c]) }
          o[i * qStride + h * d + c] = S(acc)
        }
      }
    }
    return o
  }
}
