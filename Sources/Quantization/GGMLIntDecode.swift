import GGML

/// Integer decode of GGML blocks for the int8-activation dot: signed codes plus one (scale, offset) per 16
/// values, computed with the same products as `GGMLDecode`, so `scale·code + offset` equals the dequantized value
/// (bit for bit, up to the sign of a zero).
///
/// Codes and scales are read through `GGMLLayout`, the one place the bit layout of each block is written:
/// - q4_0: code q − 8, scale d.  q5_0: q − 16, d.  q8_0: q, d.  q4_1 / q5_1: q, d, offset m.
/// - q2_K: q, d·sc, −dmin·m.  q3_K: q − 4·(1 − hbit), d·(sc − 32).  q4_K / q5_K: q, d·sc, −dmin·m (per 32).
/// - q6_K: q − 32, d·sc.
enum GGMLIntDecode {
  static func decode(_ type: GGMLType, _ src: UnsafeRawBufferPointer, columns: Int, into row: DecodedIntRow) {
    guard columns > 0, let s = src.baseAddress else { return }
    let length = type.blockSize
    for b in 0..<(columns / length) {
      let p = s + b * type.bytesPerBlock
      let base = b * length
      @inline(__always) func unit(_ j: Int, _ scale: Float, _ offset: Float) {
        row.scales[(base + j) / 16] = scale
        row.offsets[(base + j) / 16] = offset
      }
      // One loop per type, so the per-value accessor is specialized (no switch inside the loop).
      switch type {
      case .q4_0: for j in 0..<32 { row.codes[base + j] = Int16(GGMLLayout.code(.q4_0, p, j)) }
      case .q4_1: for j in 0..<32 { row.codes[base + j] = Int16(GGMLLayout.code(.q4_1, p, j)) }
      case .q5_0: for j in 0..<32 { row.codes[base + j] = Int16(GGMLLayout.code(.q5_0, p, j)) }
      case .q5_1: for j in 0..<32 { row.codes[base + j] = Int16(GGMLLayout.code(.q5_1, p, j)) }
      case .q8_0: for j in 0..<32 { row.codes[base + j] = Int16(GGMLLayout.code(.q8_0, p, j)) }
      case .q2_K: for i in 0..<256 { row.codes[base + i] = Int16(GGMLLayout.code(.q2_K, p, i)) }
      case .q3_K: for i in 0..<256 { row.codes[base + i] = Int16(GGMLLayout.code(.q3_K, p, i)) }
      case .q4_K: for i in 0..<256 { row.codes[base + i] = Int16(GGMLLayout.code(.q4_K, p, i)) }
      case .q5_K: for i in 0..<256 { row.codes[base + i] = Int16(GGMLLayout.code(.q5_K, p, i)) }
      case .q6_K: for i in 0..<256 { row.codes[base + i] = Int16(GGMLLayout.code(.q6_K, p, i)) }
      default: preconditionFailure("\(type.name) has no integer codes")
      }
      let (d, m) = GGMLLayout.blockScales(type, p)
      if length == 32 {
        // Legacy: one scale (and minimum) for the whole block.
        unit(0, d, m)
        unit(16, d, m)
        continue
      }
      let sub = GGMLLayout.subBlockLength(type)
      for s in 0..<(length / sub) {
        let (sc, min) = GGMLLayout.subScale(type, p, s)
        let scale = d * Float(sc), offset = type.hasMinimum ? -(m * Float(min)) : 0
        for u in stride(from: 0, to: sub, by: 16) { unit(sub * s + u, scale, offset) }
      }
    }
  }
}
