import GGML

/// The int4 inner loop in 16-bit lanes: 64 packed weight bytes (128 codes) per step, no byte-to-word extension.
///
/// The plain loop (`nibbleChunks4`) ran at 0.027 ns/value: LLVM widens each nibble with `vpmovzxbw` and multiplies
/// in half-width `vpmaddwd`, 16 values per instruction. Here the 64 bytes are read as 32 UInt16 words, and the four
/// nibbles of each word are split with 64-bit shifts and masks in place (lane L of plane m is nibble m of word L),
/// so every instruction works on 32 values: 1 load, 3 shifts, 4 masks, 4 `vpmullw`, 4 `vpaddw` per 128 codes.
/// The activations are rearranged once per vector into the matching planes (`Q8Activations.nibblePlanes`).
///
/// Bit-exact: every product and partial sum is an integer that fits its lane (bounds at `nibbleLanes`).
/// Written with `SIMD8<UInt64>` masks and shifts and `SIMD32<Int16>` `&*`/`&+` because, in Swift 6.3, `&` and `&>>`
/// on `SIMD32<Int16>` or `SIMD64<UInt8>` compile to a per-lane loop (0.4 GB/s), while 8- and 16-lane integer
/// vectors and the concrete `&*`/`&+` become single instructions (checked in the assembly). Conversions are uneven:
/// `SIMD16<Int32>(truncatingIfNeeded:)` from Int16 and `SIMD32<Int16>` from UInt8 are single instructions, but
/// `SIMD16<Int16>` from Int8 and `SIMD16<Float>` from Int32 are calls to per-lane loops (hence `exactFloat`).
///
/// Measured with `bitplan bench kernels` (L2, single thread, same session): int4 0.033 → 0.021–0.027 ns/value,
/// int4-g128 0.052 → 0.035, q4_0 0.058 → 0.039, q8_0 (`q8_0Pairs`, the same idea for bytes) 0.078 → 0.053.
extension IntDot {
  /// Int16 values of `nibblePlanes` per 128 activations: four planes of 32 and their lane sums.
  static let planeStride = 160

  /// Activation codes rearranged for `nibbleLanes`: `blocks` × `planeStride` Int16 from `codes16[0 ..< 128·blocks]`.
  ///
  /// Block k covers values 128k ..< 128k + 128 (four 16-byte chunks of the q4_0 order, where byte b of chunk
  /// c = b / 16 holds value 32c + b % 16 in its low nibble and 32c + 16 + b % 16 in its high nibble).
  /// `planes[160k + 32m + L]` is the activation that meets nibble m of little-endian word L of the block's 64 bytes:
  /// m = 0 low nibble of byte 2L, m = 1 high nibble of byte 2L, m = 2 low nibble of byte 2L + 1, m = 3 high
  /// nibble of byte 2L + 1. With L = 8g + i, byte 2L + m/2 is byte 2i + m/2 of chunk g. `planes[160k + 128 + L]`
  /// is the sum of the four (the zero-point term of lane L, |·| ≤ 4·127).
  ///
  /// Even and odd Int16 elements are taken as the low and high halves of (little-endian) Int32 lanes (`SIMD8<Int32>` truncation
  /// and shift are single instructions; a scalar gather loop here cost 1 ns per value).
  static func nibblePlanes(codes16: UnsafePointer<Int16>, blocks: Int, into planes: UnsafeMutablePointer<Int16>) {
    let source = UnsafeRawPointer(codes16), target = UnsafeMutableRawPointer(planes)
    for k in 0..<blocks {
      let a = source + 256 * k, p = target + 2 * planeStride * k
      for g in 0..<4 {
        // Chunk g: values 32g … 32g + 15 meet the low nibbles of its bytes 0…15, 32g + 16 … 32g + 31 the high ones.
        let low = a.loadUnaligned(fromByteOffset: 64 * g, as: SIMD8<Int32>.self)
        let high = a.loadUnaligned(fromByteOffset: 64 * g + 32, as: SIMD8<Int32>.self)
        let m0 = SIMD8<Int16>(truncatingIfNeeded: low), m1 = SIMD8<Int16>(truncatingIfNeeded: high)  // even bytes
        let m2 = SIMD8<Int16>(truncatingIfNeeded: low &>> 16), m3 = SIMD8<Int16>(truncatingIfNeeded: high &>> 16)  // odd bytes
        p.storeBytes(of: m0, toByteOffset: 16 * g, as: SIMD8<Int16>.self)
        p.storeBytes(of: m1, toByteOffset: 64 + 16 * g, as: SIMD8<Int16>.self)
        p.storeBytes(of: m2, toByteOffset: 128 + 16 * g, as: SIMD8<Int16>.self)
        p.storeBytes(of: m3, toByteOffset: 192 + 16 * g, as: SIMD8<Int16>.self)
        // The lane sums from registers: reading the planes back would wait on store forwarding.
        p.storeBytes(of: (m0 &+ m1) &+ (m2 &+ m3), toByteOffset: 256 + 16 * g, as: SIMD8<Int16>.self)
      }
    }
  }

