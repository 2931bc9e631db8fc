import GGML

/// Ternary weights (`ternary[-gG]`, BitNet b1.58 absmean quantization, Ma et al. 2024): codes in {−1, 0, 1} with
/// one f16 scale per group, γ = mean |x|.
///
/// Group layout: `[γ f16][⌈L/5⌉ bytes]`; byte k packs the trits t = q + 1 of values 5k…5k+4 in base 3,
/// `Σ t_{5k+i}·3^i` (≤ 242), trailing trits of the last byte are 1 (zero). `q = clamp(round(x/γ), −1, 1)`,
/// `x̂ = q·γ`. Error: ≤ γ/2 for |x| ≤ 1.5γ, and |x| − γ beyond, so `|x − x̂| ≤ max(γ/2, amax − γ)`.
enum TernaryCodec {
  /// Bytes of one group of `length` weights.
  static func groupBytes(length: Int) -> Int { 2 + (length + 4) / 5 }

  @inline(__always) static func trit(_ codes: UnsafeRawPointer, _ j: Int) -> Int {
    var byte = Int(codes.load(fromByteOffset: j / 5, as: UInt8.self))
    for _ in 0..<(j % 5) { byte /= 3 }
    return byte % 3
  }

  /// Quantizes one row.
  static func quantizeRow(_ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer, group: Int?) {
    let length = group ?? x.count
    guard length > 0, let xs = x.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(x.count % length == 0 && out.count == x.count / length * size, "ternary: \(x.count) values into \(out.count) bytes")
    for g in 0..<(x.count / length) {
      let v = xs + g * length, y = o + g * size
      var sum: Float = 0
      for j in 0..<length { sum += abs(v[j]) }
      let gamma = BlockBytes.roundToF16(sum / Float(length))
      BlockBytes.storeF16(gamma, y, 0)
      let inv: Float = gamma > 0 ? 1 / gamma : 0
      for k in 0..<(length + 4) / 5 {
        var byte = 0
        var power = 1
        for i in 0..<5 {
          let j = 5 * k + i
          let t = j < length ? max(-1, min(1, Int((v[j] * inv).rounded()))) + 1 : 1
          byte += t * power
          power *= 3
        }
        y.storeBytes(of: UInt8(byte), toByteOffset: 2 + k, as: UInt8.self)
      }
    }
  }

  /// Reference: value i decoded on its own (divide the byte by 3^(i%5)).
  static func dequantizeRowReference(_ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, group: Int?) {
    let length = group ?? y.count
    guard length > 0, let s = src.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(y.count % length == 0 && src.count == y.count / length * size, "ternary: \(src.count) bytes for \(y.count) values")
    for i in 0..<y.count {
      let p = s + (i / length) * size
      y[i] = Float(trit(p + 2, i % length) - 1) * BlockBytes.f16(p, 0)
    }
  }

  /// Byte loop: five trits per byte peeled by repeated division.
  static func dequantizeRowFast(_ src: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>, group: Int?) {
    let length = group ?? out.count
    guard length > 0, let s = src.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length)
    precondition(out.count % length == 0 && src.count == out.count / length * size, "ternary: \(src.count) bytes for \(out.count) values")
    for g in 0..<(out.count / length) {
      let p = s + g * size
      let gamma = BlockBytes.f16(p, 0)
      let codes = (p + 2).assumingMemoryBound(to: UInt8.self)
      let y = o + g * length
      for k in 0..<(length + 4) / 5 {
        var byte = Int(codes[k])
        for i in 0..<min(5, length - 5 * k) {
          y[5 * k + i] = Float(byte % 3 - 1) * gamma
          byte /= 3
        }
      }
    }
  }

  /// Integer decode: codes in {−1, 0, 1}, one scale γ per 16 values.
  static func decodeInt(_ src: UnsafeRawBufferPointer, columns: Int, group: Int?, into row: DecodedIntRow) {
    let length = group ?? columns
    guard length > 0, let s = src.baseAddress else { return }
    let size = groupBytes(length: length)
    for i in 0..<columns {
      let p = s + (i / length) * size
      row.codes[i] = Int16(trit(p + 2, i % length) - 1)
      if i % 16 == 0 {
        row.scales[i / 16] = BlockBytes.f16(p, 0)
        row.offsets[i / 16] = 0
      }
    }
  }
}
