/// q4_K, q5_K and q6_K quantizers (ggml `quantize_row_q4_K_ref`, `_q5_K_ref`, `_q6_K_ref`), and their last steps
/// (scale packing, requantization), which the importance path (`KQuantCodec+Importance.swift`) shares.
extension KQuantCodec {
  /// q4_K (nmax 15; layout d @0, dmin @2, scales[12] @4, qs[128] @16) and q5_K (nmax 31; d @0, dmin @2,
  /// scales[12] @4, qh[32] @16, qs[128] @48). Sub-blocks of 32, weights `rms(x) + |x|`.
  static func quantizeQ45K(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>, nmax: Int
  ) {
    let L = scratch, Laux = scratch + superBlock
    var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
    var weights = [Float](repeating: 0, count: 32)
    var maxScale: Float = 0, maxMin: Float = 0
    for j in 0..<8 {
      var sumX2: Float = 0
      for l in 0..<32 { sumX2 += x[32 * j + l] * x[32 * j + l] }
      let avX = (sumX2 / 32).squareRoot()
      for l in 0..<32 { weights[l] = avX + abs(x[32 * j + l]) }
      let r = weights.withUnsafeBufferPointer {
        KQuantSearch.affineScale(x + 32 * j, count: 32, nmax: nmax, weights: $0.baseAddress!, levels: L + 32 * j,
          scratch: Laux, rmin: nmax == 15 ? -1 : -0.5, rdelta: 0.1, nstep: nmax == 15 ? 20 : 15, useMAD: false)
      }
      (scales[j], mins[j]) = r
      maxScale = max(maxScale, r.scale)
      maxMin = max(maxMin, r.theMin)
    }
    let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
    let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
    for j in 0..<8 {
      let ls = min(63, UInt8(truncatingIfNeeded: BlockBytes.nearestInt(invScale * scales[j])))
      let lm = min(63, UInt8(truncatingIfNeeded: BlockBytes.nearestInt(invMin * mins[j])))
      storeScaleMinK4(y + 4, j, ls, lm)
    }
    BlockBytes.storeF16(maxScale / 63, y, 0)
    BlockBytes.storeF16(maxMin / 63, y, 2)
    requantizeQ45K(x, y, L, nmax: nmax)
  }

  /// Writes sub-block `j`'s 6-bit scale `ls` and min `lm` into the 12 packed bytes at `sc` (the inverse of
  /// `GGMLLayout.scaleMinK4`; bits above the 6th are shifted out as ggml's uint8_t stores drop them). Bytes j-4 and
  /// j (j ≥ 4) are or-ed into, so they must hold sub-blocks j-4's values already.
  static func storeScaleMinK4(_ sc: UnsafeMutableRawPointer, _ j: Int, _ ls: UInt8, _ lm: UInt8) {
    func store(_ v: UInt8, _ i: Int) { sc.storeBytes(of: v, toByteOffset: i, as: UInt8.self) }
    func load(_ i: Int) -> UInt8 { sc.load(fromByteOffset: i, as: UInt8.self) }
    if j < 4 {
      store(ls, j)
      store(lm, j + 4)
    } else {
      store((ls & 0xF) | ((lm & 0xF) << 4), j + 4)
      store(load(j - 4) | ((ls >> 4) << 6), j - 4)
      store(load(j) | ((lm >> 4) << 6), j)
    }
  }

