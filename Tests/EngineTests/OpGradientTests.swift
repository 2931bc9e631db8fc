import Engine
import _TestSupport
import Testing

/// Each op's backward pass against central differences of its forward pass (Double), through a random cotangent
/// w: the backward pass of φ(x) = Σ w ⊙ f(x) must equal ∇φ. Tolerances: `FiniteDifferences.tolerance`.
@Suite struct OpGradientTests {
  @Test func rmsNormInputAndWeightGradients() {
    let (rows, n, eps) = (3, 5, 1e-5)
    let x = randomDoubles(rows * n, seed: 1), gamma = randomDoubles(n, seed: 2).map { 1 + 0.5 * $0 }
    let w = randomDoubles(rows * n, seed: 3)
    func forward(_ x: [Double], _ gamma: [Double]) -> (y: [Double], r: [Double]) {
      var y = [Double](repeating: 0, count: rows * n), r = [Double](repeating: 0, count: rows)
      RMSNorm.forward(x: x, gamma: gamma, rows: rows, n: n, epsilon: eps, y: &y, inverseRMS: &r)
      return (y, r)
    }
    let r = forward(x, gamma).r
    var dx = [Double](repeating: 0, count: rows * n), dgamma = [Double](repeating: 0, count: n)
    dgamma.withUnsafeMutableBufferPointer { dg in
      RMSNorm.backward(x: x, gamma: gamma, inverseRMS: r, dy: w, rows: rows, n: n, dx: &dx, dgamma: dg.baseAddress!)
    }
    let numericX = FiniteDifferences.gradient(at: x) { FiniteDifferences.dot(w, forward($0, gamma).y) }
    let numericGamma = FiniteDifferences.gradient(at: gamma) { FiniteDifferences.dot(w, forward(x, $0).y) }
    #expect(FiniteDifferences.mismatches(dx, numericX).isEmpty)
    #expect(FiniteDifferences.mismatches(dgamma, numericGamma).isEmpty)
  }

  /// RoPE is a rotation: the backward (inverse) pass undoes the forward pass, and matches differences.
  @Test func ropeBackwardIsTransposeRotation() {
    let (rows, heads, d) = (5, 3, 6)
    let rope = RoPE<Double>(positions: rows, headDim: d, theta: 100)
    let x = randomDoubles(rows * heads * d, seed: 4), w = randomDoubles(x.count, seed: 5)
    func forward(_ x: [Double]) -> [Double] {
      var y = x
      y.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, heads: heads) }
      return y
    }
    var dx = w
    dx.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, heads: heads, inverse: true) }
    let numeric = FiniteDifferences.gradient(at: x) { FiniteDifferences.dot(w, forward($0)) }
    #expect(FiniteDifferences.mismatches(dx, numeric).isEmpty)
    var roundTrip = forward(x)
    roundTrip.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, heads: heads, inverse: true) }
    #expect(FiniteDifferences.mismatches(roundTrip, x, tolerance: 1e-14).isEmpty)
    // position 0 is the identity; HF rotate-half pairs (i, i + d/2): row 1, head 0, pair 0 turns by angle 1
    #expect(forward(x)[0..<d].elementsEqual(x[0..<d]))
    let (a, b) = (x[heads * d], x[heads * d + d / 2])
    #expect(abs(forward(x)[heads * d] - (a * _cos1 - b * _sin1)) < 1e-14)
  }

  @Test func swiGLUGradients() {
    let n = 17
    let g = randomDoubles(n, seed: 6).map { 4 * $0 }, u = randomDoubles(n, seed: 7), w = randomDoubles(n, seed: 8)
    func forward(_ g: [Double], _ u: [Double]) -> [Double] {
      var h = [Double](repeating: 0, count: n)
      SwiGLU.forward(gate: g, up: u, count: n, output: &h)
      return h
    }
    var dg = [Double](repeating: 0, count: n), du = dg
    SwiGLU.backward(gate: g, up: u, dh: w, count: n, dGate: &dg, dUp: &du)
    #expect(FiniteDifferences.mismatches(dg, FiniteDifferences.gradient(at: g) { FiniteDifferences.dot(w, forward($0, u)) }).isEmpty)
    #expect(FiniteDifferences.mismatches(du, FiniteDifferences.gradient(at: u) { FiniteDifferences.dot(w, forward(g, $0)) }).isEmpty)
  }

  @Test func crossEntropyGradientAndValue() {
    let (rows, vocab) = (3, 7)
    let z = randomDoubles(rows * vocab, seed: 9).map { 5 * $0 }
    let targets = [2, 0, 6][...]
    func meanNLL(_ z: [Double]) -> Double {
      var p = z
      return CrossEntropy.forward(logits: &p, targets: targets, rows: rows, vocab: vocab).reduce(0, +) / Double(rows)
    }
    var p = z
    let nll = CrossEntropy.forward(logits: &p, targets: targets, rows: rows, vocab: vocab)
    // value: −log softmax(z)[target] computed directly
    let row0 = z[0..<vocab], lse0 = Double.log(row0.map { Double.exp($0) }.reduce(0, +))
    #expect(abs(nll[0] - (lse0 - z[2])) < 1e-13)
    CrossEntropy.backward(probabilities: &p, targets: targets, rows: rows, vocab: vocab, scale: 1 / Double(rows))
    #expect(FiniteDifferences.mismatches(p, FiniteDifferences.gradient(at: z, meanNLL)).isEmpty)
  }
}

private let _cos1 = Double.sinCos(1).cos
private let _sin1 = Double.sinCos(1).sin
