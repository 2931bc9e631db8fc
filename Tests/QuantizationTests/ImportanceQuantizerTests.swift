import Foundation
import GGML
import TensorCore
import Testing

@testable import Quantization

/// `ImportanceQuantizer`: a tensor row by row through `GGMLEncode.weighted` (itself byte-checked against ggml in
/// GGMLImportanceGoldenTests), with the weights llama-quantize derives from the file `bitplan export --imatrix`
/// writes (tools/quantize/quantize.cpp `load_imatrix`: `in_sum2 / (float) counts`).
@Suite struct ImportanceQuantizerTests {
  static func values(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in Float.random(in: -0.1...0.1, using: &rng) }
  }

  @Test(arguments: ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
  func everyRowIsGGMLsWeightedEncoding(name: String) throws {
    let format = try QuantFormat(parsing: name)
    guard case .ggml(let type) = format.scheme else { Issue.record("\(name) is not GGML"); return }
    let (rows, columns) = (5, 512)
    let w = Self.values(rows * columns, seed: 3)
    var rng = SplitMix64(seed: 4)
    let means = (0..<columns).map { _ in pow(10, Double.random(in: -3...1, using: &rng)) }
    let importance = ImportanceQuantizer.weights(squareMeans: means, count: 512)
    let packed = try ImportanceQuantizer.quantize(w, rows: rows, columns: columns, format: format, weights: importance)
    let rowSize = type.rowSizeInBytes(columns)!
    for r in 0..<rows {
      var row = [UInt8](repeating: 0, count: rowSize)
      w[(r * columns)..<((r + 1) * columns)].withUnsafeBufferPointer { x in
        importance.withUnsafeBufferPointer { q in
          row.withUnsafeMutableBytes { GGMLEncode.weighted(type, x, importance: q, into: $0) }
        }
      }
      #expect(Array(packed.bytes[(r * rowSize)..<((r + 1) * rowSize)]) == row, "\(name) row \(r)")
    }
    let plain = try quantize(w, rows: rows, columns: columns, format: format)
    #expect((packed.bytes == plain.bytes) == (type == .q8_0), "\(name): only q8_0 ignores the importance")
  }

  @Test func weightsAreLlamaCppsQuotientInFloat() {
    let means = [0.0, 1e-8, 0.3, 2.5, 1e3]
    for n in [1, 512, 32768] {
      let w = ImportanceQuantizer.weights(squareMeans: means, count: n)
      for (m, x) in zip(means, w) { #expect(x == Float(m * Double(n)) / Float(n)) }
    }
  }

  @Test func refusals() throws {
    let w = Self.values(64, seed: 1)
    let ones = [Float](repeating: 1, count: 32)
    #expect(!ImportanceQuantizer.supports(try QuantFormat(parsing: "f16")))
    #expect(!ImportanceQuantizer.supports(try QuantFormat(parsing: "int4-g32")))
    #expect(throws: QuantizationError.self) {
      try ImportanceQuantizer.quantize(w, rows: 2, columns: 32, format: try QuantFormat(parsing: "int4-g32"), weights: ones)
    }
    #expect(throws: QuantizationError.self) {
      try ImportanceQuantizer.quantize(w, rows: 2, columns: 32, format: try QuantFormat(parsing: "q4_0"), weights: [1, 2])
    }
    var negative = ones
    negative[3] = -1
    #expect(throws: QuantizationError.self) {
      try ImportanceQuantizer.quantize(w, rows: 2, columns: 32, format: try QuantFormat(parsing: "q4_0"), weights: negative)
    }
    #expect(throws: QuantizationError.self) {
      try ImportanceQuantizer.quantize(w, rows: 1, columns: 64, format: try QuantFormat(parsing: "q4_k"), weights: ones + ones)
    }
  }
}