  /// Σ (u − zero)·a over one 64-byte block of nibbles u, as 32 Int16 lanes (each lane sums 4 products).
  @inline(__always) static func nibbleBlock(_ q: UnsafeRawPointer, _ planes: UnsafeRawPointer, zero: SIMD32<Int16>) -> SIMD32<Int16> {
    nibbleBlock(q.loadUnaligned(as: SIMD8<UInt64>.self), planes, zero: zero)
  }

  /// `nibbleBlock` of 64 bytes already in a register.
  @inline(__always) static func nibbleBlock(_ w: SIMD8<UInt64>, _ planes: UnsafeRawPointer, zero: SIMD32<Int16>) -> SIMD32<Int16> {
    let mask = SIMD8<UInt64>(repeating: 0x000F_000F_000F_000F)
    let n0 = unsafeBitCast(w & mask, to: SIMD32<Int16>.self)
    let n1 = unsafeBitCast((w &>> 4) & mask, to: SIMD32<Int16>.self)
    let n2 = unsafeBitCast((w &>> 8) & mask, to: SIMD32<Int16>.self)
    let n3 = unsafeBitCast((w &>> 12) & mask, to: SIMD32<Int16>.self)
    let a0 = planes.loadUnaligned(fromByteOffset: 0, as: SIMD32<Int16>.self)
    let a1 = planes.loadUnaligned(fromByteOffset: 64, as: SIMD32<Int16>.self)
    let a2 = planes.loadUnaligned(fromByteOffset: 128, as: SIMD32<Int16>.self)
    let a3 = planes.loadUnaligned(fromByteOffset: 192, as: SIMD32<Int16>.self)
    let products = (n0 &* a0 &+ n1 &* a1) &+ (n2 &* a2 &+ n3 &* a3)
    return products &- zero &* planes.loadUnaligned(fromByteOffset: 256, as: SIMD32<Int16>.self)
  }

  /// Adds the 32 Int16 lanes of `v` pairwise into 16 Int32 lanes (sign-extending both halves of each word pair).
  @inline(__always) static func widenPairs(_ v: SIMD32<Int16>) -> SIMD16<Int32> {
    let x = unsafeBitCast(v, to: SIMD16<Int32>.self)
    return ((x &<< 16) &>> 16) &+ (x &>> 16)
  }

  /// `widenPairs` for pair sums within ±2¹⁵ (one block: ≤ 2·7620), in three instructions instead of four.
  ///
  /// Read a pair as x = hi·2¹⁶ + lo_u (lo_u = lo mod 2¹⁶); then x + (x << 16) ≡ (hi + lo)·2¹⁶ + lo_u (mod 2³²), whose
  /// top half, shifted down arithmetically, is hi + lo.
  @inline(__always) static func widenSmallPairs(_ v: SIMD32<Int16>) -> SIMD16<Int32> {
    let x = unsafeBitCast(v, to: SIMD16<Int32>.self)
    return (x &+ (x &<< 16)) &>> 16
  }

