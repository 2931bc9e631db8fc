import ModelIO
import Testing
import _TestSupport

@Suite("SafetensorsDType conversions")
struct SafetensorsDTypeTests {
  /// Every 16-bit pattern once, little-endian, behind `offset` junk bytes (so the data is misaligned when
  /// `offset` is odd, as a tensor may be inside a file).
  static func allPatterns(offset: Int) -> [UInt8] {
    [UInt8](repeating: 0xAB, count: offset) + (0...UInt16.max).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
  }

  /// The fast decoder must equal the reference bit for bit (NaN payloads included): both widen exactly, so
  /// there is no tolerance. F16 and BF16 are checked on all 65,536 patterns, F32 on seeded random bits.
  @Test(arguments: [SafetensorsDType.f16, .bf16, .f32], [0, 1, 3])
  func fastDecodingMatchesReference(dtype: SafetensorsDType, offset: Int) {
    var bytes = Self.allPatterns(offset: offset)
    if dtype == .f32 {
      var rng = SplitMix64(seed: 5)
      bytes = [UInt8](repeating: 0, count: offset) + (0..<4 * 4099).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    bytes.withUnsafeBytes { all in
      let raw = UnsafeRawBufferPointer(rebasing: all[offset...])
      let fast = dtype.decodeFloats(raw)
      let reference = dtype.decodeFloatsReference(raw)
      #expect(fast.count == raw.count / dtype.byteCount)
      #expect(fast.map(\.bitPattern) == reference.map(\.bitPattern), "\(dtype) offset \(offset)")
    }
  }

  @Test func sizesAndSpellings() {
    #expect(SafetensorsDType.allCases.count == 19)
    #expect(SafetensorsDType(rawValue: "F8_E4M3")?.byteCount == 1)
    #expect(SafetensorsDType(rawValue: "BF16")?.byteCount == 2)
    #expect(SafetensorsDType(rawValue: "C64")?.byteCount == 8)
    #expect(SafetensorsDType(rawValue: "F4") == nil)
    #expect(SafetensorsDType.allCases.filter(\.convertsToFloat) == [.f16, .bf16, .f32])
  }
}
