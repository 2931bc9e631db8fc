import Testing
import _TestSupport

@testable import Quantization

/// AWQ's scale search on seeded synthetic layers: α = 0 is round-to-nearest to the bit, the search never loses to
/// it, it wins clearly where a few input channels carry large activations, one s serves members of different formats,
/// the error has a Double twin, and bad input is a typed error.
struct AWQTests {
  /// X [n, columns] with `outliers` channels 25× larger than the rest (the activation outliers AWQ exploits).
  static func inputs(_ n: Int, columns: Int, outliers: Int, seed: UInt64) -> [Float] {
    var x = randomFloats(n * columns, seed: seed)
    for t in 0..<n { for j in 0..<outliers { x[t * columns + j * 7 % columns] *= 25 } }
    return x
  }

  static func weights(_ rows: Int, _ columns: Int, seed: UInt64) -> [Float] {
    randomFloats(rows * columns, seed: seed, scale: 0.05)
  }

  /// An independent RTN output error: `quantize`, `dequantize`, the Double three-loop error.
  static func rtnError(_ w: [Float], rows: Int, columns: Int, format: QuantFormat, x: [Float], n: Int) throws -> Double {
    let q = try quantizeDequantize(w, rows: rows, columns: columns, format: format)
    return AWQ.outputErrorReference(weights: w, approximation: q, rows: rows, columns: columns, inputs: x, inputRows: n)
  }

  @Test func scalesAreAWQsNormalisation() {
    let means: [Double] = [0.01, 0.5, 2, 9, 0]
    #expect(AWQ.scales(means: means, alpha: 0) == [1, 1, 1, 1, 1])
    let s = AWQ.scales(means: means, alpha: 0.5)
    // s_j ∝ max(m_j^α, 1e-4), normalised so that max · min = 1
    #expect(abs(Double(s.max()!) * Double(s.min()!) - 1) < 1e-6)
    #expect(abs(Double(s[3] / s[1]) - (9.0 / 0.5).squareRoot()) < 1e-5)
    #expect(abs(Double(s[4] / s[3]) - 1e-4 / 3) < 1e-9)  // the zero channel is clamped at 1e-4
  }

  /// α = 0 (grid 1) is plain `quantize` of W: the same bytes, s = 1, the independent RTN error.
  @Test(arguments: ["int4-g64", "int3-g32-asym", "q4_0", "q5_1", "affine4-g64", "nf4-g64"])
  func alphaZeroIsRoundToNearest(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let (rows, columns, n) = (12, 128, 40)
    let w = Self.weights(rows, columns, seed: 1)
    let x = Self.inputs(n, columns: columns, outliers: 3, seed: 2)
    let r = try AWQ.search(
      members: [AWQ.Member(weights: w, rows: rows, format: format)], columns: columns, inputs: x, inputRows: n,
      options: AWQ.Options(grid: 1))
    #expect(r.alpha == 0)
    #expect(r.scales == [Float](repeating: 1, count: columns))
    #expect(r.packed[0] == (try quantize(w, rows: rows, columns: columns, format: format)))
    #expect(AWQ.effectiveWeights(r.packed[0], scales: r.scales) == r.packed[0].dequantize())
    let rtn = try Self.rtnError(w, rows: rows, columns: columns, format: format, x: x, n: n)
    #expect(abs(r.rtnOutputError - rtn) <= 1e-4 * rtn)
    #expect(r.outputError == r.rtnOutputError)
  }

  /// With a few large input channels, the search picks α > 0 and cuts the output error well below RTN's.
  @Test(arguments: ["int3-g64", "int4-g64", "q4_0"])
  func outlierChannelsFavourScaling(name: String) throws {
    let format = try QuantFormat(parsing: name)
    let (rows, columns, n) = (32, 256, 64)
    let w = Self.weights(rows, columns, seed: 11)
    let x = Self.inputs(n, columns: columns, outliers: 4, seed: 12)
    let r = try AWQ.search(
      members: [AWQ.Member(weights: w, rows: rows, format: format)], columns: columns, inputs: x, inputRows: n)
    #expect(r.history.count == 20)
    #expect(r.alpha > 0)
    #expect(r.outputError < 0.8 * r.rtnOutputError, "AWQ \(r.outputError) vs RTN \(r.rtnOutputError)")
    #expect(r.outputError == r.history.min())
    // the reported error is that of the returned bytes and scales, recomputed by the twin
    let effective = AWQ.effectiveWeights(r.packed[0], scales: r.scales)
    let twin = AWQ.outputErrorReference(weights: w, approximation: effective, rows: rows, columns: columns, inputs: x, inputRows: n)
    #expect(abs(twin - r.outputError) <= 1e-4 * twin)
  }

