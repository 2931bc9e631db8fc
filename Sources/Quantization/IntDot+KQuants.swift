import GGML

/// Fused q4_K and q6_K rows · 32-blocked activations (the counterpart of ggml's q4_K × q8_K and q6_K × q8_K dots,
/// with our 32-value activation blocks). Integer sums per sub-block are exact; the scaling is reassociated relative
/// to `decodedReference`, within `KernelTests.int8DotTolerance`.
extension IntDot {
  /// q4_K: per super-block, `d·Σ_j d_a(j)·sc_j·Σ q·a − dmin·Σ_j d_a(j)·m_j·Σ a`; sub-block j (32 values) is exactly
  /// activation block j, its codes the low (even j) or high (odd j) nibbles of qs[32·(j/2) ..< 32·(j/2) + 32].
  static func q4_K(_ w: UnsafeRawPointer, superBlocks: Int, _ act: Activations) -> Float {
    var sum: Float = 0
    for s in 0..<superBlocks {
      let p = w + 144 * s
      let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
      var main: Float = 0, mins: Float = 0
      for pair in 0..<4 {
        let q = qs + 32 * pair
        let b0 = 8 * s + 2 * pair
        let a0 = act.codes16 + 32 * b0, a1 = a0 + 32
        var i0: Int32 = 0, i1: Int32 = 0
        for l in 0..<32 {
          i0 &+= Int32(q[l] & 15) &* Int32(a0[l])
          i1 &+= Int32(q[l] >> 4) &* Int32(a1[l])
        }
        let (sc0, m0) = GGMLLayout.scaleMinK4(p + 4, 2 * pair)
        let (sc1, m1) = GGMLLayout.scaleMinK4(p + 4, 2 * pair + 1)
        let s0 = act.sums16[2 * b0] &+ act.sums16[2 * b0 + 1], s1 = act.sums16[2 * b0 + 2] &+ act.sums16[2 * b0 + 3]
        main += act.scales[b0] * Float(Int32(sc0) &* i0) + act.scales[b0 + 1] * Float(Int32(sc1) &* i1)
        mins += act.scales[b0] * Float(Int32(m0) &* s0) + act.scales[b0 + 1] * Float(Int32(m1) &* s1)
      }
      sum += BlockBytes.f16(p, 0) * main - BlockBytes.f16(p, 2) * mins
    }
    return sum
  }

  /// q6_K: per super-block, `d·Σ_b d_a(b)·(sc_2b·Σ_first16 (q − 32)·a + sc_2b+1·Σ_last16 (q − 32)·a)` over its 8
  /// activation blocks b (value i = 128·h + 32·g + l lies in activation block 4h + g and sub-block 8h + 2g + l/16).
  static func q6_K(_ w: UnsafeRawPointer, superBlocks: Int, _ act: Activations) -> Float {
    var sum: Float = 0
    for s in 0..<superBlocks {
      let p = w + 210 * s
      let bytes = p.assumingMemoryBound(to: UInt8.self)
      var main: Float = 0
      for half in 0..<2 {
        let qh = bytes + 128 + 32 * half
        for group in 0..<4 {
          let b = 8 * s + 4 * half + group
          let a = act.codes16 + 32 * b
          let lq = bytes + 64 * half + 32 * (group % 2)
          let lowShift = UInt8(group < 2 ? 0 : 4), highShift = UInt8(2 * group)
          var i0: Int32 = 0, i1: Int32 = 0
          for l in 0..<16 {
            let q = Int32(((lq[l] >> lowShift) & 15) | (((qh[l] >> highShift) & 3) << 4)) &- 32
            i0 &+= q &* Int32(a[l])
          }
          for l in 16..<32 {
            let q = Int32(((lq[l] >> lowShift) & 15) | (((qh[l] >> highShift) & 3) << 4)) &- 32
            i1 &+= q &* Int32(a[l])
          }
          let sc0 = Int32(Int8(bitPattern: bytes[192 + 8 * half + 2 * group]))
          let sc1 = Int32(Int8(bitPattern: bytes[192 + 8 * half + 2 * group + 1]))
          main += act.scales[b] * Float(sc0 &* i0 &+ sc1 &* i1)
        }
      }
      sum += BlockBytes.f16(p, 208) * main
    }
    return sum
  }
}
