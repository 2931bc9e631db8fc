/// Grouped-query causal self-attention (Ainslie et al. 2023; HF `LlamaAttention` with `repeat_kv`).
///
/// Shapes: q, o [T, H·D]; k, v [T, G·D] with G kv heads; query head h reads kv head h / (H/G).
/// Forward per head: S = q_h k_gᵀ / √D with S_ij = −∞ for j > i, P = softmax_rows(S), o_h = P v_g.
/// Backward (upstream do_h): dP = do_h v_gᵀ, dv_g += Pᵀ do_h, dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik) / √D,
/// dq_h = dS k_g, dk_g += dSᵀ q_h. The softmax Jacobian is diag(p) − p pᵀ per row, which gives the dS line.
///
/// `forward`/`backward` run on BLAS in row blocks of `blockRows`, computing only columns j < end of block, so the
/// masked upper triangle costs ~blockRows/(2T) extra instead of 2x. `forwardReference` is the plain triple loop.
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
    for h in 0..<heads {
      let g = h / group
      let (qh, kg, vg, ph) = (q + h * d, k + g * d, v + g * d, p + h * t * t)
      for r0 in stride(from: 0, to: t, by: blockRows) {
        let r1 = min(r0 + blockRows, t), m = r1 - r0
        // S[r0..<r1, 0..<r1] = scale · q_h[r0..<r1] k_g[0..<r1]ᵀ
        S.gemm(
          transposeA: false, transposeB: true, m: m, n: r1, k: d, alpha: scale, a: qh + r0 * qStride, lda: qStride,
          b: kg, ldb: kvStride, beta: 0, c: ph + r0 * t, ldc: t)
        Parallel.forEachChunk(m, costPerItem: r1) { rows in
          for i in rows { softmaxCausalRow(ph + (r0 + i) * t, visible: r0 + i + 1, written: r1) }
        }
        // o_h[r0..<r1] = P[r0..<r1, 0..<r1] v_g[0..<r1]
        S.gemm(
          transposeA: false, transposeB: false, m: m, n: d, k: r1, alpha: 1, a: ph + r0 * t, lda: t, b: vg,
          ldb: kvStride, beta: 0, c: o + h * d + r0 * qStride, ldc: qStride)
      }
    }
  }

  /// In place: row[0..<visible] ← softmax, row[visible..<written] ← 0.
  @inline(__always) static func softmaxCausalRow<S: EngineScalar>(_ row: UnsafeMutablePointer<S>, visible: Int, written: Int) {
    var maximum = row[0]
    for j in 1..<visible where row[j] > maximum { maximum = row[j] }
    var sum: S = 0
    for j in 0..<visible {
      let e = S.exp(row[j] - maximum)
      row[j] = e
      sum += e
    }
    let inverse = 1 / sum
    for j in 0..<visible { row[j] *= inverse }
    for j in visible..<written { row[j] = 0 }
  }

  /// dq (overwritten), dk, dv (overwritten) from the upstream gradient `dOutput` [T, H·D].
  /// - Parameter scratch: [T, T] workspace for dP/dS.
  package static func backward<S: EngineScalar>(
    q: UnsafePointer<S>, k: UnsafePointer<S>, v: UnsafePointer<S>, probabilities p: UnsafePointer<S>,
    dOutput dO: UnsafePointer<S>, tokens t: Int, heads: Int, kvHeads: Int, headDim d: Int,
    dq: UnsafeMutablePointer<S>, dk: UnsafeMutablePointer<S>, dv: UnsafeMutablePointer<S>,
    scratch dP: UnsafeMutablePointer<S>
  ) {
    let (qStride, kvStride, group) = (heads * d, kvHeads * d, heads / kvHeads)
    let scale = 1 / S(d).squareRoot()
    dk.update(repeating: 0, count: t * kvStride)
    dv.update(repeating: 0, count: t * kvStride)
    for h in 0..<heads {
      let g = h / group
      let (qh, kg, vg, ph, doh) = (q + h * d, k + g * d, v + g * d, p + h * t * t, dO + h * d)
      for r0 in stride(from: 0, to: t, by: blockRows) {
        let r1 = min(r0 + blockRows, t), m = r1 - r0
        // dP[r0..<r1, 0..<r1] = do_h[r0..<r1] v_g[0..<r1]ᵀ
        S.gemm(
          transposeA: false, transposeB: true, m: m, n: r1, k: d, alpha: 1, a: doh + r0 * qStride, lda: qStride,
          b: vg, ldb: kvStride, beta: 0, c: dP + r0 * t, ldc: t)
        // dv_g[0..<r1] += P[r0..<r1, 0..<r1]ᵀ do_h[r0..<r1]
        S.gemm(
          transposeA: true, transposeB: false, m: r1, n: d, k: m, alpha: 1, a: ph + r0 * t, lda: t,
          b: doh + r0 * qStride, ldb: qStride, beta: 1, c: dv + g * d, ldc: kvStride)
        // dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, zero above the diagonal
        Parallel.forEachChunk(m, costPerItem: r1) { rows in
          for i in rows.lowerBound + r0..<rows.upperBound + r0 {
            let (pi, di) = (ph + i * t, dP + i * t)
            var s: S = 0
            for j in 0...i { s += pi[j] * di[j] }
            for j in 0...i { di[j] = pi[j] * (di[j] - s) * scale }
            for j in (i + 1)..<r1 { di[j] = 0 }
          }
        }
        // dq_h[r0..<r1] = dS k_g[0..<r1]
        S.gemm(
          transposeA: false, transposeB: false, m: m, n: d, k: r1, alpha: 1, a: dP + r0 * t, lda: t, b: kg,
          ldb: kvStride, beta: 0, c: dq + h * d + r0 * qStride, ldc: qStride)
        // dk_g[0..<r1] += dSᵀ q_h[r0..<r1]
        S.gemm(
          transposeA: true, transposeB: false, m: r1, n: d, k: m, alpha: 1, a: dP + r0 * t, lda: t,
          b: qh + r0 * qStride, ldb: qStride, beta: 1, c: dk + g * d, ldc: kvStride)
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
