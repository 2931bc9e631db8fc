import GGML

/// NormalFloat-4 (`nf4[-gG]`, Dettmers et al. 2023, QLoRA): codes index a fixed 16-entry codebook of normal
/// quantiles on [−1, 1], scaled per group by the f16 absmax.
///
/// Group layout: `[absmax f16][⌈L/32⌉ chunks of 16 bytes]`, code j of a chunk in the low nibble of byte j and code
/// j+16 in the high nibble (q4_0 order). `x̂ = codebook[q]·a`, q = nearest codebook entry to x/a (ties to the
/// lower entry). Error: half the widest codebook gap, `|x − x̂| ≤ 0.152·a` (gap −1 … −0.696), plus f16 rounding of a.
enum NF4Codec {
  /// bitsandbytes' NF4 table (`create_normal_map`), ascending.
  static let codebook: [Float] = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230850220947, 0.33791524171066284, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
  ]

  /// Midpoints between neighbouring entries: code q is chosen when midpoint[q−1] < v ≤ midpoint[q].
  static let midpoints: [Float] = (0..<15).map { (codebook[$0] + codebook[$0 + 1]) / 2 }

  /// Bytes of one group of `length` weights.
  static func groupBytes(length: Int) -> Int { 2 + (length + 31) / 32 * 16 }

  /// Quantizes one row; `threshold` clips the absmax (calibration), `.infinity` for plain absmax.
  static func quantizeRow(_ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer, group: Int?, threshold: Float) {
    let length = group ?? x.count
    guard length > 0, let xs = x.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(x.count % length == 0 && out.count == x.count / length * size, "nf4: \(x.count) values into \(out.count) bytes")
    for g in 0..<(x.count / length) {
      let v = xs + g * length, y = o + g * size
      y.initializeMemory(as: UInt8.self, repeating: 0, count: size)
      var amax: Float = 0
      for j in 0..<length { amax = max(amax, abs(v[j])) }
      let a = BlockBytes.roundToF16(min(amax, threshold))
      BlockBytes.storeF16(a, y, 0)
      let ia: Float = a > 0 ? 1 / a : 0
      for j in 0..<length {
        let t = v[j] * ia
        var q = 0
        while q < 15 && t > midpoints[q] { q += 1 }
        IntegerCodec.storeCode(y + 2, j, q, bits: 4)
      }
    }
  }

  /// Reference: value i decoded on its own.
  static func dequantizeRowReference(_ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, group: Int?) {
    let length = group ?? y.count
    guard length > 0, let s = src.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(y.count % length == 0 && src.count == y.count / length * size, "nf4: \(src.count) bytes for \(y.count) values")
    for i in 0..<y.count {
      let p = s + (i / length) * size
      y[i] = codebook[IntegerCodec.loadCode(p + 2, i % length, bits: 4)] * BlockBytes.f16(p, 0)
    }
  }

  /// Chunk loop with the codebook pre-scaled per group (same product `codebook[q]·a`, so bit-identical).
  static func dequantizeRowFast(_ src: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>, group: Int?) {
    let length = group ?? out.count
    guard length > 0, let s = src.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(out.count % length == 0 && src.count == out.count / length * size, "nf4: \(src.count) bytes for \(out.count) values")
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { table in
      for g in 0..<(out.count / length) {
        let p = s + g * size
        let a = BlockBytes.f16(p, 0)
        for q in 0..<16 { table[q] = codebook[q] * a }
        let codes = (p + 2).assumingMemoryBound(to: UInt8.self)
        let y = o + g * length
        var j = 0
        while j < length {
          let chunk = codes + (j / 32) * 16
          for k in 0..<min(16, length - j) { y[j + k] = table[Int(chunk[k] & 15)] }
          if length - j > 16 { for k in 0..<min(16, length - j - 16) { y[j + 16 + k] = table[Int(chunk[k] >> 4)] } }
          j += 32
        }
      }
    }
  }
}
