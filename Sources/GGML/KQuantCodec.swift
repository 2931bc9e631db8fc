/// GGML's K-quants (q2_K … q6_K): super-blocks of `QK_K` = 256 values with quantized sub-block scales, laid out
/// byte for byte as ggml-common.h's `block_qN_K`, quantized by the algorithm of ggml's `quantize_row_qN_K_ref`
/// (no importance matrix). GGMLGoldenTests checks every byte against ggml itself (scripts/ggml_quant_golden.sh).
/// The importance-matrix paths (`quantize_row_qN_K_impl`) are in `KQuantCodec+Importance.swift`.
/// Decoding is `GGMLDecode`'s; the byte offsets and bit positions are `GGMLLayout`'s.
///
/// Formulas (d, dmin: f16 super-block scales; sc, m: per-sub-block integer scale and min):
/// - q2_K: 16 sub-blocks of 16, `x̂ = d·sc·q − dmin·m`, q in 0…3, sc and m 4-bit (one byte: sc | m << 4).
/// - q3_K: 16 sub-blocks of 16, `x̂ = d·(sc − 32)·(q − 4)`, q in 0…7 (2 low bits in qs, high bit in hmask), sc 6-bit.
/// - q4_K: 8 sub-blocks of 32, `x̂ = d·sc·q − dmin·m`, q in 0…15, sc and m 6-bit packed in 12 bytes.
/// - q5_K: as q4_K with q in 0…31 (5th bit in qh).
/// - q6_K: 16 sub-blocks of 16, `x̂ = d·sc·(q − 32)`, q in 0…63 (4 low bits in ql, 2 high bits in qh), sc int8.
///
/// Error bound: codes are re-chosen by nearest level against the *stored* scales, so every value within a
/// sub-block's grid range [lo, hi] is within half a step (d·sc/2) of its reconstruction, and a value outside is
/// clamped to the nearest end: `|x − x̂| ≤ d·|sc|/2 + dist(x, [lo, hi])` (tested in KQuantTests).
enum KQuantCodec {
  static let superBlock = 256

