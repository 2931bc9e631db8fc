/// Vectorizable q4_0 and q8_0 quantizers: the same bytes as the reference (`quantizeRow`), written so LLVM can
/// vectorize the block loops. What differs from the reference:
/// - amax is an integer max over |x| bit patterns (a Float max reduction does not vectorize); q4_0 then finds the
///   first index holding that magnitude, which is the reference's "first on ties" value;
/// - float-to-int conversions go through truncation and the 1.5·2²³ mantissa trick instead of trapping `Int(_:)`.
extension GGMLLegacyCodec {
  /// Quantizes one row of q4_0 or q8_0 blocks; other types use `quantizeRow`.
  static func quantizeRowFast(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer) {
    guard type == .q4_0 || type == .q8_0 else { return quantizeRow(type, x, out) }
    precondition(x.count % 32 == 0 && out.count == x.count / 32 * type.bytesPerBlock,
      "\(type.ggmlName): \(x.count) values into \(out.count) bytes")
    guard let xs = x.baseAddress, let o = out.baseAddress else { return }
    for b in 0..<(x.count / 32) {
      let v = xs + 32 * b
      let y = o + b * type.bytesPerBlock
      var amaxBits: UInt32 = 0
      for j in 0..<32 { amaxBits = max(amaxBits, v[j].bitPattern & 0x7FFF_FFFF) }
      if type == .q8_0 {
        let d = Float(bitPattern: amaxBits) / 127
        let id: Float = d != 0 ? 1 / d : 0
        BlockBytes.storeF16(d, y, 0)
        let qs = (y + 2).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { qs[j] = BlockBytes.roundAwayToInt8(v[j] * id) }
      } else {
        var first = 0
        while v[first].bitPattern & 0x7FFF_FFFF != amaxBits { first += 1 }
        let max = amaxBits == 0 ? 0 : v[first]
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        BlockBytes.storeF16(d, y, 0)
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        @inline(__always) func code(_ t: Float) -> UInt8 {
          // trunc(t + 8.5) for t + 8.5 in [0, 17): exact small integer, read from the mantissa; then min(15, ·).
          let r = (t + 8.5).rounded(.towardZero)
          return UInt8(truncatingIfNeeded: min(15, (r + 12_582_912).bitPattern & 0x7F_FFFF &- 0x40_0000))
        }
        for j in 0..<16 { qs[j] = code(v[j] * id) | (code(v[j + 16] * id) << 4) }
      }
    }
  }
}
