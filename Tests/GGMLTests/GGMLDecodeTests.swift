import GGML
import Testing
import _TestSupport

/// `GGMLDecode.fast` against `GGMLDecode.reference`, and `GGMLEncode.fast` against `GGMLEncode.reference`.
///
/// Tolerance: none. Both decoders compute each value as an integer code times f16-derived scales with the same
/// products in the same order, so they must agree bit for bit (STYLE §7: integer decode plus one scale multiply).
/// Agreement with ggml itself is checked elsewhere: gguf-py's `dequantize` in ModelIOTests' GGMLDequantizeTests,
/// ggml's quantizer bytes in QuantizationTests' GGMLGoldenTests.
@Suite struct GGMLDecodeTests {
  static let decodable = GGMLType.allCases.filter(\.canDequantize)
  static let blockCounts = [0, 1, 2, 3, 7]

  /// Byte offsets of a block's f16 scales (from ggml-common.h), which the random blocks keep finite.
  static func f16Offsets(_ type: GGMLType) -> [Int] {
    switch type {
    case .q4_0, .q5_0, .q8_0: [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    case .q6_K: [208]
    default: []
    }
  }

  /// `blocks` random blocks of `type`: every byte from `SplitMix64(seed:)`, then each f16 scale replaced by a random
  /// finite one (any sign, normal or subnormal, odd mantissas; exponent 31, infinity and NaN, excluded).
  static func randomBlocks(_ type: GGMLType, blocks: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var bytes = (0..<(blocks * type.bytesPerBlock)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    guard type.blockSize > 1 else { return bytes }  // plain types: any bits, compared as bits
    for b in 0..<blocks {
      for offset in f16Offsets(type) {
        var h = UInt16.random(in: 0...UInt16.max, using: &rng)
        if h & 0x7C00 == 0x7C00 { h &= 0xBFFF }  // exponent 31 → 15: a finite scale near 1
        let at = b * type.bytesPerBlock + offset
        bytes[at] = UInt8(h & 0xFF)
        bytes[at + 1] = UInt8(h >> 8)
      }
    }
    return bytes
  }

  static func decode(_ type: GGMLType, _ bytes: [UInt8], fast: Bool) -> [Float] {
    let count = bytes.count / type.bytesPerBlock * type.blockSize
    var out = [Float](repeating: .nan, count: count)
    bytes.withUnsafeBytes { src in
      out.withUnsafeMutableBufferPointer { dst in
        if fast { GGMLDecode.fast(type, src, into: dst) } else { GGMLDecode.reference(type, src, into: dst) }
      }
    }
    return out
  }

  @Test(arguments: decodable, blockCounts)
  func fastMatchesReferenceBitForBit(type: GGMLType, blocks: Int) {
    for seed: UInt64 in 1...4 {
      let bytes = Self.randomBlocks(type, blocks: blocks, seed: seed &* 1_000 &+ UInt64(type.rawValue))
      let want = Self.decode(type, bytes, fast: false), got = Self.decode(type, bytes, fast: true)
      #expect(want.count == blocks * type.blockSize)
      let bad = (0..<want.count).filter { want[$0].bitPattern != got[$0].bitPattern }
      #expect(bad.isEmpty, "\(type.name) blocks=\(blocks) seed=\(seed): values \(bad.prefix(5)) differ")
      if type.blockSize > 1 { #expect(want.allSatisfy { $0.isFinite }, "\(type.name): finite scales give finite values") }
    }
  }

  /// q4_0 by hand: d = 0.5 (f16 0x3800); byte j holds value j (low nibble) and value j + 16 (high nibble);
  /// x = d·(q − 8).
  @Test func q4_0ByHand() {
    var block: [UInt8] = [0x00, 0x38]
    block += (0..<16).map { j in UInt8(j) | UInt8(15 - j) << 4 }
    for fast in [false, true] {
      let y = Self.decode(.q4_0, block, fast: fast)
      #expect(y[0..<16].elementsEqual((0..<16).map { Float($0 - 8) * 0.5 }))
      #expect(y[16..<32].elementsEqual((0..<16).map { Float(7 - $0) * 0.5 }))
    }
  }

  /// q2_K by hand: every sub-block has scale 3, min 1 (byte 0x13); d = 1, dmin = 0.5; all 2-bit codes 2
  /// (bytes 0b10101010); x = (d·3)·2 − 0.5·1 = 5.5.
  @Test func q2_KByHand() {
    var block = [UInt8](repeating: 0x13, count: 16) + [UInt8](repeating: 0xAA, count: 64)
    block += [0x00, 0x3C, 0x00, 0x38]
    for fast in [false, true] { #expect(Self.decode(.q2_K, block, fast: fast) == [Float](repeating: 5.5, count: 256)) }
  }

  /// The quantizers' vectorizable twins write the reference's bytes.
  @Test(arguments: GGMLType.allCases.filter(\.canQuantize))
  func encodeFastMatchesReference(type: GGMLType) {
    let x = randomFloats(4 * 256, seed: UInt64(type.rawValue), scale: 3)
    let size = type.rowSizeInBytes(x.count)!
    var want = [UInt8](repeating: 0, count: size), got = [UInt8](repeating: 0xFF, count: size)
    x.withUnsafeBufferPointer { src in
      want.withUnsafeMutableBytes { GGMLEncode.reference(type, src, into: $0) }
      got.withUnsafeMutableBytes { GGMLEncode.fast(type, src, into: $0) }
    }
    #expect(want == got, "\(type.name)")
  }
}