  /// Quantizes one row; `x.count` must be a multiple of 256 and `out.count` the row size.
  static func quantizeRow(_ type: GGMLType, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer) {
    precondition(x.count % superBlock == 0 && out.count == x.count / superBlock * type.bytesPerBlock,
      "\(type.ggmlName): \(x.count) values into \(out.count) bytes")
    guard let xs = x.baseAddress, let o = out.baseAddress else { return }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * superBlock) { scratch in
      let s = scratch.baseAddress!
      for b in 0..<(x.count / superBlock) {
        let v = xs + superBlock * b
        let y = o + b * type.bytesPerBlock
        y.initializeMemory(as: UInt8.self, repeating: 0, count: type.bytesPerBlock)
        switch type {
        case .q2_K: quantizeQ2K(v, y, s)
        case .q3_K: quantizeQ3K(v, y, s)
        case .q4_K: quantizeQ45K(v, y, s, nmax: 15)
        case .q5_K: quantizeQ45K(v, y, s, nmax: 31)
        case .q6_K: quantizeQ6K(v, y, s)
        default: preconditionFailure("\(type.ggmlName) is not a K-quant")
        }
      }
    }
  }

  /// Packs 2-bit levels L[0..<256] into 64 bytes: byte 32·(i/128) + i%32, bits 2·((i%128)/32).
  static func pack2Bit(_ L: UnsafePointer<UInt8>, _ qs: UnsafeMutableRawPointer) {
    for j in stride(from: 0, to: superBlock, by: 128) {
      for l in 0..<32 {
        let byte = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
        qs.storeBytes(of: byte, toByteOffset: j / 4 + l, as: UInt8.self)
      }
    }
  }

  /// q2_K: layout scales[16] @0, qs[64] @16, d @80, dmin @82.
  private static func quantizeQ2K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>) {
    let L = scratch, Laux = scratch + superBlock
    var scales = [Float](repeating: 0, count: 16), mins = [Float](repeating: 0, count: 16)
    var weights = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0, maxMin: Float = 0
    for j in 0..<16 {
      for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
      let r = weights.withUnsafeBufferPointer {
        KQuantSearch.affineScale(x + 16 * j, count: 16, nmax: 3, weights: $0.baseAddress!, levels: L + 16 * j,
          scratch: Laux, rmin: -0.5, rdelta: 0.1, nstep: 15, useMAD: true)
      }
      (scales[j], mins[j]) = r
      maxScale = max(maxScale, r.scale)
      maxMin = max(maxMin, r.theMin)
    }
    var sc = [UInt8](repeating: 0, count: 16)
    if maxScale > 0 {
      let iscale = 15 / maxScale
      for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: BlockBytes.nearestInt(iscale * scales[j])) }
      BlockBytes.storeF16(maxScale / 15, y, 80)
    }
    if maxMin > 0 {
      let iscale = 15 / maxMin
      for j in 0..<16 { sc[j] |= UInt8(truncatingIfNeeded: BlockBytes.nearestInt(iscale * mins[j]) << 4) }
      BlockBytes.storeF16(maxMin / 15, y, 82)
    }
    for j in 0..<16 { y.storeBytes(of: sc[j], toByteOffset: j, as: UInt8.self) }
    requantizeQ2K(x, y, L)
  }

  /// q2_K's last step, shared with the importance path: with `scales`, d and dmin already stored, re-chooses every
  /// level as `clamp(nearest_int((x + dmin·m)/(d·sc)), 0, 3)` (sub-blocks with d·sc = 0 keep the search's levels)
  /// and packs them into qs.
  static func requantizeQ2K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
    let d = BlockBytes.f16(y, 80), dmin = BlockBytes.f16(y, 82)
    for j in 0..<16 {
      let sc = y.load(fromByteOffset: j, as: UInt8.self)
      let dj = d * Float(sc & 15)
      if dj == 0 { continue }
      let mj = dmin * Float(sc >> 4)
      for i in 0..<16 { L[16 * j + i] = UInt8(max(0, min(3, BlockBytes.nearestInt((x[16 * j + i] + mj) / dj)))) }
    }
    pack2Bit(L, y + 16)
  }

  /// q3_K: layout hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
  private static func quantizeQ3K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<UInt8>) {
    let L = UnsafeMutableRawPointer(scratch).bindMemory(to: Int8.self, capacity: superBlock)
    var scales = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0, amax: Float = 0
    for j in 0..<16 {
      scales[j] = KQuantSearch.symmetricScaleQ3(x + 16 * j, count: 16, nmax: 4, levels: L + 16 * j)
      if abs(scales[j]) > amax {
        amax = abs(scales[j])
        maxScale = scales[j]
      }
    }
    let sc = y + 96
    if maxScale != 0 {
      let iscale = -32 / maxScale
      for j in 0..<16 {
        let l = UInt8(max(-32, min(31, BlockBytes.nearestInt(iscale * scales[j]))) + 32)
        let low = l & 15, high = l >> 4
        if j < 8 {
          sc.storeBytes(of: low, toByteOffset: j, as: UInt8.self)
        } else {
          sc.storeBytes(of: sc.load(fromByteOffset: j - 8, as: UInt8.self) | (low << 4), toByteOffset: j - 8, as: UInt8.self)
        }
        let k = 8 + j % 4
        sc.storeBytes(of: sc.load(fromByteOffset: k, as: UInt8.self) | (high << UInt8(2 * (j / 4))), toByteOffset: k, as: UInt8.self)
      }
      BlockBytes.storeF16(1 / iscale, y, 108)
    }
    requantizeQ3K(x, y, L, scratch)
  }

  /// q3_K's last step, shared with the importance path: with scales and d stored, re-chooses every level as
  /// `clamp(nearest_int(x/(d·(sc − 32))), −4, 3) + 4` (sub-blocks with a zero step keep `L`), then writes the high
  /// bits to hmask and the low two to qs. `L` may alias `scratch`.
  static func requantizeQ3K(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>, _ scratch: UnsafeMutablePointer<UInt8>
  ) {
    let sc = y + 96
    let d = BlockBytes.f16(y, 108)
    for j in 0..<16 {
      let dj = d * Float(GGMLLayout.q3Scale(UnsafeRawPointer(sc), j))
      if dj == 0 { continue }
      for i in 0..<16 { L[16 * j + i] = Int8(max(-4, min(3, BlockBytes.nearestInt(x[16 * j + i] / dj))) + 4) }
    }
    // High bit of value i goes to hmask[i % 32], bit i / 32.
    let U = scratch
    for i in 0..<superBlock {
      var l = UInt8(L[i])
      if l > 3 {
        let m = i % 32
        y.storeBytes(of: y.load(fromByteOffset: m, as: UInt8.self) | UInt8(1 << (i / 32)), toByteOffset: m, as: UInt8.self)
        l -= 4
      }
      U[i] = l
    }
    pack2Bit(U, y + 32)
  }
}
