/// K-quant quantizers with an importance vector: ggml-quants.c's `quantize_row_q2_K_impl` … `quantize_row_q6_K_impl`
/// (what `quantize_qN_K` runs when `quant_weights != NULL`), byte for byte (GGMLImportanceGoldenTests).
///
/// `qw` has one entry per column; super-block b of the row uses `qw[256·b ..< 256·b + 256]`. Per super-block
/// (σ² is over the super-block's 256 values, not the row):
/// - q2_K: σ² = Σx²/256, w = qw·√(σ² + x²); per 16-value sub-block `make_qkx3_quants(nmax 3, rmin −0.9, rdelta
///   0.05, nstep 36)`; the 16 scales and the 16 mins each by `make_qp_quants(nmax 15)` weighted by Σw per sub-block.
/// - q3_K: σ² = 2·Σx²/256, w as q2_K; sub-block scales by weighted `make_qx_quants(nmax 4)` (not `make_q3_quants`),
///   then the 16 scales themselves by `make_qx_quants(nmax 32)` weighted by Σw: d is that call's scale.
/// - q4_K / q5_K: σ² = 2·Σx²/256, w as q2_K; 32-value sub-blocks by `make_qkx3_quants(nmax 15 | 31, −0.9, 0.05,
///   36)`; scales and mins by `make_qp_quants(nmax 63)`. q5_K clamps the 6-bit levels to 63, q4_K does not.
/// - q6_K: no σ²; w = qw itself, `make_qx_quants(nmax 32)` per 16 values; the rest is `quantize_row_q6_K_ref`'s.
/// All then re-choose every level against the stored f16 scales, exactly as the unweighted paths do.
extension KQuantCodec {
  /// Quantizes one row with importance `qw` (`qw.count == x.count`, a multiple of 256; `out.count` the row size).
  static func quantizeRowWeighted(
    _ type: GGMLType, _ x: UnsafeBufferPointer<Float>, importance qw: UnsafeBufferPointer<Float>,
    _ out: UnsafeMutableRawBufferPointer
  ) {
    precondition(x.count % superBlock == 0 && qw.count == x.count && out.count == x.count / superBlock * type.bytesPerBlock,
      "\(type.ggmlName): \(x.count) values, \(qw.count) importances into \(out.count) bytes")
    guard let xs = x.baseAddress, let ws = qw.baseAddress, let o = out.baseAddress else { return }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * superBlock) { scratch in
      let s = scratch.baseAddress!
      for b in 0..<(x.count / superBlock) {
        let v = xs + superBlock * b, w = ws + superBlock * b
        let y = o + b * type.bytesPerBlock
        y.initializeMemory(as: UInt8.self, repeating: 0, count: type.bytesPerBlock)
        switch type {
        case .q2_K: quantizeQ2KWeighted(v, w, y, s)
        case .q3_K: quantizeQ3KWeighted(v, w, y, s)
        case .q4_K: quantizeQ45KWeighted(v, w, y, s, nmax: 15)
        case .q5_K: quantizeQ45KWeighted(v, w, y, s, nmax: 31)
        case .q6_K: quantizeQ6KWeighted(v, w, y, s)
        default: preconditionFailure("\(type.ggmlName) is not a K-quant")
        }
      }
    }
  }

  /// `σ²·factor/256` with σ² the sum of squares of the super-block, accumulated left to right in Float.
  private static func sigma2(_ x: UnsafePointer<Float>, factor: Float) -> Float {
    var sumX2: Float = 0
    for j in 0..<superBlock { sumX2 += x[j] * x[j] }
    return factor * sumX2 / Float(superBlock)
  }

  /// Fills `weight[0..<n]` with `qw·√(σ² + x²)` and returns their sum (left to right).
  private static func importanceWeights(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, sigma2: Float, count n: Int, into weight: UnsafeMutablePointer<Float>
  ) -> Float {
    for l in 0..<n { weight[l] = qw[l] * (sigma2 + x[l] * x[l]).squareRoot() }
    var sum: Float = 0
    for l in 0..<n { sum += weight[l] }
    return sum
  }

  /// q2_K (`quantize_row_q2_K_impl`): layout scales[16] @0, qs[64] @16, d @80, dmin @82.
  private static func quantizeQ2KWeighted(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>
  ) {
    let L = scratch, Laux = scratch + superBlock, Ls = scratch + superBlock + 16, Lm = scratch + superBlock + 32
    let sigma2 = sigma2(x, factor: 1)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { f in
      let weight = f.baseAddress!, scales = weight + 16, mins = weight + 32, sw = weight + 48
      for j in 0..<16 {
        sw[j] = importanceWeights(x + 16 * j, qw + 16 * j, sigma2: sigma2, count: 16, into: weight)
        (scales[j], mins[j]) = KQuantSearch.affineScaleQKX3(x + 16 * j, count: 16, nmax: 3, weights: weight,
          levels: L + 16 * j, scratch: Laux, rmin: -0.9, rdelta: 0.05, nstep: 36, useMAD: false)
      }
      BlockBytes.storeF16(KQuantSearch.positiveScale(scales, count: 16, nmax: 15, weights: sw, levels: Ls), y, 80)
      BlockBytes.storeF16(KQuantSearch.positiveScale(mins, count: 16, nmax: 15, weights: sw, levels: Lm), y, 82)
    }
    for j in 0..<16 { y.storeBytes(of: Ls[j] | (Lm[j] << 4), toByteOffset: j, as: UInt8.self) }
    requantizeQ2K(x, y, L)
  }

  /// q3_K (`quantize_row_q3_K_impl`): layout hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
  private static func quantizeQ3KWeighted(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>
  ) {
    let L = UnsafeMutableRawPointer(scratch).bindMemory(to: Int8.self, capacity: superBlock + 16)
    let Ls = L + superBlock
    let sigma2 = sigma2(x, factor: 2)
    let dBlock = withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { f in
      let weight = f.baseAddress!, scales = weight + 16, sw = weight + 32
      for j in 0..<16 {
        sw[j] = importanceWeights(x + 16 * j, qw + 16 * j, sigma2: sigma2, count: 16, into: weight)
        scales[j] = KQuantSearch.symmetricScale(x + 16 * j, count: 16, nmax: 4, weights: weight, levels: L + 16 * j)
      }
      return KQuantSearch.symmetricScale(scales, count: 16, nmax: 32, weights: sw, levels: Ls)
    }
    // Level l = Ls[j] in 0..<64: low nibble to byte j (j < 8) or the high nibble of byte j − 8, top 2 bits to
    // byte 8 + j % 4 at bit 2·(j / 4).
    let sc = y + 96
    for j in 0..<16 {
      let l = UInt8(Ls[j])
      let (i, low) = j < 8 ? (j, l & 0xF) : (j - 8, (l & 0xF) << 4)
      sc.storeBytes(of: sc.load(fromByteOffset: i, as: UInt8.self) | low, toByteOffset: i, as: UInt8.self)
      let k = 8 + j % 4
      let high = (l >> 4) << UInt8(2 * (j / 4))
      sc.storeBytes(of: sc.load(fromByteOffset: k, as: UInt8.self) | high, toByteOffset: k, as: UInt8.self)
    }
    BlockBytes.storeF16(dBlock, y, 108)
    requantizeQ3K(x, y, L, scratch)
  }

  /// q4_K (`quantize_row_q4_K_impl`, nmax 15) and q5_K (`quantize_row_q5_K_impl`, nmax 31): d @0, dmin @2,
  /// scales[12] @4, then (q5_K) qh[32] @16 and qs.
  private static func quantizeQ45KWeighted(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
    _ scratch: UnsafeMutablePointer<UInt8>, nmax: Int
  ) {
    let L = scratch, Laux = scratch + superBlock, Ls = scratch + superBlock + 32, Lm = scratch + superBlock + 40
    let sigma2 = sigma2(x, factor: 2)
    let (dBlock, mBlock) = withUnsafeTemporaryAllocation(of: Float.self, capacity: 56) { f in
      let weight = f.baseAddress!, scales = weight + 32, mins = weight + 40, sw = weight + 48
      for j in 0..<8 {
        sw[j] = importanceWeights(x + 32 * j, qw + 32 * j, sigma2: sigma2, count: 32, into: weight)
        (scales[j], mins[j]) = KQuantSearch.affineScaleQKX3(x + 32 * j, count: 32, nmax: nmax, weights: weight,
          levels: L + 32 * j, scratch: Laux, rmin: -0.9, rdelta: 0.05, nstep: 36, useMAD: false)
      }
      return (KQuantSearch.positiveScale(scales, count: 8, nmax: 63, weights: sw, levels: Ls),
              KQuantSearch.positiveScale(mins, count: 8, nmax: 63, weights: sw, levels: Lm))
    }
    for j in 0..<8 {
      // q5_K clamps to 63; q4_K stores the level as is (only a wrapped negative level could exceed 63).
      let (ls, lm) = nmax == 31 ? (min(63, Ls[j]), min(63, Lm[j])) : (Ls[j], Lm[j])
      storeScaleMinK4(y + 4, j, ls, lm)
    }
    BlockBytes.storeF16(dBlock, y, 0)
    BlockBytes.storeF16(mBlock, y, 2)
    requantizeQ45K(x, y, L, nmax: nmax)
  }

  /// q6_K (`quantize_row_q6_K_impl`): as `quantizeQ6K` with `make_qx_quants` weighted by `qw` directly (ggml's
  /// σ²-based weights for q6_K are commented out).
  private static func quantizeQ6KWeighted(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>
  ) {
    let L = UnsafeMutableRawPointer(scratch).bindMemory(to: Int8.self, capacity: superBlock)
    var scales = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0, maxAbsScale: Float = 0
    for ib in 0..<16 {
      scales[ib] = KQuantSearch.symmetricScale(x + 16 * ib, count: 16, nmax: 32, weights: qw + 16 * ib, levels: L + 16 * ib)
      if abs(scales[ib]) > maxAbsScale {
        maxAbsScale = abs(scales[ib])
        maxScale = scales[ib]
      }
    }
    if maxAbsScale < KQuantSearch.groupMaxEpsilon { return }  // block stays all zero, d = 0
    finishQ6K(x, y, L, scales, maxScale: maxScale)
  }
}
