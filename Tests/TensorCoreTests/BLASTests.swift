import Testing
import TensorCore
import _TestSupport

@Suite struct BLASTests {
  /// OpenBLAS reassociates the k-sum; each term is O(1), so the Float error is about k·ε·√k at most. 1e-5·k is generous.
  @Test(arguments: [false, true], [false, true])
  func sgemmMatchesReference(transposeA: Bool, transposeB: Bool) {
    for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 1, 65)] {
      let a = randomFloats(m * k, seed: 1), b = randomFloats(k * n, seed: 2)
      var want = randomFloats(m * n, seed: 3), got = want
      want.withUnsafeMutableBufferPointer { w in
        BLAS.sgemmReference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: w.baseAddress!)
      }
      got.withUnsafeMutableBufferPointer { g in
        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: g.baseAddress!)
      }
      for i in want.indices { #expect(abs(want[i] - got[i]) <= 1e-5 * Float(k), "m=\(m) n=\(n) k=\(k) i=\(i)") }
    }
  }

  @Test func halfConversionsRoundTrip() {
    for x: Float in [0, -0, 1, -2.5, 65504, 1e-7, .infinity] {
      #expect(Half.float(fromF16: Half.f16Bits(x)) == Float(Float16(x)))
    }
    #expect(Half.float(fromBF16: Half.bf16Bits(1.0)) == 1.0)
    #expect(Half.bf16Bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie to even
    #expect(Half.bf16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
  }
}