  /// q4_K / q5_K's last step, shared with the importance path: with scales, d and dmin stored, re-chooses every
  /// level as `clamp(nearest_int((x + dmin·m)/(d·sc)), 0, nmax)` (sub-blocks with d·sc = 0 keep `L`) and packs
  /// them (q5_K: 5th bits into qh).
  static func requantizeQ45K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>, nmax: Int) {
    let sc = y + 4
    let d = BlockBytes.f16(y, 0), dmin = BlockBytes.f16(y, 2)
    for j in 0..<8 {
      let (s, m) = GGMLLayout.scaleMinK4(UnsafeRawPointer(sc), j)
      let dj = d * Float(s)
      if dj == 0 { continue }
      let dm = dmin * Float(m)
      for i in 0..<32 { L[32 * j + i] = UInt8(max(0, min(nmax, BlockBytes.nearestInt((x[32 * j + i] + dm) / dj)))) }
    }
    let qs = y + (nmax == 15 ? 16 : 48)
    for n in stride(from: 0, to: superBlock, by: 64) {
      for j in 0..<32 {
        var l1 = L[n + j], l2 = L[n + j + 32]
        if nmax == 31 {
          // 5th bits: value i's bit goes to qh[i % 32], bit i / 32.
          var h = y.load(fromByteOffset: 16 + j, as: UInt8.self)
          if l1 > 15 { l1 -= 16; h |= UInt8(1 << (n / 32)) }
          if l2 > 15 { l2 -= 16; h |= UInt8(2 << (n / 32)) }
          y.storeBytes(of: h, toByteOffset: 16 + j, as: UInt8.self)
        }
        qs.storeBytes(of: l1 | (l2 << 4), toByteOffset: n / 2 + j, as: UInt8.self)
      }
    }
  }

  /// q6_K: layout ql[128] @0, qh[64] @128, scales[16] int8 @192, d @208. Sub-blocks of 16, `make_qx_quants`
  /// with nmax 32; scales quantized to int8 with `iscale = −128/max_scale`.
  static func quantizeQ6K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>) {
    let L = UnsafeMutableRawPointer(scratch).bindMemory(to: Int8.self, capacity: superBlock)
    var scales = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0, maxAbsScale: Float = 0
    for ib in 0..<16 {
      scales[ib] = KQuantSearch.symmetricScale(x + 16 * ib, count: 16, nmax: 32, levels: L + 16 * ib)
      if abs(scales[ib]) > maxAbsScale {
        maxAbsScale = abs(scales[ib])
        maxScale = scales[ib]
      }
    }
    if maxAbsScale < KQuantSearch.groupMaxEpsilon { return }  // block stays all zero, d = 0
    finishQ6K(x, y, L, scales, maxScale: maxScale)
  }

  /// q6_K's last step, shared with the importance path: `iscale = −128/maxScale`, d = 1/iscale, int8 scales
  /// `min(127, nearest_int(iscale·scale))`, then every level re-chosen as `clamp(nearest_int(x/(d·sc)), −32, 31) + 32`
  /// (sub-blocks with a zero step keep `L`) and packed into ql/qh.
  static func finishQ6K(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>, _ scales: [Float], maxScale: Float
  ) {
    let iscale = -128 / maxScale
    BlockBytes.storeF16(1 / iscale, y, 208)
    for ib in 0..<16 {
      let s = Int8(truncatingIfNeeded: min(127, BlockBytes.nearestInt(iscale * scales[ib])))
      y.storeBytes(of: s, toByteOffset: 192 + ib, as: Int8.self)
    }
    let d = BlockBytes.f16(y, 208)
    for j in 0..<16 {
      let dj = d * Float(y.load(fromByteOffset: 192 + j, as: Int8.self))
      if dj == 0 { continue }
      for i in 0..<16 { L[16 * j + i] = Int8(max(-32, min(31, BlockBytes.nearestInt(x[16 * j + i] / dj))) + 32) }
    }
    for j in stride(from: 0, to: superBlock, by: 128) {
      let ql = y + j / 2, qh = y + 128 + j / 4
      for l in 0..<32 {
        let q = (0..<4).map { UInt8(L[j + l + 32 * $0]) }
        ql.storeBytes(of: (q[0] & 0xF) | ((q[2] & 0xF) << 4), toByteOffset: l, as: UInt8.self)
        ql.storeBytes(of: (q[1] & 0xF) | ((q[3] & 0xF) << 4), toByteOffset: l + 32, as: UInt8.self)
        qh.storeBytes(of: (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6), toByteOffset: l, as: UInt8.self)
      }
    }
  }
}
