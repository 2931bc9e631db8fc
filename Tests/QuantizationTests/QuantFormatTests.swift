import Foundation
import Testing
import _TestSupport

@testable import Quantization

/// Format names, shapes and exact sizes.
struct QuantFormatTests {
  @Test(arguments: [
    "f32", "f16", "bf16", "int8", "int4", "int4-g128", "int3-g64-asym", "int2-g32", "int8-g32-asym", "nf4-g64", "nf4",
    "ternary-g64", "ternary", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
  ])
  func nameRoundTrips(name: String) throws {
    let format = try QuantFormat(parsing: name)
    #expect(format.name == name)
    #expect(QuantFormat(name) == format)
  }

  @Test func parsingIsCaseInsensitiveAndCanonical() throws {
    #expect(try QuantFormat(parsing: "Q4_K").name == "q4_k")
    #expect(try QuantFormat(parsing: "INT4-G128-SYM").name == "int4-g128")
    let format = try QuantFormat(parsing: "int3-g64-asym")
    #expect(format.groupSize == 64 && !format.symmetric && format.nominalBits == 3)
    #expect(try QuantFormat(parsing: "int8").groupSize == nil)
  }

  @Test(arguments: ["", "int1", "int9", "int4-g48", "int4-g0", "int4-asym-g128", "int4-g128-g64", "nf4-asym", "q7_0", "int4-", "fp8", "int04"])
  func badNamesThrowTypedErrors(name: String) {
    #expect(throws: QuantizationError.self) { try QuantFormat(parsing: name) }
    do { _ = try QuantFormat(parsing: name) } catch let error as QuantizationError {
      #expect(error.code == .badFormatName)
    } catch { Issue.record("unexpected error \(error)") }
  }

  /// Bits per weight from the spec (ggml-common.h block sizes): the figures in the issue.
  @Test(arguments: [("q4_0", 4.5), ("q4_1", 5.0), ("q5_0", 5.5), ("q5_1", 6.0), ("q8_0", 8.5), ("q4_k", 4.5),
                    ("q5_k", 5.5), ("q6_k", 6.5625), ("q3_k", 3.4375), ("q2_k", 2.625)])
  func ggmlBitsPerWeight(name: String, bits: Double) throws {
    let format = try QuantFormat(parsing: name)
    #expect(format.bitsPerWeight(rows: 576, columns: 1536) == bits)
  }

  @Test func ownFormatsBitsPerWeight() throws {
    // int4-g128: 4 + 16/128; asym adds 8/128; int8 per-channel of 1536: 8 + 16/1536.
    #expect(try QuantFormat(parsing: "int4-g128").bitsPerWeight(rows: 4, columns: 256) == 4.125)
    #expect(try QuantFormat(parsing: "int4-g128-asym").bitsPerWeight(rows: 4, columns: 256) == 4.1875)
    #expect(try QuantFormat(parsing: "int8").bitsPerWeight(rows: 1, columns: 1536) == 8 + 16.0 / 1536)
    #expect(try QuantFormat(parsing: "nf4-g64").bitsPerWeight(rows: 2, columns: 64) == 4.25)
    // ternary-g64: 13 bytes of trits + 2 of scale per 64 weights.
    #expect(try QuantFormat(parsing: "ternary-g64").sizeInBytes(rows: 3, columns: 128) == 3 * 2 * 15)
    // Per-channel int3 of 33 values pads to two 32-value chunks of 12 bytes.
    #expect(try QuantFormat(parsing: "int3").sizeInBytes(rows: 1, columns: 33) == 2 + 2 * 12)
    #expect(QuantFormat.f16.sizeInBytes(rows: 3, columns: 7) == 42)
  }

  /// SmolLM2 shapes (hidden 576, ffn 1536): only ffn_down ([576, 1536]) can take a K-quant.
  @Test func smolLM2ShapesRestrictKQuants() throws {
    let q4k = try QuantFormat(parsing: "q4_k")
    #expect(q4k.canQuantize(rows: 576, columns: 1536))     // ffn_down
    #expect(!q4k.canQuantize(rows: 1536, columns: 576))    // ffn_gate / ffn_up
    #expect(!q4k.canQuantize(rows: 576, columns: 576))     // q_proj, o_proj
    #expect(!q4k.canQuantize(rows: 192, columns: 576))     // k_proj, v_proj
    #expect(try QuantFormat(parsing: "q4_0").canQuantize(rows: 192, columns: 576))
    #expect(!(try QuantFormat(parsing: "int4-g128")).canQuantize(rows: 576, columns: 576))
    let offered = QuantFormat.candidates(for: 1536, columns: 576)
    #expect(!offered.contains { if case .ggml(let t) = $0.scheme { return t.blockSize == 256 } else { return false } })
    #expect(offered.allSatisfy { $0.canQuantize(rows: 1536, columns: 576) })
    #expect(QuantFormat.candidates(for: 576, columns: 1536).count == QuantFormat.defaultCandidates.count)
  }

  @Test func unsupportedShapeThrows() throws {
    let format = try QuantFormat(parsing: "q6_k")
    #expect(throws: QuantizationError.self) { try quantize([Float](repeating: 0, count: 576), rows: 1, columns: 576, format: format) }
    #expect(throws: QuantizationError.self) { try quantize([Float.nan] + [Float](repeating: 0, count: 31), rows: 1, columns: 32, format: .f16) }
    #expect(throws: QuantizationError.self) { try PackedTensor(format: .f16, rows: 1, columns: 4, bytes: [0, 0]) }
  }

  @Test func listParsingAndCodable() throws {
    let list = try QuantFormat.parseList("int4-g128, q4_k,f16")
    #expect(list.map(\.name) == ["int4-g128", "q4_k", "f16"])
    #expect(throws: QuantizationError.self) { try QuantFormat.parseList("int4,int11") }
    // Codable as its canonical name, so plans and run stores hold "int4-g128", not a nested object.
    let data = try JSONEncoder().encode(list)
    #expect(String(decoding: data, as: UTF8.self) == #"["int4-g128","q4_k","f16"]"#)
    #expect(try JSONDecoder().decode([QuantFormat].self, from: data) == list)
    #expect(throws: (any Error).self) { try JSONDecoder().decode([QuantFormat].self, from: Data(#"["int9"]"#.utf8)) }
  }

  /// For every format, the size function equals the bytes our packer produces.
  @Test(arguments: QuantFormat.defaultCandidates + ["f32", "bf16", "int7-g32", "int5", "int6-g64-asym", "nf4", "ternary", "int2-asym"].map { try! QuantFormat(parsing: $0) })
  func sizeEqualsPackedBytes(format: QuantFormat) throws {
    for (rows, columns) in [(3, 512), (2, 256), (1, 33), (2, 0), (0, 256)] where format.canQuantize(rows: rows, columns: columns) {
      let w = randomFloats(rows * columns, seed: 11, scale: 0.1)
      let packed = try quantize(w, rows: rows, columns: columns, format: format)
      #expect(packed.bytes.count == format.sizeInBytes(rows: rows, columns: columns), "\(format) [\(rows), \(columns)]")
      #expect(packed.dequantize().count == rows * columns)
    }
  }
}
