import Engine
import _TestSupport
import Testing

/// The blocked BLAS attention against the plain triple loop, and its backward pass against central differences.
/// T = 70 spans two row blocks of 64 with a tail of 6, so every block edge of the causal mask is exercised.
@Suite struct CausalAttentionTests {
  static let tokens = 70

  /// Reassociated Double sums of ≤ T = 70 terms of size ≤ 1: error ≲ 70 · 2⁻⁵³ ≈ 1e-14; 1e-12 leaves margin.
  static let referenceTolerance = 1e-12

  @Test(arguments: [(4, 2, 3), (2, 2, 4), (3, 1, 2)])
  func forwardMatchesReference(heads: Int, kvHeads: Int, headDim: Int) {
    let t = Self.tokens
    let q = randomDoubles(t * heads * headDim, seed: 1).map { 2 * $0 }
    let k = randomDoubles(t * kvHeads * headDim, seed: 2).map { 2 * $0 }
    let v = randomDoubles(t * kvHeads * headDim, seed: 3)
    let o = forward(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim).o
    let want = CausalAttention.forwardReference(q: q, k: k, v: v, tokens: t, heads: heads, kvHeads: kvHeads, headDim: headDim)
    #expect(FiniteDifferences.mismatches(o, want, tolerance: Self.referenceTolerance).isEmpty)
  }

  @Test func probabilitiesAreCausalAndNormalised() {
    let (t, heads, d) = (Self.tokens, 2, 2)
    let p = forward(randomDoubles(t * heads * d, seed: 4), randomDoubles(t * d, seed: 5), randomDoubles(t * d, seed: 6), heads: heads, kvHeads: 1, headDim: d).p
    for h in 0..<heads {
      for i in 0..<t {
        let row = p[(h * t + i) * t..<(h * t + i + 1) * t]
        #expect(abs(row.reduce(0, +) - 1) < 1e-14)
        #expect(row.dropFirst(i + 1).allSatisfy { $0 == 0 }, "head \(h) row \(i) sees the future")
      }
    }
  }

  @Test func backwardMatchesFiniteDifferences() {
    let (t, heads, kvHeads, d) = (Self.tokens, 4, 2, 2)
    let q = randomDoubles(t * heads * d, seed: 7), k = randomDoubles(t * kvHeads * d, seed: 8)
    let v = randomDoubles(t * kvHeads * d, seed: 9), w = randomDoubles(t * heads * d, seed: 10)
    let p = forward(q, k, v, heads: heads, kvHeads: kvHeads, headDim: d).p
    var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count), dv = dk
    var scratch = [Double](repeating: 0, count: CausalAttention.backwardScratchCount(tokens: t, heads: heads, headDim: d))
    CausalAttention.backward(
      q: q, k: k, v: v, probabilities: p, dOutput: w, tokens: t, heads: heads, kvHeads: kvHeads, headDim: d,
      dq: &dq, dk: &dk, dv: &dv, scratch: &scratch)
    let phi = { (q: [Double], k: [Double], v: [Double]) in
      FiniteDifferences.dot(w, forward(q, k, v, heads: heads, kvHeads: kvHeads, headDim: d).o)
    }
    #expect(FiniteDifferences.mismatches(dq, FiniteDifferences.gradient(at: q) { phi($0, k, v) }).isEmpty)
    #expect(FiniteDifferences.mismatches(dk, FiniteDifferences.gradient(at: k) { phi(q, $0, v) }).isEmpty)
    #expect(FiniteDifferences.mismatches(dv, FiniteDifferences.gradient(at: v) { phi(q, k, $0) }).isEmpty)
  }

  private func forward(_ q: [Double], _ k: [Double], _ v: [Double], heads: Int, kvHeads: Int, headDim: Int) -> (o: [Double], p: [Double]) {
    let t = Self.tokens
    var p = [Double](repeating: 0, count: heads * t * t), o = [Double](repeating: 0, count: t * heads * headDim)
    CausalAttention.forward(
      q: q, k: k, v: v, tokens: t, heads: heads, kvHeads: kvHeads, headDim: headDim, probabilities: &p, output: &o)
    return (o, p)
  }
}
