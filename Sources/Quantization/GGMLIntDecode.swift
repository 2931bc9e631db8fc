/// Integer decode of GGML blocks for the int8-activation dot: signed codes plus one (scale, offset) per 16
/// values, computed with the same products as `dequantize_row_*`, so `scale·code + offset` is bit-identical to
/// the dequantized value.
///
/// - q4_0: code q − 8, scale d.  q5_0: q − 16, d.  q8_0: q, d.  q4_1 / q5_1: q, d, offset m.
/// - q2_K: q, d·sc, −dmin·m.  q3_K: q − 4·(1 − hbit), d·(sc − 32).  q4_K / q5_K: q, d·sc, −dmin·m (per 32).
/// - q6_K: q − 32, d·sc.
enum GGMLIntDecode {
  static func decode(_ type: GGMLType, _ src: UnsafeRawBufferPointer, columns: Int, into row: DecodedIntRow) {
    guard columns > 0, let s = src.baseAddress else { return }
    for b in 0..<(columns / type.blockSize) {
      let p = s + b * type.bytesPerBlock
      let base = b * type.blockSize
      @inline(__always) func u8(_ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: UInt8.self)) }
      @inline(__always) func unit(_ j: Int, _ scale: Float, _ offset: Float) {
        row.scales[(base + j) / 16] = scale
        row.offsets[(base + j) / 16] = offset
      }
      switch type {
      case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0:
        let d = BlockBytes.f16(p, 0)
        let m: Float = type.hasMinimum ? BlockBytes.f16(p, 2) : 0
        let qs = type == .q4_0 ? 2 : type == .q4_1 ? 4 : type == .q5_0 ? 6 : 8  // after d, m, qh
        let qh = type == .q5_0 ? 2 : 4
        for j in 0..<32 {
          var q: Int
          if type == .q8_0 {
            q = Int(p.load(fromByteOffset: 2 + j, as: Int8.self))
          } else {
            q = j < 16 ? u8(qs + j) & 15 : u8(qs + j - 16) >> 4
            if type == .q5_0 || type == .q5_1 { q |= Int((BlockBytes.u32(p, qh) >> UInt32(j)) & 1) << 4 }
            if type == .q4_0 { q -= 8 } else if type == .q5_0 { q -= 16 }
          }
          row.codes[base + j] = Int16(q)
        }
        unit(0, d, m)
        unit(16, d, m)
      case .q2_K:
        let d = BlockBytes.f16(p, 80), dmin = BlockBytes.f16(p, 82)
        for i in 0..<256 {
          row.codes[base + i] = Int16((u8(16 + 32 * (i / 128) + i % 32) >> (2 * ((i % 128) / 32))) & 3)
        }
        for sub in 0..<16 { unit(16 * sub, d * Float(u8(sub) & 15), -(dmin * Float(u8(sub) >> 4))) }
      case .q3_K:
        let d = BlockBytes.f16(p, 108)
        for i in 0..<256 {
          let low = (u8(32 + 32 * (i / 128) + i % 32) >> (2 * ((i % 128) / 32))) & 3
          let high = (u8(i % 32) >> (i / 32)) & 1
          row.codes[base + i] = Int16(low - (high == 1 ? 0 : 4))
        }
        for sub in 0..<16 { unit(16 * sub, d * Float(KQuantCodec.q3Scale(p + 96, sub)), 0) }
      case .q4_K, .q5_K:
        let d = BlockBytes.f16(p, 0), dmin = BlockBytes.f16(p, 2)
        let qs = type == .q4_K ? 16 : 48
        for i in 0..<256 {
          let byte = u8(qs + 32 * (i / 64) + i % 32)
          var q = i % 64 < 32 ? byte & 15 : byte >> 4
          if type == .q5_K { q |= ((u8(16 + i % 32) >> (i / 32)) & 1) << 4 }
          row.codes[base + i] = Int16(q)
        }
        for sub in 0..<8 {
          let (sc, m) = KQuantCodec.scaleMinK4(p + 4, sub)
          unit(32 * sub, d * Float(sc), -(dmin * Float(m)))
          unit(32 * sub + 16, d * Float(sc), -(dmin * Float(m)))
        }
      case .q6_K:
        let d = BlockBytes.f16(p, 208)
        for i in 0..<256 {
          let r = i % 128, group = r / 32
          let byte = u8(64 * (i / 128) + i % 32 + 32 * (group % 2))
          let low = group < 2 ? byte & 15 : byte >> 4
          let high = (u8(128 + 32 * (i / 128) + i % 32) >> (2 * group)) & 3
          row.codes[base + i] = Int16((low | (high << 4)) - 32)
        }
        for sub in 0..<16 { unit(16 * sub, d * Float(Int8(truncatingIfNeeded: u8(192 + sub))), 0) }
      }
    }
  }
}
