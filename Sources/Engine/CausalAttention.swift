import TensorCore

/// Grouped-query causal self-attention (Ainslie et al. 2023; HF `LlamaAttention` with `repeat_kv`).
///
/// Shapes: q, o [T, H·D]; k, v [T, G·D] with G kv heads; query head h reads kv head h / (H/G).
/// Forward per head: S = q_h k_gᵀ / √D with S_ij = −∞ for j > i, P = softmax_rows(S), o_h = P v_g.
/// Backward (upstream do_h): dP = do_h v_gᵀ, dv_g += Pᵀ do_h, dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik) / √D,
/// dq_h = dS k_g, dk_g += dSᵀ q_h. The softmax Jacobian is diag(p) − p pᵀ per row, which gives the dS line.
///
/// `forward`/`backward` run on BLAS in row blocks of `blockRows`, computing only columns j < end of block, so the
/// masked upper triangle costs ~blockRows/(2T) extra instead of 2x. The forward pass runs its (head, row block) pairs
/// concurrently (`Parallel.forEach`), the backward pass its heads, each with single-threaded GEMMs: one block is too
/// small to split well. In the backward pass each head accumulates its own dk_h, dv_h; a kv head's gradient is then
/// the sum over its query heads in a fixed order, so results do not depend on scheduling. `forwardReference` is the
/// plain triple loop.
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
      // S[r0..<r1, 0..<r1] = scale · q_h[r0..<r1] k_g[0..<r1]ᵀ
      S.gemm(
        transposeA: false, transposeB: true, m: m, n: r1, k: d, alpha: scale, a: qh + r0 * qStride, lda: qStride,
        b: kg, ldb: kvStride, beta: 0, c: ph + r0 * t, ldc: t)
      for i in r0..<r1 { softmaxCausalRow(ph + i * t, visible: i + 1, written: r1) }
      // o_h[r0..<r1] = P[r0..<r1, 0..<r1] v_g[0..<r1]
      S.gemm(
        transposeA: false, transposeB: false, m: m, n: d, k: r1, alpha: 1, a: ph + r0 * t, lda: t, b: vg,
        ldb: kvStride, beta: 0, c: o + h * d + r0 * qStride, ldc: qStride)
    }
  }

  /// In place: row[0..<visible] ← softmax, row[visible..<written] ← 0.
  @inline(__always) static func softmaxCausalRow<S: EngineScalar>(_ row: UnsafeMutablePointer<S>, visible: Int, written: Int) {
    let sum = S.expShifted(row, count: visible, shift: S.maximum(row, count: visible))
    let inverse = 1 / S(sum)
    for j in 0..<visible { row[j] *= inverse }
    for j in visible..<written { row[j] = 0 }
  }

  /// Elements of the `scratch` that `backward` needs: dP/dS [H, T, T] plus dk_h and dv_h [H, T, D] per query head.
  package static func backwardScratchCount(tokens t: Int, heads: Int, headDim d: Int) -> Int {
    heads * t * t + 2 * heads * t * d
  }

  /// dq (overwritten), dk, dv (overwritten) from the upstream gradient `dOutput` [T, H·D].
  /// - Parameter scratch: `backwardScratchCount(tokens:heads:headDim:)` elements of workspace.
  package static func backward<S: EngineScalar>(
    q: UnsafePointer<S>, k: UnsafePointer<S>, v: UnsafePointer<S>, probabilities p: UnsafePointer<S>,
    dOutput dO: UnsafePointer<S>, tokens t: Int, heads: Int, kvHeads: Int, headDim d: Int,
    dq: UnsafeMutablePointer<S>, dk: UnsafeMutablePointer<S>, dv: UnsafeMutablePointer<S>,
    scratch: UnsafeMutablePointer<S>
  ) {
    let (qStride, kvStride, group) = (heads * d, kvHeads * d, heads / kvHeads)
    let scale = 1 / S(d).squareRoot()
    // per head: dP/dS [T, T], then dk_h [T, D] and dv_h [T, D] (rows 0..<T, contiguous)
    let (dPAll, dkHeads) = (scratch, scratch + heads * t * t)
    let dvHeads = dkHeads + heads * t * d
    Parallel.forEach(heads) { h in
      let g = h / group
      let (qh, kg, vg, ph, doh) = (q + h * d, k + g * d, v + g * d, p + h * t * t, dO + h * d)
      let (dP, dkh, dvh) = (dPAll + h * t * t, dkHeads + h * t * d, dvHeads + h * t * d)
      dkh.update(repeating: 0, count: t * d)
      dvh.update(repeating: 0, count: t * d)
      for r0 in stride(from: 0, to: t, by: blockRows) {
        let r1 = min(r0 + blockRows, t), m = r1 - r0
        // dP[r0..<r1, 0..<r1] = do_h[r0..<r1] v_g[0..<r1]ᵀ
        S.gemm(
          transposeA: false, transposeB: true, m: m, n: r1, k: d, alpha: 1, a: doh + r0 * qStride, lda: qStride,
          b: vg, ldb: kvStride, beta: 0, c: dP + r0 * t, ldc: t)
        // dv_h[0..<r1] += P[r0..<r1, 0..<r1]ᵀ do_h[r0..<r1]
        S.gemm(
          transposeA: true, transposeB: false, m: r1, n: d, k: m, alpha: 1, a: ph + r0 * t, lda: t,
          b: doh + r0 * qStride, ldb: qStride, beta: 1, c: dvh, ldc: d)
        // dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, zero above the diagonal
        for i in r0..<r1 {
          let (pi, di) = (ph + i * t, dP + i * t)
          var s: S = 0
          for j in 0...i { s += pi[j] * di[j] }
          for j in 0...i { di[j] = pi[j] * (di[j] - s) * scale }
          for j in (i + 1)..<r1 { di[j] = 0 }
        }
        // dq_h[r0..<r1] = dS k_g[0..<r1]
        S.gemm(
          transposeA: false, transposeB: false, m: m, n: d, k: r1, alpha: 1, a: dP + r0 * t, lda: t, b: kg,
          ldb: kvStride, beta: 0, c: dq + h * d + r0 * qStride, ldc: qStride)
        // dk_h[0..<r1] += dSᵀ q_h[r0..<r1]
        S.gemm(
          transposeA: true, transposeB: false, m: r1, n: d, k: m, alpha: 1, a: dP + r0 * t, lda: t,
          b: qh + r0 * qStride, ldb: qStride, beta: 1, c: dkh, ldc: d)
      }
    }
    // dk_g = Σ_{h in group g} dk_h, dv_g likewise, heads in increasing order
    for row in 0..<t {
      for g in 0..<kvHeads {
        let (dkRow, dvRow) = (dk + row * kvStride + g * d, dv + row * kvStride + g * d)
        for c in 0..<d {
          var (sk, sv) = (dkHeads[(g * group) * t * d + row * d + c], dvHeads[(g * group) * t * d + row * d + c])
          for h in g * group + 1..<(g + 1) * group {
            sk += dkHeads[h * t * d + row * d + c]
            sv += dvHeads[h * t * d + row * d + c]
          }
          dkRow[c] = sk
          dvRow[c] = sv
        }
      }
    }
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