  /// Σ (u − zero)·a over `count` 64-byte blocks of nibbles `q` (q4_0 order) and their `nibblePlanes`, as 16 Int32
  /// lanes whose sum is the exact dot product.
  ///
  /// Lane bounds: |a| ≤ 127 (`Q8Activations` codes) and |u − zero| ≤ 15 for zero in 0…15, so a `nibbleBlock` lane
  /// is at most 4·15·127 = 7620 in magnitude (intermediate wrap-around cancels: the arithmetic is mod 2¹⁶) and four
  /// blocks sum to at most 30,480 < 2¹⁵ before they are widened to Int32.
  @inline(__always) static func nibbleLanes(_ q: UnsafeRawPointer, _ planes: UnsafePointer<Int16>, count: Int, zero: Int16) -> SIMD16<Int32> {
    let p = UnsafeRawPointer(planes), z = SIMD32<Int16>(repeating: zero)
    let step = 2 * planeStride  // bytes of planes per block
    var acc = SIMD16<Int32>()
    var k = 0
    while k + 4 <= count {
      let s01 = nibbleBlock(q + 64 * k, p + step * k, zero: z) &+ nibbleBlock(q + 64 * k + 64, p + step * (k + 1), zero: z)
      let s23 = nibbleBlock(q + 64 * k + 128, p + step * (k + 2), zero: z) &+ nibbleBlock(q + 64 * k + 192, p + step * (k + 3), zero: z)
      acc &+= widenPairs(s01 &+ s23)
      k += 4
    }
    while k < count {
      acc &+= widenSmallPairs(nibbleBlock(q + 64 * k, p + step * k, zero: z))
      k += 1
    }
    return acc
  }

  /// `Float(x)` lane by lane for |x| < 2²²: x + 1.5·2²³ as a Float bit pattern has x in its low mantissa bits, so
  /// subtracting 1.5·2²³ gives x exactly. (`SIMD16<Float>(_: SIMD16<Int32>)` is a call to a per-lane loop in
  /// Swift 6.3; this is an integer add, a bit cast and a Float subtract.)
  @inline(__always) static func exactFloat(_ x: SIMD16<Int32>) -> SIMD16<Float> {
    let biased = x &+ SIMD16<Int32>(repeating: 0x4B40_0000)
    return unsafeBitCast(biased, to: SIMD16<Float>.self) - SIMD16<Float>(repeating: 12_582_912)
  }

  /// Longest group `int4Groups` takes: 256 blocks keep every lane below 256·2·7620 < 2²² (`exactFloat`).
  static let int4GroupsMaxLength = 32768

  /// int4 rows whose groups are whole 128-value blocks (`length` a multiple of 128) · per-vector activations with
  /// `planes`: `d_a·Σ_groups s_w·Σ_group (u − z)·a`.
  ///
  /// The zero point is subtracted inside the lanes (`nibbleLanes`), so a group needs no horizontal integer sum:
  /// its 16 exact Int32 lanes (|·| < 2²², `exactFloat`) are converted, scaled by the group's f16 scale and added
  /// into 16 Float lanes, reduced once per row. Each Float term s·lane is bounded by s·Σ|u − z|·|a| over its values,
  /// so the terms sum to at most Σ|ŵ|·|a|, and a result sees ≤ 1 (scale) + groups (lane sums) + 15 (lane reduction)
  /// + 1 (d_a) roundings: within `KernelTests.int8DotTolerance`'s n/16 + 6 = 8·groups + 6 for groups ≥ 2, the only
  /// case that comes here. (Subtracting the symmetric zero point outside the lanes was 5% faster but loses this
  /// bound: the lanes would then carry Σ u·a, not Σ (u − z)·a.)
  static func int4Groups(
    _ w: UnsafeRawPointer, columns: Int, length: Int, symmetric: Bool, _ act: Activations, planes: UnsafePointer<Int16>
  ) -> Float {
    precondition(length % 128 == 0 && length <= int4GroupsMaxLength && columns % length == 0 && columns > length
      && act.blockSize >= columns, "int4 groups of \(length) in \(columns)")
    let blocks = length / 128
    let size = IntegerCodec.groupBytes(length: length, bits: 4, symmetric: symmetric)
    let codeOffset = symmetric ? 2 : 3
    var acc = SIMD16<Float>()
    if blocks == 1 {
      // Groups of 128: one block each, straight-line (the general loop's bookkeeping cost as much as the block);
      // the symmetric loop has the constant zero point 8 (a shift, no broadcast).
      var p = w, a = UnsafeRawPointer(planes)
      if symmetric {
        for _ in 0..<(columns / length) {
          acc += exactFloat(widenSmallPairs(nibbleBlock(p + 2, a, zero: SIMD32(repeating: 8)))) * BlockBytes.f16(p, 0)
          p += size
          a += 2 * planeStride
        }
      } else {
        for _ in 0..<(columns / length) {
          let zero = Int16(p.load(fromByteOffset: 2, as: UInt8.self))
          acc += exactFloat(widenSmallPairs(nibbleBlock(p + 3, a, zero: SIMD32(repeating: zero)))) * BlockBytes.f16(p, 0)
          p += size
          a += 2 * planeStride
        }
      }
      return acc.sum() * act.scales[0]
    }
    for g in 0..<(columns / length) {
      let p = w + g * size
      let zero: Int16 = symmetric ? 8 : Int16(p.load(fromByteOffset: 2, as: UInt8.self))
      let lanes = nibbleLanes(p + codeOffset, planes + planeStride * blocks * g, count: blocks, zero: zero)
      acc += exactFloat(lanes) * BlockBytes.f16(p, 0)
    }
    return acc.sum() * act.scales[0]
  }

