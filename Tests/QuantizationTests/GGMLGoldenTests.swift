import Foundation
import GGML
import Testing

@testable import Quantization

/// Byte-exactness against gguf-py's numpy port of ggml (fixtures from scripts/quant_golden.py).
struct GGMLGoldenTests {
  struct Case {
    var type: GGMLType
    var values: [Float]
    var bytes: [UInt8]
  }

  /// Reads a `BPQG` fixture (format in scripts/quant_golden.py).
  static func load(_ name: String) throws -> [Case] {
    guard let url = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures") else {
      throw QuantizationError(.badData, "fixture \(name).bin missing; re-run scripts/quant_golden.py")
    }
    let data = [UInt8](try Data(contentsOf: url))
    var offset = 0
    func u32() throws -> Int {
      guard offset + 4 <= data.count else { throw QuantizationError(.badData, "\(name).bin truncated at \(offset)") }
      defer { offset += 4 }
      return Int(UInt32(data[offset]) | UInt32(data[offset + 1]) << 8 | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24)
    }
    guard data.starts(with: Array("BPQG".utf8)) else { throw QuantizationError(.badData, "\(name).bin: bad magic") }
    offset = 4
    guard try u32() == 1 else { throw QuantizationError(.badData, "\(name).bin: version mismatch; re-run scripts/quant_golden.py") }
    return try (0..<u32()).map { _ in
      let id = try u32(), n = try u32(), m = try u32()
      guard let type = GGMLType(rawValue: UInt32(id)) else { throw QuantizationError(.badData, "unknown type \(id)") }
      var values = [Float]()
      for _ in 0..<n { values.append(Float(bitPattern: UInt32(try u32()))) }
      guard offset + m <= data.count else { throw QuantizationError(.badData, "\(name).bin truncated") }
      defer { offset += m }
      return Case(type: type, values: values, bytes: Array(data[offset..<(offset + m)]))
    }
  }

  @Test func legacyQuantizersMatchGGMLByteForByte() throws {
    let cases = try Self.load("ggml_legacy")
    #expect(cases.count == 30)
    for c in cases {
      let packed = try quantize(c.values, rows: 1, columns: c.values.count, format: .ggml(c.type))
      #expect(packed.bytes == c.bytes, "\(c.type.ggmlName) n=\(c.values.count)")
      // And gguf-py's bytes decode to the same floats under both our dequantizers.
      let theirs = try PackedTensor(format: .ggml(c.type), rows: 1, columns: c.values.count, bytes: c.bytes)
      #expect(theirs.dequantize(variant: .reference) == theirs.dequantize(variant: .simd))
    }
  }

  /// Random K-quant blocks dequantized by gguf-py: our layout reading is independent of our quantizer.
  @Test func kQuantDequantizersMatchGGUFPy() throws {
    let cases = try Self.load("kquant_dequant")
    #expect(Set(cases.map(\.type)) == [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    for c in cases {
      let packed = try PackedTensor(format: .ggml(c.type), rows: 1, columns: c.values.count, bytes: c.bytes)
      for variant in KernelVariant.allCases {
        let ours = packed.dequantize(variant: variant)
        #expect(ours.map(\.bitPattern) == c.values.map(\.bitPattern), "\(c.type.ggmlName) \(variant)")
      }
    }
  }

  /// K-quant quantizers against ggml itself (`ggml_quantize_chunk`, no imatrix; fixture from
  /// scripts/ggml_quant_golden.sh): every super-block byte for byte.
  @Test func kQuantQuantizersMatchGGMLByteForByte() throws {
    let cases = try Self.load("ggml_kquant")
    #expect(cases.count == 15)
    for c in cases {
      let packed = try quantize(c.values, rows: 1, columns: c.values.count, format: .ggml(c.type))
      let size = c.type.bytesPerBlock
      for b in 0..<(c.bytes.count / size) {
        let range = (b * size)..<((b + 1) * size)
        #expect(Array(packed.bytes[range]) == Array(c.bytes[range]), "\(c.type.ggmlName) super-block \(b)")
      }
    }
  }
}
