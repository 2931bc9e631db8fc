import Foundation
import Testing
import TensorCore
import _TestSupport

/// The vectorized element-wise maths (the best version for this CPU, and the AVX2 one) against its plain C twin
/// (libm expf) and against Double.
@Suite struct VectorMathTests {
  /// exp over its whole normal range, every tail length: within 2 ulp of expf and of the Double exp.
  @Test(arguments: [VectorMath.Path.best, .avx2]) func expMatchesLibmWithinTwoUlp(path: VectorMath.Path) {
    let count = 200_003
    let xs = (0..<count).map { -87.0 + 175.0 * Float($0) / Float(count - 1) }
    for shift: Float in [0, 3.5] {
      var fast = xs, plain = xs
      let fastSum = fast.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: count, shift: shift, path: path) }
      let plainSum = plain.withUnsafeMutableBufferPointer {
        VectorMath.expShifted($0.baseAddress!, count: count, shift: shift, path: .portable)
      }
      for i in stride(from: 0, to: count, by: 1) {
        let exact = Foundation.exp(Double(xs[i] - shift))
        #expect(abs(Double(fast[i]) - exact) <= 2 * Double(plain[i].ulp) + 1e-300, "x = \(xs[i])")
      }
      #expect(abs(fastSum - plainSum) <= 1e-6 * plainSum)
    }
    // every tail length 1...40 (masked last step), values that underflow and overflow the clamp
    for n in 1...40 {
      var fast = (0..<n).map { Float($0) - 20 }, plain = fast
      _ = fast.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: n, shift: 0, path: path) }
      _ = plain.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: n, shift: 0, path: .portable) }
      for i in 0..<n { #expect(abs(fast[i] - plain[i]) <= 2 * plain[i].ulp) }
    }
    var extremes: [Float] = [-200, -104, 88, 100]
    _ = extremes.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: 4, shift: 0, path: path) }
    #expect(extremes[0] == 0 && extremes[1] < Float.leastNormalMagnitude / 1000 && extremes[2] > 1e38 && extremes[3] == .infinity)
  }

  @Test(arguments: [VectorMath.Path.best, .avx2]) func maximumAndSwiGLUMatchTheirTwins(path: VectorMath.Path) {
    for n in [1, 7, 16, 17, 33, 1000] {
      let g = randomFloats(n, seed: UInt64(n)).map { $0 * 12 }, u = randomFloats(n, seed: UInt64(n) + 1)
      let dh = randomFloats(n, seed: UInt64(n) + 2)
      #expect(VectorMath.maximum(g, count: n, path: path) == VectorMath.maximum(g, count: n, path: .portable))
      #expect(VectorMath.maximum(g, count: n, path: path) == g.max()!)
      var (h1, h2) = ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
      VectorMath.swigluForward(gate: g, up: u, count: n, output: &h1, path: path)
      VectorMath.swigluForward(gate: g, up: u, count: n, output: &h2, path: .portable)
      var (dg1, du1, dg2, du2) = (dh, h1, dh, h2)
      // dGate aliases dh, as the engine calls it
      dg1.withUnsafeMutableBufferPointer { d in
        VectorMath.swigluBackward(gate: g, up: u, dh: d.baseAddress!, count: n, dGate: d.baseAddress!, dUp: &du1, path: path)
      }
      dg2.withUnsafeMutableBufferPointer { d in
        VectorMath.swigluBackward(gate: g, up: u, dh: d.baseAddress!, count: n, dGate: d.baseAddress!, dUp: &du2, path: .portable)
      }
      for i in 0..<n {
        for (a, b) in [(h1[i], h2[i]), (dg1[i], dg2[i]), (du1[i], du2[i])] {
          #expect(abs(a - b) <= 4e-6 * max(1, abs(b)), "n=\(n) i=\(i) g=\(g[i])")
        }
      }
    }
  }

  /// The AVX2 versions give the AVX-512 ones' values bit for bit (same polynomial, same single rounding of 2ⁿ), so
  /// results do not depend on which of the two a CPU runs; sums agree to rounding (they add in another order). On a
  /// CPU without AVX-512 `.best` is the AVX2 version and this holds trivially.
  /// The exp-sum (the forward that needs only NLLs) returns `expShifted`'s sum bit for bit on every path and every
  /// tail length.
  @Test(arguments: VectorMath.Path.allCases) func expSumEqualsExpShiftedSum(path: VectorMath.Path) {
    for n in Array(1...40) + [49_152, 200_003] {
      let xs = (0..<n).map { Float(($0 * 7919) % 1000) / 10 - 60 }
      for shift: Float in [0, 3.5, 39.9] {
        var shifted = xs
        let want = shifted.withUnsafeMutableBufferPointer {
          VectorMath.expShifted($0.baseAddress!, count: n, shift: shift, path: path)
        }
        let got = xs.withUnsafeBufferPointer { VectorMath.expSum($0.baseAddress!, count: n, shift: shift, path: path) }
        #expect(got.bitPattern == want.bitPattern, "n = \(n), shift \(shift): \(got) vs \(want)")
      }
    }
  }

  @Test func avx2EqualsBestBitForBit() {
    let n = 4099
    let x = randomFloats(n, seed: 11).map { $0 * 120 - 100 }, u = randomFloats(n, seed: 12), dh = randomFloats(n, seed: 13)
    var (a, b) = (x, x)
    let sumA = a.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: n, shift: -3, path: .best) }
    let sumB = b.withUnsafeMutableBufferPointer { VectorMath.expShifted($0.baseAddress!, count: n, shift: -3, path: .avx2) }
    #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    #expect(abs(sumA - sumB) <= 1e-12 * abs(sumA))
    var (h1, h2) = ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
    VectorMath.swigluForward(gate: x, up: u, count: n, output: &h1, path: .best)
    VectorMath.swigluForward(gate: x, up: u, count: n, output: &h2, path: .avx2)
    #expect(h1.map(\.bitPattern) == h2.map(\.bitPattern))
    var (dg1, du1, dg2, du2) = (h1, h1, h2, h2)
    VectorMath.swigluBackward(gate: x, up: u, dh: dh, count: n, dGate: &dg1, dUp: &du1, path: .best)
    VectorMath.swigluBackward(gate: x, up: u, dh: dh, count: n, dGate: &dg2, dUp: &du2, path: .avx2)
    #expect(dg1.map(\.bitPattern) == dg2.map(\.bitPattern) && du1.map(\.bitPattern) == du2.map(\.bitPattern))
    #expect(VectorMath.maximum(x, count: n, path: .best) == VectorMath.maximum(x, count: n, path: .avx2))
  }
}
