import GGML
import Testing

@Suite struct GGMLTypeTests {
  /// (id, name, block size, bytes per block) from ggml.h / ggml-common.h's `static_assert`s (Q8_1 is 36 bytes
  /// there; gguf-py's GGML_QUANT_SIZES still says 40).
  static let table: [(UInt32, String, Int, Int)] = [
    (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36), (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17), (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18),
  ]

  @Test func sizesMatchGGML() throws {
    #expect(GGMLType.allCases.count == Self.table.count)
    for (id, name, block, size) in Self.table {
      let t = try #require(GGMLType(rawValue: id), "id \(id)")
      #expect(t.name == name)
      #expect(t.blockSize == block, "\(name)")
      #expect(t.bytesPerBlock == size, "\(name)")
      #expect(GGMLType(name: name.lowercased()) == t)
    }
  }

  @Test func removedIdsAreUnknown() {
    for id: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 42, 1000] { #expect(GGMLType(rawValue: id) == nil, "id \(id)") }
    #expect(GGMLType(name: "Q4_K_M") == nil)  // an ftype, not a tensor type
  }

  /// DESIGN.md's llama.cpp figures: Q4_0 4.5 and Q8_0 8.5 bits per weight; Q6_K 6.5625.
  @Test func bitsPerWeight() {
    #expect(GGMLType.q4_0.bitsPerWeight == 4.5)
    #expect(GGMLType.q8_0.bitsPerWeight == 8.5)
    #expect(GGMLType.q6_K.bitsPerWeight == 6.5625)
    #expect(GGMLType.q4_K.bitsPerWeight == 4.5)
  }

  @Test func rowSizes() {
    #expect(GGMLType.q4_1.rowSizeInBytes(576) == 18 * 20)
    #expect(GGMLType.q4_K.rowSizeInBytes(576) == nil)  // 576 is not a multiple of 256
    #expect(GGMLType.q6_K.rowSizeInBytes(1536) == 6 * 210)
    #expect(GGMLType.f32.rowSizeInBytes(Int.max) == nil)  // overflow
    #expect(GGMLType.f32.rowSizeInBytes(-1) == nil)
  }

  /// `ggml_type_name` spells K-quants with a capital K and everything else in lower case.
  @Test func ggmlNames() {
    #expect(GGMLType.q4_K.ggmlName == "q4_K")
    #expect(GGMLType.q4_0.ggmlName == "q4_0")
    #expect(GGMLType.iq2_XXS.ggmlName == "iq2_xxs")
    #expect(GGMLType.bf16.ggmlName == "bf16")
    for t in GGMLType.allCases { #expect(GGMLType(name: t.ggmlName) == t, "\(t.name)") }
  }

  /// The weight formats Quantization offers: the legacy types and the K-quants, with their code widths.
  @Test func quantizableTypes() {
    let quantizable = GGMLType.allCases.filter(\.canQuantize)
    #expect(quantizable == [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    #expect(quantizable.map { $0.codeBits } == [4, 4, 5, 5, 8, 2, 3, 4, 5, 6])
    #expect(quantizable.filter { $0.hasMinimum } == [.q4_1, .q5_1, .q2_K, .q4_K, .q5_K])
    #expect(quantizable.allSatisfy { $0.canDequantize })
  }
}