  /// Sum of 16 Float lanes as a tree (8 + 8, 4 + 4, 2 + 2, 1 + 1): 4 roundings on any lane's path, against 15 for
  /// the sequential `sum()`.
  @inline(__always) static func treeSum(_ v: SIMD16<Float>) -> Float {
    let v8 = v.lowHalf + v.highHalf
    let v4 = v8.lowHalf + v8.highHalf
    let v2 = v4.lowHalf + v4.highHalf
    return v2[0] + v2[1]
  }

  /// q4_0 row · 32-blocked activations with `planes`, four blocks (128 values) per step; the block tail goes to
  /// `q4_0Blocks`. The four 16-byte code areas (18-byte stride) are read into one 64-byte register, so Int32 lane l
  /// after `widenSmallPairs` belongs to block l / 4: it is scaled by that block's d_w·d_a, with the −8·Σa term
  /// inside the lanes (zero: 8).
  ///
  /// Each Float term d_w·d_a·lane is bounded by d_w·d_a·Σ|u − 8|·|a| over its 8 values, so the terms sum to at most
  /// Σ|ŵ|·|d_a·a|; a result sees ≤ 2 (scales) + blocks/4 (lane sums) + 4 (`treeSum`) + the tail's and one final
  /// addition: fewer than `KernelTests.int8DotTolerance`'s n/16 + 6 = 2·blocks + 6 roundings.
  static func q4_0Planes(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations, planes: UnsafePointer<Int16>) -> Float {
    var acc = SIMD16<Float>()
    let zero = SIMD32<Int16>(repeating: 8)
    var b = 0
    var a = UnsafeRawPointer(planes)
    while b + 4 <= blocks {
      let p = w + 18 * b
      let codes = SIMD8<UInt64>(
        lowHalf: SIMD4(lowHalf: (p + 2).loadUnaligned(as: SIMD2<UInt64>.self), highHalf: (p + 20).loadUnaligned(as: SIMD2<UInt64>.self)),
        highHalf: SIMD4(lowHalf: (p + 38).loadUnaligned(as: SIMD2<UInt64>.self), highHalf: (p + 56).loadUnaligned(as: SIMD2<UInt64>.self)))
      let s0 = BlockBytes.f16(p, 0) * act.scales[b], s1 = BlockBytes.f16(p, 18) * act.scales[b + 1]
      let s2 = BlockBytes.f16(p, 36) * act.scales[b + 2], s3 = BlockBytes.f16(p, 54) * act.scales[b + 3]
      let scale = SIMD16<Float>(s0, s0, s0, s0, s1, s1, s1, s1, s2, s2, s2, s2, s3, s3, s3, s3)
      acc += exactFloat(widenSmallPairs(nibbleBlock(codes, a, zero: zero))) * scale
      a += 2 * planeStride
      b += 4
    }
    let tail = b < blocks ? q4_0Blocks(w + 18 * b, blocks: blocks - b, act, first: b) : 0
    return treeSum(acc) + tail
  }

