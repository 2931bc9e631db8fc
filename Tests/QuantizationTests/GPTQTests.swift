import Foundation
import Testing
import TensorCore
import _TestSupport

@testable import Quantization

/// GPTQ (`GPTQ.quantize`, `GPTQ.quantizeReference`) on seeded synthetic layers: the blocked algorithm against the
/// plain one, identity Hessian against round-to-nearest, output error against RTN on correlated inputs, the bytes
/// against the weights GPTQ fed back and the packed GEMV, the factor against its reference, and bad input.
@Suite struct GPTQTests {
  // MARK: - Fixtures

  static func format(_ name: String) -> QuantFormat { try! QuantFormat(parsing: name) }

  /// Approximately normal values (sum of four uniforms, centred), scaled.
  static func normals(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in
      var s: Float = 0
      for _ in 0..<4 { s += Float.random(in: -1...1, using: &rng) }
      return s * 0.866 * scale
    }
  }

  /// A random weight with a few larger outliers per row, like a real layer.
  static func weights(rows: Int, columns: Int, seed: UInt64) -> [Float] {
    var w = normals(rows * columns, seed: seed, scale: 0.05)
    var rng = SplitMix64(seed: seed ^ 0xA5A5)
    for _ in 0..<(rows * columns / 64) { w[Int.random(in: 0..<w.count, using: &rng)] *= 4 }
    return w
  }

  /// G = XᵀX/n for n samples of correlated inputs x = z·M (M a random mixing matrix with a decaying spectrum and a
  /// few loud channels): seeded, positive definite when n ≥ columns.
  static func hessian(columns: Int, samples: Int, seed: UInt64) -> [Float] {
    let mix = normals(columns * columns, seed: seed)
    var m = [Float](repeating: 0, count: columns * columns)
    for i in 0..<columns {
      for j in 0..<columns { m[i * columns + j] = (i == j ? 1 : 0) + 0.5 * mix[i * columns + j] / Float(1 + abs(i - j)).squareRoot() }
    }
    let z = normals(samples * columns, seed: seed ^ 0x1234)
    var x = [Float](repeating: 0, count: samples * columns)
    BLAS.sgemmReference(m: samples, n: columns, k: columns, a: z, b: m, c: &x)
    for j in stride(from: 0, to: columns, by: 17) {
      for s in 0..<samples { x[s * columns + j] *= 6 }  // loud input channels
    }
    var g = [Float](repeating: 0, count: columns * columns)
    BLAS.sgemmReference(transposeA: true, m: columns, n: columns, k: samples, alpha: 1 / Float(samples), a: x, b: x, c: &g)
    return g
  }

  /// tr(ΔW·G·ΔWᵀ) in Double: the layer's mean squared output error on the inputs G came from.
  static func outputError(_ w: [Float], _ q: [Float], rows: Int, columns: Int, hessian g: [Float]) -> Double {
    var total = 0.0
    for r in 0..<rows {
      let d = (0..<columns).map { Double(w[r * columns + $0] - q[r * columns + $0]) }
      for i in 0..<columns where d[i] != 0 {
        var s = 0.0
        for j in 0..<columns { s += Double(g[i * columns + j]) * d[j] }
        total += d[i] * s
      }
    }
    return total
  }

  static func identity(_ n: Int) -> [Float] { (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 } }

  // MARK: - (a) blocked against reference

  /// The blocked algorithm equals the plain one to rounding, for block sizes that divide the width and ones that do
  /// not, with and without act-order. The two differ only in Float against Double arithmetic, so a code can flip
  /// where a value lies within ~1e-6 of a rounding boundary (or a block's scale search meets a near tie), and a
  /// flip changes the error fed to the rest of its row. Checked: at most 1% of the weights differ, and the output
  /// errors agree within 1%; observed, almost every case is identical.
  @Test(arguments: [
    ("int4-g32", 160), ("int3-g64-asym", 192), ("int8", 160), ("int2-g32", 160), ("affine4-g32", 160),
    ("q4_0", 160), ("q4_1", 160), ("q5_0", 160), ("q5_1", 96), ("q8_0", 96),
    ("q2_k", 512), ("q3_k", 512), ("q4_k", 512), ("q5_k", 256), ("q6_k", 256),
  ])
  func blockedEqualsReference(_ name: String, _ columns: Int) throws {
    let rows = 12
    let format = Self.format(name)
    let w = Self.weights(rows: rows, columns: columns, seed: 11 + UInt64(columns))
    let g = Self.hessian(columns: columns, samples: 2 * columns, seed: 5 + UInt64(columns))
    for actOrder in [false, true] {
      for blockSize in [128, 48, 1] {
        let options = GPTQ.Options(blockSize: blockSize, actOrder: actOrder)
        let fast = try GPTQ.quantize(w, rows: rows, columns: columns, format: format, hessian: g, calibration: .minMax, options: options)
        let slow = try GPTQ.quantizeReference(w, rows: rows, columns: columns, format: format, hessian: g, calibration: .minMax, options: options)
        let (a, b) = (fast.dequantize(), slow.dequantize())
        let differing = zip(a, b).filter { $0 != $1 }.count
        let (ea, eb) = (Self.outputError(w, a, rows: rows, columns: columns, hessian: g), Self.outputError(w, b, rows: rows, columns: columns, hessian: g))
        if differing > 0 { print("blocked vs reference \(name) block \(blockSize) act-order \(actOrder): \(differing) of \(a.count) differ") }
        #expect(Double(differing) <= 0.01 * Double(a.count), "\(name) block \(blockSize) act-order \(actOrder): \(differing) of \(a.count) weights differ")
        #expect(abs(ea - eb) <= 0.01 * eb, "\(name) block \(blockSize) act-order \(actOrder): output error \(ea) vs \(eb)")
      }
    }
  }

  /// The factor without an explicit inverse equals the paper's recipe (chol, inverse, chol) to 1e-9 relative.
  @Test func factorEqualsReference() throws {
    let n = 70
    let g = Self.hessian(columns: n, samples: 200, seed: 3)
    let (_, h) = GPTQ.prepare(g, n: n, options: GPTQ.Options())
    let fast = try GPTQ.factor(h, n: n).get(), slow = try GPTQ.factorReference(h, n: n).get()
    let scale = slow.map(abs).max()!
    #expect(zip(fast, slow).allSatisfy { abs($0 - $1) <= 1e-9 * scale })
    // UᵀU = H⁻¹: (UᵀU)·H = I.
    for i in stride(from: 0, to: n, by: 7) {
      for j in 0..<n {
        var s = 0.0
        for k in 0..<n {
          var uu = 0.0
          for t in 0...min(i, k) { uu += fast[t * n + i] * fast[t * n + k] }
          s += uu * h[k * n + j]
        }
        #expect(abs(s - (i == j ? 1 : 0)) < 1e-8)
      }
    }
  }

  // MARK: - (b) identity Hessian is round-to-nearest

  /// With H = I no error is fed forward (U is diagonal), so every group's scales are found from the original
  /// weights and every code by the format's own rule: GPTQ writes RTN's bytes exactly, for every calibration.
  @Test(arguments: ["int4-g32", "int3-g64-asym", "int8", "int2-g64", "affine3-g32", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
  func identityHessianIsRTN(_ name: String) throws {
    let format = Self.format(name)
    let (rows, columns) = (16, 512)
    let w = Self.weights(rows: rows, columns: columns, seed: 77)
    for calibration in [RangeCalibration.minMax, .mse(steps: 20), .percentile(99.9)] {
      let rtn = try quantize(w, rows: rows, columns: columns, format: format, calibration: calibration)
      for actOrder in [false, true] {
        let gptq = try GPTQ.quantize(w, rows: rows, columns: columns, format: format, hessian: Self.identity(columns),
          calibration: calibration, options: GPTQ.Options(actOrder: actOrder))
        #expect(gptq.bytes == rtn.bytes, "\(name) \(calibration) act-order \(actOrder)")
      }
    }
  }

  /// A dead input column (H row and column zero) is rounded to nearest: with per-channel int8, whose scales are
  /// fixed from the original rows, its codes are RTN's; and the live columns still improve on RTN.
  @Test func deadColumnsAreRoundedToNearest() throws {
    let (rows, columns) = (8, 96)
    let format = Self.format("int8")
    let w = Self.weights(rows: rows, columns: columns, seed: 9)
    var g = Self.hessian(columns: columns, samples: 300, seed: 10)
    let dead = [0, 5, 50, 95]
    for i in dead {
      for j in 0..<columns { (g[i * columns + j], g[j * columns + i]) = (0, 0) }
    }
    let rtn = try quantize(w, rows: rows, columns: columns, format: format).dequantize()
    let out = try GPTQ.quantize(w, rows: rows, columns: columns, format: format, hessian: g, calibration: .minMax).dequantize()
    for r in 0..<rows {
      for i in dead { #expect(out[r * columns + i] == rtn[r * columns + i], "row \(r) dead column \(i)") }
    }
    #expect(Self.outputError(w, out, rows: rows, columns: columns, hessian: g) < Self.outputError(w, rtn, rows: rows, columns: columns, hessian: g))
  }

  // MARK: - (c) output error below RTN's

  /// On correlated inputs GPTQ's output error tr(ΔW·G·ΔWᵀ) is below RTN's for every supported family, with and
  /// without act-order (the ratios are printed).
  @Test(arguments: ["int2-g64", "int3-g64", "int4-g64", "int4-g64-asym", "int4", "int8", "affine4-g64", "q4_0", "q4_1", "q5_0", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
  func outputErrorBelowRTN(_ name: String) throws {
    let format = Self.format(name)
    let (rows, columns) = (32, 512)
    let w = Self.weights(rows: rows, columns: columns, seed: 21)
    let g = Self.hessian(columns: columns, samples: 1024, seed: 22)
    let rtn = Self.outputError(w, try quantize(w, rows: rows, columns: columns, format: format).dequantize(), rows: rows, columns: columns, hessian: g)
    for actOrder in [false, true] {
      let q = try GPTQ.quantize(w, rows: rows, columns: columns, format: format, hessian: g, calibration: .minMax,
        options: GPTQ.Options(actOrder: actOrder)).dequantize()
      let e = Self.outputError(w, q, rows: rows, columns: columns, hessian: g)
      print("gptq/rtn \(name) act-order \(actOrder): \(String(format: "%.3f", e / rtn))")
      #expect(e < rtn, "\(name) act-order \(actOrder): gptq \(e) ≥ rtn \(rtn)")
    }
  }

  // MARK: - (d) bytes, values, kernels

  /// The packed bytes decode (reference and fast decoders) to exactly the weights GPTQ fed its errors back from,
  /// and the packed GEMVs agree with them: Float activations to 1e-5, int8 activations exactly representable in
  /// int8 (|x| ≤ 127 integers with 127 in every 32-block) to 1e-4 relative.
  @Test(arguments: ["int4-g32", "int3-g64-asym", "int8", "affine4-g32", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
  func bytesDecodeToTheWeightsGPTQUsed(_ name: String) throws {
    let format = Self.format(name)
    let (rows, columns) = (10, 512)
    let w = Self.weights(rows: rows, columns: columns, seed: 31)
    let g = Self.hessian(columns: columns, samples: 700, seed: 32)
    for reference in [false, true] {
      let (packed, values) = try GPTQ.run(w, rows: rows, columns: columns, format: format, hessian: g, calibration: .mse(steps: 10),
        options: GPTQ.Options(blockSize: 100), reference: reference)
      #expect(packed.dequantize(variant: .reference) == values, "\(name) reference \(reference)")
      #expect(packed.dequantize() == values)
      var rng = SplitMix64(seed: 33)
      var x = (0..<columns).map { _ in Float(Int.random(in: -126...126, using: &rng)) }
      for b in stride(from: 0, to: columns, by: 32) { x[b + Int.random(in: 0..<32, using: &rng)] = 127 }
      let exact = (0..<rows).map { r in (0..<columns).reduce(0.0) { $0 + Double(values[r * columns + $1]) * Double(x[$1]) } }
      let scale = exact.map(abs).max()!
      let yFloat = packed.gemv(x)
      #expect(zip(yFloat, exact).allSatisfy { abs(Double($0) - $1) <= 1e-5 * scale }, "\(name) float gemv")
      if format.hasIntegerCodes {
        let yInt = packed.gemv(x, activations: .int8)
        #expect(zip(yInt, exact).allSatisfy { abs(Double($0) - $1) <= 1e-4 * scale }, "\(name) int8 gemv")
      }
    }
  }

  /// The supported set: integer, affine and GGML block types; not nf4, ternary or the float formats.
  @Test func supportedFormats() {
    for name in ["int2-g64", "int8", "int4-g128-asym", "affine4-g64", "q4_0", "q8_0", "q2_k", "q6_k"] { #expect(GPTQ.supports(Self.format(name))) }
    for name in ["nf4-g64", "ternary-g64", "f16", "bf16", "f32"] { #expect(!GPTQ.supports(Self.format(name))) }
  }

  // MARK: - (e) bad input

  /// Each bad input is a typed error whose message names the problem.
  @Test func badInputIsATypedError() {
    let (rows, columns) = (4, 64)
    let w = Self.weights(rows: rows, columns: columns, seed: 41)
    let g = Self.hessian(columns: columns, samples: 128, seed: 42)
    let int4 = Self.format("int4-g32")
    func expectError(_ code: QuantizationError.Code, _ words: String, _ body: () throws -> PackedTensor) {
      do {
        _ = try body()
        Issue.record("expected \(code) (\(words))")
      } catch let error as QuantizationError {
        #expect(error.code == code, "\(error)")
        #expect(error.message.contains(words), "\(error.message)")
      } catch {
        Issue.record("expected a QuantizationError, got \(error)")
      }
    }
    expectError(.sizeMismatch, "hessian") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: Array(g.dropLast()), calibration: .minMax)
    }
    expectError(.sizeMismatch, "weights") {
      try GPTQ.quantize(Array(w.dropLast()), rows: rows, columns: columns, format: int4, hessian: g, calibration: .minMax)
    }
    var nanHessian = g
    nanHessian[3 * columns + 5] = .nan
    expectError(.badData, "hessian entry (3, 5)") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: nanHessian, calibration: .minMax)
    }
    var infWeight = w
    infWeight[70] = .infinity
    expectError(.badData, "weight 70 (row 1, column 6)") {
      try GPTQ.quantize(infWeight, rows: rows, columns: columns, format: int4, hessian: g, calibration: .minMax)
    }
    var negative = g
    negative[2 * columns + 2] = -1
    expectError(.badData, "diagonal entry 2") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: negative, calibration: .minMax)
    }
    // An indefinite matrix: 1 on the diagonal, 2 off it (eigenvalue 1 − 2·... < 0), no damping.
    let indefinite = (0..<(columns * columns)).map { Float($0 / columns == $0 % columns ? 1 : 2) }
    expectError(.badData, "not positive definite") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: indefinite, calibration: .minMax, options: GPTQ.Options(damping: 0))
    }
    expectError(.badFormatName, "nf4-g32") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: Self.format("nf4-g32"), hessian: g, calibration: .minMax)
    }
    expectError(.unsupportedShape, "q4_k") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: Self.format("q4_k"), hessian: g, calibration: .minMax)
    }
    expectError(.badCalibration, "block size 0") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: g, calibration: .minMax, options: GPTQ.Options(blockSize: 0))
    }
    expectError(.badCalibration, "damping") {
      try GPTQ.quantizeReference(w, rows: rows, columns: columns, format: int4, hessian: g, calibration: .minMax, options: GPTQ.Options(damping: .nan))
    }
    expectError(.badCalibration, "percentile") {
      try GPTQ.quantize(w, rows: rows, columns: columns, format: int4, hessian: g, calibration: .percentile(0))
    }
  }

  /// Scaling H by a positive constant does not change the result (damping is relative to the mean diagonal).
  @Test func hessianScaleDoesNotMatter() throws {
    let (rows, columns) = (8, 128)
    let w = Self.weights(rows: rows, columns: columns, seed: 51)
    let g = Self.hessian(columns: columns, samples: 256, seed: 52)
    let a = try GPTQ.quantize(w, rows: rows, columns: columns, format: Self.format("q4_0"), hessian: g, calibration: .minMax).dequantize()
    let b = try GPTQ.quantize(w, rows: rows, columns: columns, format: Self.format("q4_0"), hessian: g.map { $0 * 256 }, calibration: .minMax).dequantize()
    #expect(zip(a, b).filter { $0 != $1 }.count <= a.count / 100)
  }
}
