/// K-quant dequantizers: a per-value reference that decodes value i from the layout tables alone, and a
/// block-loop variant in the order of ggml's `dequantize_row_qN_K`. Both compute the same products in the same
/// order, so they agree bit for bit.
extension KQuantCodec {
  /// Reference: each value on its own.
  ///
  /// Value i of a super-block (r = i % 128, sub = i / 16 or i / 32):
  /// - q2_K: q = (qs[32·(i/128) + i%32] >> 2·(r/32)) & 3, `x̂ = (d·sc)·q − dmin·m`.
  /// - q3_K: low 2 bits as q2_K from qs @32; high bit hmask[i%32] bit i/32 (set means +0, clear −4).
  /// - q4_K: q = nibble (low if i%64 < 32) of qs[32·(i/64) + i%32].  q5_K: plus qh[i%32] bit i/32 as 16.
  /// - q6_K: low nibble of ql[64·(i/128) + i%32 + 32·(r/32 % 2)] (high nibble when r ≥ 64), 2 high bits from
  ///   qh[32·(i/128) + i%32] at 2·(r/32); `x̂ = (d·sc)·(q − 32)`.
  static func dequantizeRowReference(_ type: GGMLType, _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>) {
    precondition(y.count % superBlock == 0 && src.count == y.count / superBlock * type.bytesPerBlock,
      "\(type.ggmlName): \(src.count) bytes for \(y.count) values")
    guard let s = src.baseAddress else { return }
    for index in 0..<y.count {
      let p = s + (index / superBlock) * type.bytesPerBlock
      let i = index % superBlock, r = i % 128
      @inline(__always) func u8(_ o: Int) -> Int { Int(p.load(fromByteOffset: o, as: UInt8.self)) }
      switch type {
      case .q2_K:
        let q = (u8(16 + 32 * (i / 128) + i % 32) >> (2 * (r / 32))) & 3
        let sc = u8(i / 16)
        y[index] = BlockBytes.f16(p, 80) * Float(sc & 15) * Float(q) - BlockBytes.f16(p, 82) * Float(sc >> 4)
      case .q3_K:
        let low = (u8(32 + 32 * (i / 128) + i % 32) >> (2 * (r / 32))) & 3
        let high = (u8(i % 32) >> (i / 32)) & 1
        let sc = q3Scale(p + 96, i / 16)
        y[index] = BlockBytes.f16(p, 108) * Float(sc) * Float(low - (high == 1 ? 0 : 4))
      case .q4_K, .q5_K:
        let qsOffset = type == .q4_K ? 16 : 48
        let byte = u8(qsOffset + 32 * (i / 64) + i % 32)
        var q = i % 64 < 32 ? byte & 15 : byte >> 4
        if type == .q5_K { q |= ((u8(16 + i % 32) >> (i / 32)) & 1) << 4 }
        let (sc, m) = scaleMinK4(p + 4, i / 32)
        y[index] = BlockBytes.f16(p, 0) * Float(sc) * Float(q) - BlockBytes.f16(p, 2) * Float(m)
      case .q6_K:
        let group = r / 32
        let byte = u8(64 * (i / 128) + i % 32 + 32 * (group % 2))
        let low = group < 2 ? byte & 15 : byte >> 4
        let high = (u8(128 + 32 * (i / 128) + i % 32) >> (2 * group)) & 3
        let sc = Int8(truncatingIfNeeded: u8(192 + i / 16))
        y[index] = BlockBytes.f16(p, 208) * Float(sc) * Float((low | (high << 4)) - 32)
      default: preconditionFailure("\(type.ggmlName) is not a K-quant")
      }
    }
  }

  /// Block loops in ggml's order (`dequantize_row_qN_K`), decoding scales once per sub-block.
  static func dequantizeRowFast(_ type: GGMLType, _ src: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) {
    precondition(out.count % superBlock == 0 && src.count == out.count / superBlock * type.bytesPerBlock,
      "\(type.ggmlName): \(src.count) bytes for \(out.count) values")
    guard let s = src.baseAddress, let o = out.baseAddress else { return }
    for b in 0..<(out.count / superBlock) {
      let p = s + b * type.bytesPerBlock
      let y = o + b * superBlock
      let qs = p.assumingMemoryBound(to: UInt8.self)
      switch type {
      case .q2_K:
        let d = BlockBytes.f16(p, 80), dmin = BlockBytes.f16(p, 82)
        for sub in 0..<16 {
          let sc = qs[sub]
          let dl = d * Float(sc & 15), ml = dmin * Float(sc >> 4)
          let q = qs + 16 + 32 * (sub / 8) + 16 * (sub % 2)
          let shift = UInt8(2 * ((sub % 8) / 2))
          for l in 0..<16 { y[16 * sub + l] = dl * Float((q[l] >> shift) & 3) - ml }
        }
      case .q3_K:
        let d = BlockBytes.f16(p, 108)
        for sub in 0..<16 {
          let dl = d * Float(q3Scale(p + 96, sub))
          let q = qs + 32 + 32 * (sub / 8) + 16 * (sub % 2)
          let hm = qs + 16 * (sub % 2)
          let shift = UInt8(2 * ((sub % 8) / 2)), bit = UInt8(sub / 2)
          for l in 0..<16 {
            let v = Int((q[l] >> shift) & 3) - ((hm[l] >> bit) & 1 == 1 ? 0 : 4)
            y[16 * sub + l] = dl * Float(v)
          }
        }
      case .q4_K, .q5_K:
        let d = BlockBytes.f16(p, 0), dmin = BlockBytes.f16(p, 2)
        let q = qs + (type == .q4_K ? 16 : 48), qh = qs + 16
        for sub in 0..<8 {
          let (sc, m) = scaleMinK4(p + 4, sub)
          let dl = d * Float(sc), ml = dmin * Float(m)
          let bytes = q + 32 * (sub / 2), shift = UInt8(4 * (sub % 2))
          if type == .q4_K {
            for l in 0..<32 { y[32 * sub + l] = dl * Float((bytes[l] >> shift) & 15) - ml }
          } else {
            let bit = UInt8(sub)
            for l in 0..<32 {
              y[32 * sub + l] = dl * Float(((bytes[l] >> shift) & 15) | (((qh[l] >> bit) & 1) << 4)) - ml
            }
          }
        }
      case .q6_K:
        let d = BlockBytes.f16(p, 208)
        for half in 0..<2 {
          let ql = qs + 64 * half, qh = qs + 128 + 32 * half
          for group in 0..<4 {
            let lowShift = UInt8(group < 2 ? 0 : 4), highShift = UInt8(2 * group)
            let lq = ql + 32 * (group % 2)
            for part in 0..<2 {
              let sc = Float(Int8(bitPattern: qs[192 + 8 * half + 2 * group + part]))
              for l in (16 * part)..<(16 * part + 16) {
                let q = Int(((lq[l] >> lowShift) & 15) | (((qh[l] >> highShift) & 3) << 4)) - 32
                y[128 * half + 32 * group + l] = d * sc * Float(q)
              }
            }
          }
        }
      default: preconditionFailure("\(type.ggmlName) is not a K-quant")
      }
    }
  }
}
