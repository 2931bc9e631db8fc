import Foundation
import Quantization
import Testing
import _TestSupport

/// SmoothQuant's `w8a8`: the format names, the smoothing factor, α = 0 as plain int8 with int8 activations, the
/// output error against its brute-force twin, and the outlier channel SmoothQuant exists for.
@Suite struct SmoothQuantTests {
  /// Relative tolerance between `outputError` (packed GEMM in Float, Y by OpenBLAS) and the Double reference:
  /// each output is rounded to Float (≤ 2⁻²⁴ relative) by both the GEMM's final scale multiply and sgemm, and the
  /// error Y' − Y is ~1% of Y for int8, so the squared error moves by ≲ 2 · 2⁻²⁴ / 10⁻² ≈ 1.2e-5 relative; 1e-3
  /// leaves room for the sum of a few hundred thousand terms.
  static let outputErrorTolerance = 1e-3

  @Test(arguments: ["w8a8", "w8a8-a0", "w8a8-a1", "w8a8-a0.8", "w8a8-a0.25", "w8a8-a0.125", "w8a8-a0.05", "w8a8-a0.999"])
  func namesRoundTrip(name: String) throws {
    let format = try QuantFormat(parsing: name)
    #expect(format.name == name)
    #expect(format.isW8A8)
    #expect(QuantFormat(format.name) == format)
    let json = try JSONEncoder().encode([format])
    #expect(try JSONDecoder().decode([QuantFormat].self, from: json) == [format])
    #expect(format != (try QuantFormat(parsing: "int8")))
    #expect(format.sizeInBytes(rows: 24, columns: 96) == (try QuantFormat(parsing: "int8")).sizeInBytes(rows: 24, columns: 96))
  }

  @Test func alphaIsParsedAndPrintedCanonically() throws {
    #expect(try QuantFormat(parsing: "w8a8").migrationStrength == 0.5)
    #expect(try QuantFormat(parsing: "W8A8-A0.5").name == "w8a8")
    #expect(try QuantFormat(parsing: "w8a8-a0.80").name == "w8a8-a0.8")
    #expect(try QuantFormat(parsing: "w8a8-a1.0").name == "w8a8-a1")
    #expect(try QuantFormat(parsing: "w8a8-a0.8").migrationStrength == 0.8)
    #expect(try QuantFormat.w8a8(alpha: 0.8) == QuantFormat(parsing: "w8a8-a0.8"))
    #expect(try QuantFormat(parsing: "int8").migrationStrength == nil)
    #expect(try QuantFormat.parseList("int8,w8a8,w8a8-a0.8").map(\.name) == ["int8", "w8a8", "w8a8-a0.8"])
  }

  @Test(arguments: ["w8a8-a-0.5", "w8a8-a1.5", "w8a8-a2", "w8a8-anan", "w8a8-a", "w8a8-a0.1234", "w8a8-a.5", "w8a8-g64", "w8a8-a0.5-asym", "w8a8-ainf"])
  func badAlphaIsRefusedNamingTheFormat(name: String) {
    do {
      _ = try QuantFormat(parsing: name)
      Issue.record("\(name) parsed")
    } catch let error as QuantizationError {
      #expect(error.code == .badFormatName)
      #expect(error.message.contains(name), "\(error.message)")
    } catch {
      Issue.record("\(name): \(error)")
    }
  }