  /// One s for a group whose members have different formats and shapes; each member keeps its own format, and the
  /// group's error is the sum of the members'.
  @Test func groupSharesOneScale() throws {
    let (columns, n) = (128, 48)
    let x = Self.inputs(n, columns: columns, outliers: 3, seed: 21)
    let formats = [try QuantFormat(parsing: "int4-g64"), .ggml(.q4_0), try QuantFormat(parsing: "int3-g32-asym")]
    let rows = [16, 8, 8]
    let ws = zip(rows, 0...).map { Self.weights($0, columns, seed: 30 + UInt64($1)) }
    let members = (0..<3).map { AWQ.Member(weights: ws[$0], rows: rows[$0], format: formats[$0]) }
    let r = try AWQ.search(members: members, columns: columns, inputs: x, inputRows: n)
    #expect(r.packed.map(\.format) == formats)
    #expect(r.packed.map(\.rows) == rows)
    var sum = 0.0
    var rtn = 0.0
    for i in 0..<3 {
      let e = AWQ.outputErrorReference(
        weights: ws[i], approximation: AWQ.effectiveWeights(r.packed[i], scales: r.scales), rows: rows[i],
        columns: columns, inputs: x, inputRows: n)
      #expect(abs(e - r.memberErrors[i]) <= 1e-4 * e)
      sum += e
      rtn += try Self.rtnError(ws[i], rows: rows[i], columns: columns, format: formats[i], x: x, n: n)
    }
    #expect(abs(sum - r.outputError) <= 1e-4 * sum)
    #expect(abs(rtn - r.rtnOutputError) <= 1e-4 * rtn)
    #expect(r.outputError <= r.rtnOutputError)
  }

  /// The BLAS error equals its Double twin, on shapes that leave partial tiles.
  @Test func outputErrorMatchesReference() {
    let (rows, columns, n) = (37, 96, 29)
    let w = Self.weights(rows, columns, seed: 41)
    let a = zip(w, randomFloats(rows * columns, seed: 42, scale: 0.01)).map { $0 + $1 }
    let x = Self.inputs(n, columns: columns, outliers: 2, seed: 43)
    let fast = AWQ.outputError(weights: w, approximation: a, rows: rows, columns: columns, inputs: x, inputRows: n)
    let slow = AWQ.outputErrorReference(weights: w, approximation: a, rows: rows, columns: columns, inputs: x, inputRows: n)
    #expect(slow > 0)
    #expect(abs(fast - slow) <= 1e-5 * slow)
  }

  @Test func badInputIsATypedError() throws {
    let w = Self.weights(4, 64, seed: 1)
    let x = Self.inputs(8, columns: 64, outliers: 1, seed: 2)
    let int4 = try QuantFormat(parsing: "int4-g32")
    func code(_ body: () throws -> Void) -> QuantizationError.Code? {
      do { try body() } catch let error as QuantizationError { return error.code } catch { return nil }
      return nil
    }
    #expect(!AWQ.supports(.f16) && AWQ.supports(int4) && AWQ.supports(.ggml(.q4_K)))
    #expect(code { _ = try AWQ.search(members: [.init(weights: w, rows: 4, format: .f16)], columns: 64, inputs: x, inputRows: 8) } == .badFormatName)
    #expect(code { _ = try AWQ.search(members: [], columns: 64, inputs: x, inputRows: 8) } == .badData)
    #expect(code { _ = try AWQ.search(members: [.init(weights: w, rows: 3, format: int4)], columns: 64, inputs: x, inputRows: 8) } == .badData)
    #expect(code { _ = try AWQ.search(members: [.init(weights: w, rows: 4, format: int4)], columns: 64, inputs: x, inputRows: 7) } == .badData)
    var nan = x
    nan[5] = .nan
    #expect(code { _ = try AWQ.search(members: [.init(weights: w, rows: 4, format: int4)], columns: 64, inputs: nan, inputRows: 8) } == .badData)
    #expect(
      code { _ = try AWQ.search(members: [.init(weights: w, rows: 4, format: int4)], columns: 64, inputs: x, inputRows: 8, options: .init(grid: 0)) }
        == .badCalibration)
    let g128 = try QuantFormat(parsing: "int4-g128")
    #expect(code { _ = try AWQ.search(members: [.init(weights: w, rows: 4, format: g128)], columns: 64, inputs: x, inputRows: 8) } == .unsupportedShape)
  }
}
