/// The block loops behind `GGMLDecode.fast`, in the order of ggml's `dequantize_row_*`: scales are read once per
/// block or sub-block, and each byte of codes gives its values in one pass. They compute the same products as
/// `GGMLDecode.reference` in the same order, so the two agree bit for bit; the layout is `GGMLLayout`'s, written
/// here as strides instead of per-value index arithmetic.
extension GGMLDecode {
  /// q4_0 … q8_0: 16 bytes of `qs` give values j (low nibble) and j + 16 (high nibble).
  static func legacyBlocks(_ type: GGMLType, _ s: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, blocks: Int) {
    let size = type.bytesPerBlock
    let (mAt, qhAt, qsAt) = GGMLLayout.legacyOffsets(type)
    for b in 0..<blocks {
      let p = s + b * size
      let y = o + 32 * b
      let d = BlockBytes.f16(p, 0)
      switch type {
      case .q4_0:
        let qs = (p + qsAt).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
          y[j] = Float(Int32(qs[j] & 15) - 8) * d
          y[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
        }
      case .q4_1:
        let m = BlockBytes.f16(p, mAt)
        let qs = (p + qsAt).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
          y[j] = Float(qs[j] & 15) * d + m
          y[j + 16] = Float(qs[j] >> 4) * d + m
        }
      case .q5_0:
        let qh = BlockBytes.u32(p, qhAt)
        let qs = (p + qsAt).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
          let h0 = Int32((qh >> UInt32(j)) & 1) << 4, h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
          y[j] = Float((Int32(qs[j] & 15) | h0) - 16) * d
          y[j + 16] = Float((Int32(qs[j] >> 4) | h1) - 16) * d
        }
      case .q5_1:
        let m = BlockBytes.f16(p, mAt)
        let qh = BlockBytes.u32(p, qhAt)
        let qs = (p + qsAt).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
          let h0 = UInt32((qh >> UInt32(j)) & 1) << 4, h1 = UInt32((qh >> UInt32(j + 16)) & 1) << 4
          y[j] = Float(UInt32(qs[j] & 15) | h0) * d + m
          y[j + 16] = Float(UInt32(qs[j] >> 4) | h1) * d + m
        }
      case .q8_0:
        let qs = (p + qsAt).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { y[j] = Float(qs[j]) * d }
      default: preconditionFailure("\(type.name) is not a legacy type")
      }
    }
  }

  /// q2_K: sub-block `sub` of 16 reads 16 consecutive `qs` bytes at one shift.
  static func q2KBlocks(_ s: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, blocks: Int) {
    typealias L = GGMLLayout.Q2K
    for b in 0..<blocks {
      let p = s + b * 84, y = o + 256 * b
      let bytes = p.assumingMemoryBound(to: UInt8.self)
      let d = BlockBytes.f16(p, L.d), dmin = BlockBytes.f16(p, L.dmin)
      for sub in 0..<16 {
        let sc = bytes[L.scales + sub]
        let dl = d * Float(sc & 15), ml = dmin * Float(sc >> 4)
        let q = bytes + L.qs + 32 * (sub / 8) + 16 * (sub % 2)
        let shift = UInt8(2 * ((sub % 8) / 2))
        for l in 0..<16 { y[16 * sub + l] = dl * Float((q[l] >> shift) & 3) - ml }
      }
    }
  }

  /// q3_K: as q2_K for the low 2 bits, plus one `hmask` bit per value (clear subtracts 4).
  static func q3KBlocks(_ s: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, blocks: Int) {
    typealias L = GGMLLayout.Q3K
    for b in 0..<blocks {
      let p = s + b * 110, y = o + 256 * b
      let bytes = p.assumingMemoryBound(to: UInt8.self)
      let d = BlockBytes.f16(p, L.d)
      for sub in 0..<16 {
        let dl = d * Float(GGMLLayout.q3Scale(p + L.scales, sub))
        let q = bytes + L.qs + 32 * (sub / 8) + 16 * (sub % 2)
        let hm = bytes + L.hmask + 16 * (sub % 2)
        let shift = UInt8(2 * ((sub % 8) / 2)), bit = UInt8(sub / 2)
        for l in 0..<16 {
          let v = Int((q[l] >> shift) & 3) - ((hm[l] >> bit) & 1 == 1 ? 0 : 4)
          y[16 * sub + l] = dl * Float(v)
        }
      }
    }
  }

  /// q4_K and q5_K: sub-block `sub` of 32 takes one nibble of 32 consecutive `qs` bytes (and bit `sub` of `qh`).
  static func q45KBlocks(_ type: GGMLType, _ s: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, blocks: Int) {
    typealias L = GGMLLayout.Q5K  // d, dmin and scales sit where q4_K has them
    let size = type.bytesPerBlock, five = type == .q5_K
    for b in 0..<blocks {
      let p = s + b * size, y = o + 256 * b
      let bytes = p.assumingMemoryBound(to: UInt8.self)
      let d = BlockBytes.f16(p, L.d), dmin = BlockBytes.f16(p, L.dmin)
      let q = bytes + (five ? L.qs : GGMLLayout.Q4K.qs), qh = bytes + L.qh
      for sub in 0..<8 {
        let (sc, m) = GGMLLayout.scaleMinK4(p + L.scales, sub)
        let dl = d * Float(sc), ml = dmin * Float(m)
        let codes = q + 32 * (sub / 2), shift = UInt8(4 * (sub % 2))
        if five {
          let bit = UInt8(sub)
          for l in 0..<32 {
            y[32 * sub + l] = dl * Float(((codes[l] >> shift) & 15) | (((qh[l] >> bit) & 1) << 4)) - ml
          }
        } else {
          for l in 0..<32 { y[32 * sub + l] = dl * Float((codes[l] >> shift) & 15) - ml }
        }
      }
    }
  }

  /// q6_K: each 128-value half reads 64 `ql` bytes (two nibbles) and 32 `qh` bytes (four 2-bit fields).
  static func q6KBlocks(_ s: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, blocks: Int) {
    typealias L = GGMLLayout.Q6K
    for b in 0..<blocks {
      let p = s + b * 210, y = o + 256 * b
      let bytes = p.assumingMemoryBound(to: UInt8.self)
      let d = BlockBytes.f16(p, L.d)
      for half in 0..<2 {
        let ql = bytes + L.ql + 64 * half, qh = bytes + L.qh + 32 * half
        for group in 0..<4 {
          let lowShift = UInt8(group < 2 ? 0 : 4), highShift = UInt8(2 * group)
          let lq = ql + 32 * (group % 2)
          for part in 0..<2 {
            let sc = Float(Int8(bitPattern: bytes[L.scales + 8 * half + 2 * group + part]))
            for l in (16 * part)..<(16 * part + 16) {
              let q = Int(((lq[l] >> lowShift) & 15) | (((qh[l] >> highShift) & 3) << 4)) - 32
              y[128 * half + 32 * group + l] = d * sc * Float(q)
            }
          }
        }
      }
    }
  }
}