  @Test(arguments: [Double.nan, -0.1, 1.1, .infinity])
  func badAlphaValueIsRefused(alpha: Double) {
    #expect(throws: QuantizationError.self) { try QuantFormat.w8a8(alpha: alpha) }
    do { _ = try QuantFormat.w8a8(alpha: alpha) } catch { #expect("\(error)".contains("w8a8")) }
  }

  /// α = 0 is s = 1 exactly; channels never active or with zero weights get 1; all finite and non-zero.
  @Test func smoothingFactorGuards() {
    let a: [Float] = [4, 0, 1e-30, 2, 1e30, 3]
    let w: [Float] = [1, 2, 1, 0, 1e-30, 0.5]
    #expect(SmoothQuant.scales(activationMaxima: a, weightMaxima: w, alpha: 0) == [Float](repeating: 1, count: 6))
    let s = SmoothQuant.scales(activationMaxima: a, weightMaxima: w, alpha: 0.5)
    #expect(s[0] == 2 && s[1] == 1 && s[3] == 1)
    #expect(abs(s[5] - Float(6).squareRoot()) < 1e-6)
    #expect(s.allSatisfy { $0.isFinite && $0 > 0 })
    #expect(SmoothQuant.scales(activationMaxima: a, weightMaxima: w, alpha: 1).allSatisfy { $0.isFinite && $0 > 0 })
  }

  static func gemmInt8(_ packed: PackedTensor, _ x: [Float], tokens: Int) throws -> [Float] {
    var y = [Float](repeating: 0, count: tokens * packed.rows)
    try x.withUnsafeBufferPointer { x in
      try y.withUnsafeMutableBufferPointer { y in try packed.gemmInt8(x.baseAddress!, tokens: tokens, into: y.baseAddress!) }
    }
    return y
  }

  static func layer(rows: Int = 40, columns: Int = 96, tokens: Int = 33, outlier: Float = 1) -> (w: [Float], x: [Float]) {
    let w = randomFloats(rows * columns, seed: 71, scale: 0.1)
    var x = randomFloats(tokens * columns, seed: 72)
    for t in 0..<tokens { x[t * columns + 5] *= outlier }
    return (w, x)
  }

  /// At α = 0 the w8a8 tensor is `int8`'s, byte for byte, and its packed int8-activation output is the plain
  /// int8 layer's bit for bit.
  @Test func alphaZeroIsPlainInt8WithInt8Activations() throws {
    let (rows, columns, tokens) = (40, 96, 33)
    let (w, x) = Self.layer(outlier: 20)
    let int8 = try quantize(w, rows: rows, columns: columns, format: QuantFormat(parsing: "int8"))
    let (packed, s) = try SmoothQuant.quantize(
      w, rows: rows, columns: columns, format: QuantFormat(parsing: "w8a8-a0"), inputs: x, inputRows: tokens)
    #expect(s == [Float](repeating: 1, count: columns))
    #expect(packed.bytes == int8.bytes)
    let plain = try Self.gemmInt8(int8, x, tokens: tokens)
    let smoothed = try Self.gemmInt8(packed, zip(x.indices, x).map { $1 / s[$0 % columns] }, tokens: tokens)
    #expect(plain == smoothed)
  }

  /// Smoothing alone (no quantization) keeps the layer's output: (X·diag(s)⁻¹)·(W·diag(s))ᵀ = X·Wᵀ to rounding.
  @Test func smoothingKeepsTheFloatOutput() throws {
    let (rows, columns, tokens) = (40, 96, 33)
    let (w, x) = Self.layer(outlier: 50)
    let s = SmoothQuant.scales(
      activationMaxima: SmoothQuant.activationMaxima(x, rows: tokens, columns: columns),
      weightMaxima: SmoothQuant.weightMaxima([w], columns: columns), alpha: 0.5)
    let ws = SmoothQuant.scaledWeights(w, columns: columns, scales: s)
    var worst = 0.0, largest = 0.0
    for t in 0..<tokens {
      for r in 0..<rows {
        var (a, b) = (0.0, 0.0)
        for j in 0..<columns {
          a += Double(x[t * columns + j]) * Double(w[r * columns + j])
          b += Double(x[t * columns + j] / s[j]) * Double(ws[r * columns + j])
        }
        worst = max(worst, abs(a - b))
        largest = max(largest, abs(a))
      }
    }
    #expect(worst <= 1e-5 * largest, "max |ΔY| \(worst) of \(largest)")
  }

  @Test(arguments: [0.0, 0.5, 0.8, 1.0])
  func outputErrorMatchesBruteForce(alpha: Double) throws {
    let (rows, columns, tokens) = (40, 96, 33)
    let (w, x) = Self.layer(outlier: 30)
    let (packed, s) = try SmoothQuant.quantize(
      w, rows: rows, columns: columns, format: QuantFormat.w8a8(alpha: alpha), inputs: x, inputRows: tokens)
    let fast = try SmoothQuant.outputError(weights: w, packed: packed, scales: s, inputs: x, inputRows: tokens)
    let reference = SmoothQuant.outputErrorReference(weights: w, packed: packed, scales: s, inputs: x, inputRows: tokens)
    #expect(reference > 0)
    #expect(abs(fast - reference) <= Self.outputErrorTolerance * reference, "α \(alpha): \(fast) vs \(reference)")
  }

  /// SmoothQuant's claim: with one input channel 50× larger than the rest, per-token int8 activations lose the
  /// other channels' precision; α = 0.5 moves the outlier into the weights and lowers the output error.
  @Test func smoothingLowersTheErrorOfAnOutlierChannel() throws {
    let (rows, columns, tokens) = (40, 96, 33)
    let (w, x) = Self.layer(outlier: 50)
    func error(_ alpha: Double) throws -> Double {
      let (packed, s) = try SmoothQuant.quantize(
        w, rows: rows, columns: columns, format: QuantFormat.w8a8(alpha: alpha), inputs: x, inputRows: tokens)
      return try SmoothQuant.outputError(weights: w, packed: packed, scales: s, inputs: x, inputRows: tokens)
    }
    let (plain, smoothed) = (try error(0), try error(0.5))
    #expect(smoothed < plain / 2, "α 0.5: \(smoothed), α 0: \(plain)")
  }

  @Test func nonW8A8FormatIsRefused() {
    #expect(throws: QuantizationError.self) {
      try SmoothQuant.quantize([1, 2], rows: 1, columns: 2, format: QuantFormat(parsing: "int8"), inputs: [1, 1], inputRows: 1)
    }
  }
}
