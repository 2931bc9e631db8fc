/// GGML's legacy 32-value block types q4_0, q4_1, q5_0, q5_1, q8_0: quantizers byte-identical to ggml's
/// `quantize_row_*_ref` (and gguf-py's numpy port). Decoding is `GGMLDecode`'s; the layout is `GGMLLayout`'s.
///
/// Formulas (per block of 32 values x, `d` and `m` stored as f16):
/// - q4_0: `max` = the value of largest |x| (first on ties), `d = max / −8`, `q = min(15, trunc(x/d + 8.5))`,
///   `x̂ = (q − 8)·d`. Error ≤ |d| per value (half a step, one step for the clamped top code) plus the f16 rounding
///   of d over at most 8 steps: `|x − x̂| ≤ |d|·(1 + 2⁻⁸)`.
/// - q4_1: `d = (max − min)/15`, `q = min(15, trunc((x − min)/d + 0.5))`, `x̂ = q·d + m`. Error ≤ d/2 plus f16
///   rounding of d and m.
/// - q5_0 / q5_1: as q4_0 / q4_1 with 16 and 31; the 5th bit of value j lives in bit j of the u32 `qh`.
/// - q8_0: `d = amax/127`, `q = roundf(x/d)`, `x̂ = q·d`. Error ≤ |d|/2 plus 127·|d|·2⁻¹¹.
///
/// Nibble order: byte j of `qs` holds value j in its low nibble and value j+16 in its high nibble.
enum GGMLLegacyCodec {
  /// Quantizes one row (ggml `quantize_row_*_ref`). `x.count` must be a multiple of 32 and `out.count` the row size.
  static func quantizeRow(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer) {
    precondition(x.count % 32 == 0 && out.count == x.count / 32 * type.bytesPerBlock,
      "\(type.ggmlName): \(x.count) values into \(out.count) bytes")
    guard let xs = x.baseAddress, let o = out.baseAddress else { return }
    for b in 0..<(x.count / 32) {
      let v = xs + 32 * b
      let y = o + b * type.bytesPerBlock
      switch type {
      case .q4_0: quantizeSymmetric(v, y, levels: 8, bits: 4)
      case .q5_0: quantizeSymmetric(v, y, levels: 16, bits: 5)
      case .q4_1: quantizeAffine(v, y, bits: 4)
      case .q5_1: quantizeAffine(v, y, bits: 5)
      case .q8_0: quantizeQ8(v, y)
      default: preconditionFailure("\(type.ggmlName) is not a legacy type")
      }
    }
  }

  /// q4_0 / q5_0: `d = max/−levels`, `q = min(2·levels − 1, trunc(x·(1/d) + levels + 0.5))`.
  private static func quantizeSymmetric(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, levels: Int, bits: Int
  ) {
    var amax: Float = 0
    var max: Float = 0
    for j in 0..<32 where amax < abs(x[j]) {
      amax = abs(x[j])
      max = x[j]
    }
    let d = max / -Float(levels)
    let id: Float = d != 0 ? 1 / d : 0
    BlockBytes.storeF16(d, y, 0)
    let offset = Float(levels) + 0.5
    storeCodes(y, bits: bits, at: 2) { j in min(2 * levels - 1, Int(x[j] * id + offset)) }
  }

  /// q4_1 / q5_1: `d = (max − min)/(2^bits − 1)`, `q = min(2^bits − 1, trunc((x − min)·(1/d) + 0.5))`.
  private static func quantizeAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, bits: Int) {
    var lo = Float.greatestFiniteMagnitude
    var hi = -Float.greatestFiniteMagnitude
    for j in 0..<32 {
      if x[j] < lo { lo = x[j] }
      if x[j] > hi { hi = x[j] }
    }
    let top = (1 << bits) - 1
    let d = (hi - lo) / Float(top)
    let id: Float = d != 0 ? 1 / d : 0
    BlockBytes.storeF16(d, y, 0)
    BlockBytes.storeF16(lo, y, 2)
    storeCodes(y, bits: bits, at: 4) { j in min(top, Int((x[j] - lo) * id + 0.5)) }
  }

  /// Writes 32 codes as `[qh u32 if 5 bits][qs 16 bytes]` starting at `offset` (also the importance path's).
  @inline(__always) static func storeCodes(
    _ y: UnsafeMutableRawPointer, bits: Int, at offset: Int, code q: (Int) -> Int
  ) {
    var qsOffset = offset
    if bits == 5 {
      var qh: UInt32 = 0
      for j in 0..<32 { qh |= UInt32((q(j) >> 4) & 1) << UInt32(j) }
      BlockBytes.storeU32(qh, y, offset)
      qsOffset += 4
    }
    for j in 0..<16 {
      y.storeBytes(of: UInt8((q(j) & 15) | ((q(j + 16) & 15) << 4)), toByteOffset: qsOffset + j, as: UInt8.self)
    }
  }

  /// q8_0: `d = amax/127`, `q = roundf(x·(1/d))`.
  private static func quantizeQ8(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    BlockBytes.storeF16(d, y, 0)
    for j in 0..<32 {
      y.storeBytes(of: Int8(BlockBytes.roundAway(x[j] * id)), toByteOffset: 2 + j, as: Int8.self)
    }
  }
}
