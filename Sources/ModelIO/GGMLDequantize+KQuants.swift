/// K-quants: 256-value super-blocks with per-sub-block scales (ggml-quants.c `dequantize_row_q*_K`).
///
/// Index conventions used below, for value `e` of a super-block (0 ..< 256): `half = e / 128` selects a 128-value
/// half, and within it `r = e % 128`. Two-bit fields are packed four to a byte: value `e` lives in byte
/// `32 · half + r % 32` at bit `2 · (r / 32)`. Nibbles pack two to a byte: 4-bit value of sub-block `j` (32 values)
/// lives in byte `32 · (j / 2) + e % 32`, low nibble for even `j`.
extension GGMLDequantize {
  /// Q2_K, 84 bytes: `scales[16] @0, qs[64] @16, d: f16 @80, dmin: f16 @82`. Sub-block `s = e / 16` has scale
  /// `scales[s] & 15` and min `scales[s] >> 4`; `y = (d · sc) · q − dmin · m`, q the 2-bit field.
  static func q2_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 84 * b, o = y + 256 * b
      let d = f16(x, 80), dmin = f16(x, 82)
      for s in 0..<16 {
        let sc = byte(x, s)
        let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
        for k in 0..<16 {
          let e = 16 * s + k, r = e % 128
          let q = (byte(x, 16 + 32 * (e / 128) + r % 32) >> UInt8(2 * (r / 32))) & 3
          o[e] = dl * Float(q) - ml
        }
      }
    }
  }

  /// Q3_K, 110 bytes: `hmask[32] @0, qs[64] @32, scales[12] @96, d: f16 @108`. The 2-bit low part of value `e` is
  /// packed as in Q2_K; its high bit is bit `e / 32` of `hmask[e % 32]`, and a clear bit subtracts 4
  /// (`q = low − 4 · (1 − bit)`). Sixteen 6-bit scales: low nibbles in bytes 0..7 (low halves first, then high
  /// halves), top two bits in bytes 8..11 (scale `i` at bits `2 · (i / 4)` of byte `8 + i % 4`); each is stored
  /// plus 32. `y = (d · (sc − 32)) · q`.
  static func q3_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 110 * b, o = y + 256 * b
      let d = f16(x, 108)
      for s in 0..<16 {
        let low = s < 8 ? byte(x, 96 + s) & 0x0F : byte(x, 96 + s - 8) >> 4
        let high = (byte(x, 96 + 8 + s % 4) >> UInt8(2 * (s / 4))) & 3
        let dl = d * Float(Int(low | high << 4) - 32)
        for k in 0..<16 {
          let e = 16 * s + k, r = e % 128
          let lowBits = (byte(x, 32 + 32 * (e / 128) + r % 32) >> UInt8(2 * (r / 32))) & 3
          let highBit = (byte(x, e % 32) >> UInt8(e / 32)) & 1
          o[e] = dl * Float(Int(lowBits) - (highBit == 1 ? 0 : 4))
        }
      }
    }
  }

  /// The 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes at `s` (ggml `get_scale_min_k4`):
  /// for `j < 4`, `sc = s[j] & 63`, `m = s[j + 4] & 63`; otherwise the low 4 bits come from `s[j + 4]` (scale low
  /// nibble, min high nibble) and the top 2 bits from the top of `s[j − 4]` and `s[j]`.
  @inline(__always) static func scaleMinK4(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 { return (byte(s, j) & 63, byte(s, j + 4) & 63) }
    let scale = (byte(s, j + 4) & 0x0F) | ((byte(s, j - 4) >> 6) << 4)
    let min = (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4)
    return (scale, min)
  }

  /// Q4_K, 144 bytes: `d: f16 @0, dmin: f16 @2, scales[12] @4, qs[128] @16`. Eight sub-blocks of 32; sub-block
  /// `j` takes nibble `j % 2` of `qs[32 · (j / 2) + l]`; `y = (d · sc_j) · q − dmin · m_j`.
  static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 144 * b, o = y + 256 * b
      let d = f16(x, 0), dmin = f16(x, 2)
      for j in 0..<8 {
        let (sc, m) = scaleMinK4(x + 4, j)
        let d1 = d * Float(sc), m1 = dmin * Float(m)
        let shift = UInt8(4 * (j % 2))
        for l in 0..<32 {
          let q = (byte(x, 16 + 32 * (j / 2) + l) >> shift) & 0x0F
          o[32 * j + l] = d1 * Float(q) - m1
        }
      }
    }
  }

  /// Q5_K, 176 bytes: `d: f16 @0, dmin: f16 @2, scales[12] @4, qh[32] @16, qs[128] @48`. Low nibbles as Q4_K;
  /// the fifth bit of value `l` of sub-block `j` is bit `j` of `qh[l]`; `y = (d · sc_j) · q − dmin · m_j`.
  static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 176 * b, o = y + 256 * b
      let d = f16(x, 0), dmin = f16(x, 2)
      for j in 0..<8 {
        let (sc, m) = scaleMinK4(x + 4, j)
        let d1 = d * Float(sc), m1 = dmin * Float(m)
        let shift = UInt8(4 * (j % 2))
        for l in 0..<32 {
          let low = (byte(x, 48 + 32 * (j / 2) + l) >> shift) & 0x0F
          let high = (byte(x, 16 + l) >> UInt8(j)) & 1
          o[32 * j + l] = d1 * Float(low | high << 4) - m1
        }
      }
    }
  }

  /// Q6_K, 210 bytes: `ql[128] @0, qh[64] @128, scales: int8[16] @192, d: f16 @208`. In half `h` (128 values),
  /// value `r` takes the nibble `r / 64` of `ql[64 · h + r % 64]` and the 2-bit field `r / 32` of
  /// `qh[32 · h + r % 32]` as bits 4-5; `y = (d · sc[e / 16]) · (q − 32)`.
  static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
    for b in 0..<blocks {
      let x = p + 210 * b, o = y + 256 * b
      let d = f16(x, 208)
      for s in 0..<16 {
        let dl = d * Float(Int8(bitPattern: byte(x, 192 + s)))
        for k in 0..<16 {
          let e = 16 * s + k, h = e / 128, r = e % 128
          let low = (byte(x, 64 * h + r % 64) >> UInt8(4 * (r / 64))) & 0x0F
          let high = (byte(x, 128 + 32 * h + r % 32) >> UInt8(2 * (r / 32))) & 3
          o[e] = dl * Float(Int(low | high << 4) - 32)
        }
      }
    }
  }
}
