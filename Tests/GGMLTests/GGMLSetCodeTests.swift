import Testing
import TensorCore
import _TestSupport

@testable import GGML

/// `GGMLLayout.setCode` is the inverse of `GGMLLayout.code`: on seeded random blocks of every quantizable type, each
/// code of the range written at each position reads back, and every other value's code and the block scales stay.
@Suite struct GGMLSetCodeTests {
  @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
  func setCodeInvertsCode(_ type: GGMLType) {
    var rng = SplitMix64(seed: 0x5E7C0DE ^ UInt64(type.rawValue))
    var block = (0..<type.bytesPerBlock).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let range = GGMLLayout.codeRange(type)
    block.withUnsafeMutableBytes { raw in
      let p = raw.baseAddress!
      let scales = GGMLLayout.blockScales(type, p)
      for i in 0..<type.blockSize {
        for c in [range.lowerBound, range.upperBound, Int.random(in: range, using: &rng)] {
          let before = (0..<type.blockSize).map { GGMLLayout.code(type, p, $0) }
          GGMLLayout.setCode(type, p, i, c)
          let after = (0..<type.blockSize).map { GGMLLayout.code(type, p, $0) }
          #expect(after[i] == c, "\(type.name) value \(i) code \(c)")
          #expect(after.enumerated().allSatisfy { $0.offset == i || $0.element == before[$0.offset] }, "\(type.name) value \(i): other codes changed")
          let now = GGMLLayout.blockScales(type, p)
          #expect(now.d.bitPattern == scales.d.bitPattern && now.m.bitPattern == scales.m.bitPattern)
        }
      }
    }
  }
}
