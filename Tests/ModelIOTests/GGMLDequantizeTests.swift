import GGML
import ModelIO
import Testing
import _TestSupport

@Suite struct GGMLDequantizeTests {
  static let goldenTypes: [GGMLType] = [
    .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
  ]

  /// Every type against gguf-py's `gguf.quants.dequantize` on random valid blocks (scripts/gguf_golden.py).
  /// Tolerance: none. Each value is an integer code times f16-derived scales, computed in Float in the same order
  /// as ggml's C reference and numpy (`(d·sc)·q − dmin·m`, no FMA on either side), so results are bit-identical.
  @Test(arguments: goldenTypes)
  func matchesGGUFPyBitForBit(type: GGMLType) throws {
    let golden = try GGUFGolden("golden/blocks_\(type.name).txt")
    #expect(golden.fields["type"] == type.name)
    let raw = GGUFGolden.hexBytes(golden.fields["raw"] ?? "")
    let want = GGUFGolden.floatBits(golden.fields["values"] ?? "")
    let count = try #require(Int(golden.fields["count"] ?? ""))
    #expect(want.count == count)
    let got = try GGMLDequantize.reference(type, raw, count: count)
    #expect(got.count == count)
    // The fast decoder, which `GGUFFile.tensor(named:)` uses, gives the same bits.
    let fast = try raw.withUnsafeBytes { src in try GGMLDequantize.dequantize(type, src, count: count) }
    #expect(fast.map(\.bitPattern) == got.map(\.bitPattern))
    var mismatches = 0
    for i in 0..<min(got.count, want.count) where got[i].bitPattern != want[i] {
      if mismatches < 5 {
        Issue.record("\(type.name) value \(i): got \(got[i]) (\(String(got[i].bitPattern, radix: 16))), gguf-py \(Float(bitPattern: want[i]))")
      }
      mismatches += 1
    }
    #expect(mismatches == 0, "\(mismatches) of \(count) values differ")
  }

  /// The buffer-filling entry point writes exactly what the allocating one returns.
  @Test func intoBufferMatchesAllocating() throws {
    let golden = try GGUFGolden("golden/blocks_Q4_K.txt")
    let raw = GGUFGolden.hexBytes(golden.fields["raw"] ?? "")
    let want = try GGMLDequantize.reference(.q4_K, raw, count: 512)
    var got = [Float](repeating: .nan, count: 512)
    try raw.withUnsafeBytes { src in
      try got.withUnsafeMutableBufferPointer { dst in try GGMLDequantize.reference(.q4_K, src, into: dst) }
    }
    #expect(got == want)
  }

  /// Plain integer and float types decode exactly; F64 rounds to nearest.
  @Test func scalarTypes() throws {
    var bytes: [UInt8] = []
    for v: Int8 in [-128, -1, 0, 127] { bytes.append(UInt8(bitPattern: v)) }
    #expect(try GGMLDequantize.reference(.i8, bytes, count: 4) == [-128, -1, 0, 127])
    bytes = []
    for v: Int16 in [-32768, 300] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    #expect(try GGMLDequantize.reference(.i16, bytes, count: 2) == [-32768, 300])
    bytes = []
    for v: Int32 in [-7, 1 << 24] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    #expect(try GGMLDequantize.reference(.i32, bytes, count: 2) == [-7, 16_777_216])
    bytes = []
    for v in [0.1, -2.5] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    #expect(try GGMLDequantize.reference(.f64, bytes, count: 2) == [Float(0.1), -2.5])
  }

  /// A Q8_0 block built by hand: d = 0.5 (f16 0x3800), codes −128…127 spread over the block.
  @Test func q8_0ByHand() throws {
    var rng = SplitMix64(seed: 11)
    let codes = (0..<32).map { _ in Int8.random(in: .min ... .max, using: &rng) }
    let block: [UInt8] = [0x00, 0x38] + codes.map { UInt8(bitPattern: $0) }
    let got = try GGMLDequantize.reference(.q8_0, block, count: 32)
    #expect(got == codes.map { Float($0) * 0.5 })
  }

  @Test func wrongByteCountIsSizeMismatch() {
    #expect(throws: ModelIOError.self) { try GGMLDequantize.reference(.q4_0, [UInt8](repeating: 0, count: 17), count: 32) }
    do {
      _ = try GGMLDequantize.reference(.q4_0, [UInt8](repeating: 0, count: 17), count: 32)
    } catch { #expect(error.code == .sizeMismatch) }
    do {
      _ = try GGMLDequantize.reference(.q4_K, [UInt8](repeating: 0, count: 144), count: 250)
      Issue.record("250 values are not whole Q4_K blocks")
    } catch { #expect(error.code == .sizeMismatch) }
  }

  @Test(arguments: GGMLType.allCases.filter { !$0.canDequantize })
  func typesWithoutDecoderAreUnsupported(type: GGMLType) {
    let bytes = [UInt8](repeating: 0, count: type.bytesPerBlock)
    do {
      _ = try GGMLDequantize.reference(type, bytes, count: type.blockSize)
      Issue.record("\(type.name) should not decode")
    } catch { #expect(error.code == .unsupported) }
  }

  @Test func emptyInputGivesEmptyOutput() throws {
    for type in Self.goldenTypes { #expect(try GGMLDequantize.reference(type, [], count: 0).isEmpty) }
  }
}