  /// Int16 values of `bytePlanes` per 64 activations: the even-indexed 32, then the odd-indexed 32.
  static let bytePlaneStride = 64

  /// Activation codes split into even and odd elements per 64 values, for `q8_0Pairs`: `planes[64k + i]` =
  /// `codes16[64k + 2i]`, `planes[64k + 32 + i]` = `codes16[64k + 2i + 1]` (i < 32). Even and odd elements are the
  /// low and high halves of little-endian Int32 lanes, as in `nibblePlanes`.
  static func bytePlanes(codes16: UnsafePointer<Int16>, pairs: Int, into planes: UnsafeMutablePointer<Int16>) {
    let source = UnsafeRawPointer(codes16), target = UnsafeMutableRawPointer(planes)
    for k in 0..<pairs {
      for h in 0..<4 {
        let x = source.loadUnaligned(fromByteOffset: 128 * k + 32 * h, as: SIMD8<Int32>.self)
        target.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: x), toByteOffset: 128 * k + 16 * h, as: SIMD8<Int16>.self)
        target.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: x &>> 16), toByteOffset: 128 * k + 64 + 16 * h, as: SIMD8<Int16>.self)
      }
    }
  }

  /// q8_0 row · 32-blocked activations with `bytePlanes`, two blocks (64 values) per step; an odd last block goes
  /// to `q8_0Blocks`. The two 32-byte code areas (34-byte stride) are read into one 64-byte register and viewed as
  /// 32 UInt16 words; with the sign bit flipped (u = q + 128), a word's low byte is an even code and its high byte
  /// an odd one, separated by a mask and a shift and turned back into q = u − 128 in Int16 lanes. Each lane then
  /// holds q_even·a_even + q_odd·a_odd (|·| ≤ 2·127² < 2¹⁵), lanes 0–15 from the first block and 16–31 from the
  /// second; `widenPairs` gives 16 exact Int32 lanes, 8 per block, scaled by d_w·d_a into Float lanes.
  ///
  /// Each Float term is bounded by |d_w·d_a|·Σ|q·a| over its four values; a result sees ≤ 2 (scales) + blocks/2
  /// (lane sums) + 4 (`treeSum`) + the tail's and one final addition, within `int8DotTolerance`'s 2·blocks + 6.
  static func q8_0Pairs(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations, planes: UnsafePointer<Int16>) -> Float {
    var acc = SIMD16<Float>()
    let flip = SIMD8<UInt64>(repeating: 0x8080_8080_8080_8080), low = SIMD8<UInt64>(repeating: 0x00FF_00FF_00FF_00FF)
    let bias = SIMD32<Int16>(repeating: 128)
    var b = 0
    var a = UnsafeRawPointer(planes)
    while b + 2 <= blocks {
      let p = w + 34 * b
      let codes = SIMD8<UInt64>(
        lowHalf: (p + 2).loadUnaligned(as: SIMD4<UInt64>.self), highHalf: (p + 36).loadUnaligned(as: SIMD4<UInt64>.self)) ^ flip
      let even = unsafeBitCast(codes & low, to: SIMD32<Int16>.self) &- bias
      let odd = unsafeBitCast((codes &>> 8) & low, to: SIMD32<Int16>.self) &- bias
      let products = even &* a.loadUnaligned(as: SIMD32<Int16>.self) &+ odd &* a.loadUnaligned(fromByteOffset: 64, as: SIMD32<Int16>.self)
      let s0 = BlockBytes.f16(p, 0) * act.scales[b], s1 = BlockBytes.f16(p, 34) * act.scales[b + 1]
      let scale = SIMD16<Float>(lowHalf: SIMD8(repeating: s0), highHalf: SIMD8(repeating: s1))
      acc += exactFloat(widenPairs(products)) * scale  // a pair reaches 4·127², past `widenSmallPairs`' bound
      a += 2 * bytePlaneStride
      b += 2
    }
    let tail = b < blocks ? q8_0Blocks(w + 34 * b, blocks: blocks - b, act, first: b) : 0
    return treeSum(acc) + tail
  }
}
