import Testing
import _TestSupport

@testable import Quantization

/// Scale tuning's pieces on seeded synthetic tensors: the scales read back and written unchanged give the same
/// bytes, new scales move only the scale fields, the gradient equals its finite-difference twin, descent along it
/// lowers a quadratic loss, and other formats and bad input are refused with typed errors.
struct ScaleTuningTests {
  static let integerFormats = ["int4-g32", "int3-g32", "int4-g64-asym", "int2-g32-asym", "int8", "int5-asym", "int6-g96"]

  static func packed(_ name: String, rows: Int = 6, columns: Int = 192, seed: UInt64 = 11) throws -> PackedTensor {
    try quantize(
      randomFloats(rows * columns, seed: seed, scale: 0.05), rows: rows, columns: columns, format: try QuantFormat(parsing: name))
  }

  /// Reading the scales and writing the same ones back is the identity on the bytes; the integers times the scales
  /// are `dequantize()`.
  @Test(arguments: integerFormats)
  func scalesRoundTrip(name: String) throws {
    let p = try Self.packed(name)
    let groups = try ScaleTuning.Groups(p)
    let length = p.format.groupSize ?? p.columns
    #expect(groups.count == p.rows * p.columns / length && groups.groupLength == length)
    #expect(try groups.packed(scales: groups.scales) == p)
    #expect(try groups.weights(scales: groups.scales) == p.dequantize())
    let q = groups.integerCodes, s = groups.scales, w = p.dequantize()
    for j in stride(from: 0, to: w.count, by: 7) { #expect(Float(q[j]) * s[j / length] == w[j]) }
  }

  /// New scales change only the scale fields: the codes decode the same, the bytes keep their length, and
  /// `weights(scales:)` equals the new tensor's `dequantize()`.
  @Test(arguments: integerFormats)
  func newScalesKeepTheCodes(name: String) throws {
    let p = try Self.packed(name)
    let groups = try ScaleTuning.Groups(p)
    let factors = randomFloats(groups.count, seed: 5, scale: 0.2)
    let scales = zip(groups.scales, factors).map { $0 * (1 + $1) }
    let tuned = try groups.packed(scales: scales)
    #expect(tuned.bytes.count == p.bytes.count && tuned != p)
    let again = try ScaleTuning.Groups(tuned)
    #expect(again.integerCodes == groups.integerCodes)
    #expect(again.scales == scales.map { Float(Float16($0)) })
    #expect(try groups.weights(scales: scales) == tuned.dequantize())
  }

  /// ∂L/∂s by the codes equals central finite differences of a linear loss through `dequantize()`.
  @Test(arguments: integerFormats)
  func gradientMatchesFiniteDifferences(name: String) throws {
    let p = try Self.packed(name, rows: 3, columns: 192, seed: 23)
    let groups = try ScaleTuning.Groups(p)
    let g = randomFloats(p.rows * p.columns, seed: 29)
    let fast = try groups.gradient(weightGradient: g)
    let twin = try groups.gradientReference(weightGradient: g)
    let scale = fast.map { abs($0) }.max()!
    #expect(scale > 0)
    for i in 0..<fast.count { #expect(abs(fast[i] - twin[i]) <= 1e-3 * scale, "group \(i): \(fast[i]) vs \(twin[i])") }
    // ∂L/∂s_g = Σ ∂L/∂Ŵ_j·Ŵ_j/s_g where s_g ≠ 0
    let w = p.dequantize(), length = groups.groupLength
    for i in 0..<groups.count where groups.scales[i] != 0 {
      let direct = (0..<length).reduce(0.0) { $0 + Double(g[i * length + $1]) * Double(w[i * length + $1]) } / Double(groups.scales[i])
      #expect(abs(Double(fast[i]) - direct) <= 1e-3 * Double(scale))
    }
  }

  /// Gradient steps on the scales lower ‖Ŵ(s) − W‖² from round to nearest's (the min-max scale is not the
  /// least-squares one for its codes).
  @Test(arguments: ["int3-g32", "int4-g64-asym"])
  func descentLowersAQuadraticLoss(name: String) throws {
    let (rows, columns) = (8, 128)
    let w = randomFloats(rows * columns, seed: 41, scale: 0.05)
    let p = try quantize(w, rows: rows, columns: columns, format: try QuantFormat(parsing: name))
    let groups = try ScaleTuning.Groups(p)
    func loss(_ s: [Float]) throws -> Double {
      zip(try groups.weights(scales: s), w).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    }
    var s = groups.scales
    let before = try loss(s)
    for _ in 0..<50 {
      let r = zip(try groups.weights(scales: s), w).map { 2 * ($0 - $1) }
      let grad = try groups.gradient(weightGradient: r)
      // Newton-like step per group: the loss is quadratic in s_g with curvature 2·Σq².
      let q = groups.integerCodes, length = groups.groupLength
      for g in 0..<s.count {
        let curvature = 2 * (0..<length).reduce(0.0) { $0 + Double(q[g * length + $1] * q[g * length + $1]) }
        if curvature > 0 { s[g] -= Float(0.5 * Double(grad[g]) / curvature) }
      }
    }
    let after = try loss(s)
    #expect(after < before, "\(before) → \(after)")
    print("descent \(name): \(before) → \(after)")
  }

  /// Only the integer formats are tuned; the others are refused by `supports` and by `Groups`.
  @Test func otherFormatsAreRefused() throws {
    for name in ["int4-g32", "int8", "int3-g64-asym"] { #expect(ScaleTuning.supports(try QuantFormat(parsing: name))) }
    for name in ["q4_0", "q4_k", "nf4-g64", "ternary-g64", "affine4-g64", "f16", "f32"] {
      let format = try QuantFormat(parsing: name)
      #expect(!ScaleTuning.supports(format), "\(name)")
      let p = try quantize(randomFloats(2 * 256, seed: 3), rows: 2, columns: 256, format: format)
      #expect(throws: QuantizationError.self, "\(name)") { try ScaleTuning.Groups(p) }
    }
  }

  /// Wrong counts and non-finite values are typed errors naming what was wrong.
  @Test func badInputIsATypedError() throws {
    let groups = try ScaleTuning.Groups(try Self.packed("int4-g32"))
    let n = groups.packed.rows * groups.packed.columns
    #expect(throws: QuantizationError(.sizeMismatch, "a gradient of 5 values for a [6, 192] int4-g32 tensor")) {
      try groups.gradient(weightGradient: [Float](repeating: 0, count: 5))
    }
    var g = [Float](repeating: 0, count: n)
    g[200] = .nan
    #expect(throws: QuantizationError.self) { try groups.gradient(weightGradient: g) }
    #expect(throws: QuantizationError(.sizeMismatch, "2 scales for a tensor of \(groups.count) groups")) {
      try groups.packed(scales: [1, 2])
    }
    var s = groups.scales
    s[3] = 1e6
    #expect(throws: QuantizationError.self) { try groups.packed(scales: s) }
    s[3] = .infinity
    #expect(throws: QuantizationError.self) { try groups.weights(scales: s) }
  }
}
