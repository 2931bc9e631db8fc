import GGML

/// Integer dot products of one packed weight row with `Q8Activations`.
///
/// Every path forms exact Int32 sums of code products per block (bit-identical across variants) and differs only in
/// how those partial sums are scaled and added in floating point.
/// - `decodedReference`: any integer format through `DecodedIntRow`, Double accumulation. The answer.
/// - `decodedFast`: the same decode, Float accumulation.
/// - `q4_0`, `q8_0`, `legacy` (q4_1, q5_0, q5_1), `integer` (int4 / int8, symmetric or not): fused loops over the packed bytes (no decode), Float accumulation, written as
///   plain integer loops that LLVM vectorizes with `-target-cpu native` (STYLE §6).
/// - int4 and q4_0 with whole 128-value blocks: `IntDot+NibblePlanes.swift` (64 bytes per step in 16-bit lanes over
///   activations rearranged once per vector; `int4Groups` for groups of 128k, `q4_0Planes`).
enum IntDot {
  /// Raw view of `Q8Activations`.
  struct Activations {
    var codes: UnsafePointer<Int8>
    var scales: UnsafePointer<Float>
    var sums16: UnsafePointer<Int32>
    var codes16: UnsafePointer<Int16>
    /// Values per activation scale (32, or the whole vector).
    var blockSize: Int
    /// `Q8Activations.nibblePlanes` (per-vector or 32-blocked activations), else nil.
    var planes: UnsafePointer<Int16>? = nil
    /// `Q8Activations.bytePlanes` (32-blocked activations), else nil.
    var bytePlanes: UnsafePointer<Int16>? = nil
    /// The scale of the activation block holding value i.
    @inline(__always) func scale(at i: Int) -> Float { scales[i / blockSize] }
  }

  /// Σ over 16-value units u of `scale_u·d·Σ code·a + offset_u·d·Σ a` in Double (d = activation block scale).
  static func decodedReference(_ row: DecodedIntRow, columns: Int, _ act: Activations) -> Double {
    var sum = 0.0
    for u in 0..<(columns + 15) / 16 {
      var isum = 0
      for i in (16 * u)..<min(columns, 16 * u + 16) { isum += Int(row.codes[i]) * Int(act.codes[i]) }
      let d = Double(act.scale(at: 16 * u))
      sum += Double(row.scales[u]) * d * Double(isum) + Double(row.offsets[u]) * d * Double(act.sums16[u])
    }
    return sum
  }

  /// As `decodedReference` with Int32 sums and Float accumulation; codes must be zero-padded to a multiple of 16.
  static func decodedFast(_ row: DecodedIntRow, columns: Int, _ act: Activations) -> Float {
    var sum: Float = 0
    for u in 0..<(columns + 15) / 16 {
      var isum: Int32 = 0
      for i in 0..<16 { isum &+= Int32(row.codes[16 * u + i]) &* Int32(act.codes[16 * u + i]) }
      let d = act.scale(at: 16 * u)
      sum += row.scales[u] * d * Float(isum) + row.offsets[u] * d * Float(act.sums16[u])
    }
    return sum
  }

  /// Whether `integer` can use `nibblePlanes` for int4 groups of `length` in rows of `columns`: at least one whole
  /// 128-value block per group, and every group starting on a block (one group per row, or a multiple of 128).
  static func usesNibblePlanes(columns: Int, length: Int) -> Bool {
    let chunks = (length + 31) / 32
    return chunks >= 4 && (chunks % 4 == 0 || length == columns)
  }

  /// Σ a over values `start..<start + count` (count a multiple of 16).
  @inline(__always) static func activationSum(_ act: Activations, from start: Int, count: Int) -> Int32 {
    var total: Int32 = 0
    for k in (start / 16)..<((start + count) / 16) { total &+= act.sums16[k] }
    return total
  }

  /// One 32-value int4 chunk (16 bytes, q4_0 nibble order) · 32 Int16 activations, codes unsigned 0…15.
  @inline(__always) static func nibbleChunk(_ q: UnsafePointer<UInt8>, _ a: UnsafePointer<Int16>) -> Int32 {
    var s: Int32 = 0
    for j in 0..<16 { s &+= Int32(q[j] & 15) &* Int32(a[j]) &+ Int32(q[j] >> 4) &* Int32(a[j + 16]) }
    return s
  }

  /// Four int4 chunks (64 bytes) · 128 activations in one constant-trip loop, so LLVM keeps the products in vector
  /// registers across all four chunks and reduces once.
  @inline(__always) static func nibbleChunks4(_ q: UnsafePointer<UInt8>, _ a: UnsafePointer<Int16>) -> Int32 {
    var s: Int32 = 0
    for j in 0..<16 {
      s &+= Int32(q[j] & 15) &* Int32(a[j]) &+ Int32(q[j] >> 4) &* Int32(a[j + 16])
      s &+= Int32(q[j + 16] & 15) &* Int32(a[j + 32]) &+ Int32(q[j + 16] >> 4) &* Int32(a[j + 48])
      s &+= Int32(q[j + 32] & 15) &* Int32(a[j + 64]) &+ Int32(q[j + 32] >> 4) &* Int32(a[j + 80])
      s &+= Int32(q[j + 48] & 15) &* Int32(a[j + 96]) &+ Int32(q[j + 48] >> 4) &* Int32(a[j + 112])
    }
    return s
  }

  /// Σ_k scale(k)·isum(k) over `count` blocks or groups, in two passes over tiles of 64: integer sums and scales
  /// into a small buffer first, then the scaling in 8 Float lanes. Keeping the Float add chain out of the integer
  /// loop took q4_0 from 3.6 to 1.6 ns per 32 values (measured, microbenchmark, `-target-cpu native`).
  @inline(__always) static func scaledSum(count: Int, _ block: (Int) -> (isum: Int32, scale: Float)) -> Float {
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: 64) { isums in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { scales in
        var total: Float = 0
        var b0 = 0
        while b0 < count {
          let m = min(64, count - b0)
          for k in 0..<m { (isums[k], scales[k]) = block(b0 + k) }
          var lanes = SIMD8<Float>()
          var k = 0
          while k + 8 <= m {
            for l in 0..<8 { lanes[l] += scales[k + l] * Float(isums[k + l]) }
            k += 8
          }
          var tail: Float = 0
          while k < m {
            tail += scales[k] * Float(isums[k])
            k += 1
          }
          total += lanes.sum() + tail
          b0 += m
        }
        return total
      }
    }
  }

  /// q4_0 row (`blocks` blocks of 18 bytes) · 32-blocked activations: Σ_b d_w·d_a·(Σ q·a − 8·Σ a).
  /// With `act.planes`, four blocks per step (`q4_0Planes`); else one block at a time (`q4_0Blocks`).
  static func q4_0(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations) -> Float {
    if let planes = act.planes, blocks >= 4 { return q4_0Planes(w, blocks: blocks, act, planes: planes) }
    return q4_0Blocks(w, blocks: blocks, act, first: 0)
  }

  /// `q4_0` one block at a time: blocks `first ..< first + blocks` of the activations, starting at `w`.
  static func q4_0Blocks(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations, first: Int) -> Float {
    scaledSum(count: blocks) { k in
      let p = w + 18 * k, b = first + k
      let isum = nibbleChunk((p + 2).assumingMemoryBound(to: UInt8.self), act.codes16 + 32 * b)
        &- 8 &* (act.sums16[2 * b] &+ act.sums16[2 * b + 1])
      return (isum, BlockBytes.f16(p, 0) * act.scales[b])
    }
  }

  /// q8_0 row (`blocks` blocks of 34 bytes) · 32-blocked activations: Σ_b d_w·d_a·Σ q·a.
  /// With `act.bytePlanes`, two blocks per step (`q8_0Pairs`); else one block at a time (`q8_0Blocks`).
  /// ggml uses `vpmaddubsw`/`vpdpbusd`, which LLVM does not form from plain loops (checked: a 32-value
  /// `Int32(UInt8) &* Int32(Int8)` reduction becomes `vpmovzxbd`/`vpmovsxbd` + `vpmaddwd`), and a lane-wise variant
  /// with `SIMD16<Int16>(truncatingIfNeeded:)` from Int8 was 11× slower because that conversion is a call.
  static func q8_0(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations) -> Float {
    if let planes = act.bytePlanes, blocks >= 2 { return q8_0Pairs(w, blocks: blocks, act, planes: planes) }
    return q8_0Blocks(w, blocks: blocks, act, first: 0)
  }

  /// `q8_0` one block at a time (the plain loop LLVM turns into `vpmaddwd`): blocks `first ..< first + blocks` of
  /// the activations, starting at `w`.
  static func q8_0Blocks(_ w: UnsafeRawPointer, blocks: Int, _ act: Activations, first: Int) -> Float {
    scaledSum(count: blocks) { k in
      let p = w + 34 * k, b = first + k
      let q = (p + 2).assumingMemoryBound(to: Int8.self), a = act.codes16 + 32 * b
      var isum: Int32 = 0
      for j in 0..<32 { isum &+= Int32(Int16(q[j]) &* a[j]) }
      return (isum, BlockBytes.f16(p, 0) * act.scales[b])
    }
  }

  /// Σ_j bit_j(qh)·a_j over 32 values: the 5th-bit part of a q5 block.
  @inline(__always) static func fifthBitSum(_ qh: UInt32, _ a: UnsafePointer<Int16>) -> Int32 {
    var s: Int32 = 0
    for j in 0..<32 { s &+= Int32((qh >> UInt32(j)) & 1) &* Int32(a[j]) }
    return s
  }

  /// q4_1, q5_0 or q5_1 row · 32-blocked activations. With x̂ = d·q + m (q5_0: d·(q − 16)):
  /// Σ_b d_w·d_a·Σ q·a + m_w·d_a·Σ a, where q = nibble + 16·bit.
  static func legacy(_ type: GGMLType, _ w: UnsafeRawPointer, blocks: Int, _ act: Activations) -> Float {
    let size = type.bytesPerBlock
    let qsOffset = type == .q4_1 ? 4 : type == .q5_0 ? 6 : 8
    let main = scaledSum(count: blocks) { b in
      let p = w + size * b
      let a = act.codes16 + 32 * b
      var isum = nibbleChunk((p + qsOffset).assumingMemoryBound(to: UInt8.self), a)
      if type != .q4_1 { isum &+= 16 &* fifthBitSum(BlockBytes.u32(p, type == .q5_0 ? 2 : 4), a) }
      if type == .q5_0 { isum &-= 16 &* (act.sums16[2 * b] &+ act.sums16[2 * b + 1]) }
      return (isum, BlockBytes.f16(p, 0) * act.scales[b])
    }
    guard type.hasMinimum else { return main }
    var offsets: Float = 0
    for b in 0..<blocks {
      offsets += BlockBytes.f16(w + size * b, 2) * act.scales[b] * Float(act.sums16[2 * b] &+ act.sums16[2 * b + 1])
    }
    return main + offsets
  }

  /// int4 or int8 row in the `IntegerCodec` layout (groups of `length`, symmetric or with a u8 zero point z) · per-vector
  /// activations (one scale d_a): `d_a·Σ_groups s_w·(Σ_group u·a − z·Σ_group a)`, one exact Int32 sum per group.
  /// int4 multiplies unsigned nibbles with the Int16-widened activations in constant-trip 4-chunk loops (one
  /// reduction per 128 values); int8 flips the top bit (u − 128, signed) and multiplies Int8 by Int8 over the whole
  /// group, correcting by (z − 128)·Σ a.
  /// `groupSums[g]` = Σ a over group g (padded to whole chunks), computed once per activation vector.
  /// With `planes` (int4, when every group starts on a 128-value block: `usesNibblePlanes`), whole 64-byte blocks go
  /// through `nibbleLanes` and only the remaining chunks through `nibbleChunk`.
  static func integer(
    _ w: UnsafeRawPointer, columns: Int, length: Int, bits: Int, symmetric: Bool, _ act: Activations,
    groupSums: UnsafePointer<Int32>, planes: UnsafePointer<Int16>? = nil
  ) -> Float {
    precondition(act.blockSize >= columns, "the fused integer kernel needs per-vector activations")
    let chunks = (length + 31) / 32
    let size = IntegerCodec.groupBytes(length: length, bits: bits, symmetric: symmetric)
    let chunkBytes = 4 * bits, codeOffset = symmetric ? 2 : 3
    let sum = scaledSum(count: columns / length) { g in
      let p = w + g * size
      let codes = (p + codeOffset).assumingMemoryBound(to: UInt8.self)
      let zero = symmetric ? Int32(1 << (bits - 1)) : Int32(p.load(fromByteOffset: 2, as: UInt8.self))
      let start = g * 32 * chunks
      var isum: Int32 = 0
      if bits == 4 {
        let a = act.codes16 + start
        if let planes {
          let blocks = chunks / 4
          isum = nibbleLanes(codes, planes + start / 128 * planeStride, count: blocks, zero: 0).wrappedSum()
          for c in (4 * blocks)..<chunks { isum &+= nibbleChunk(codes + chunkBytes * c, a + 32 * c) }
        } else if chunks == 1 {
          isum = nibbleChunk(codes, a)  // groups of 32: the q4_0 shape, no chunk loop
        } else {
          var c = 0
          while c + 4 <= chunks { isum &+= nibbleChunks4(codes + chunkBytes * c, a + 32 * c); c += 4 }
          while c < chunks { isum &+= nibbleChunk(codes + chunkBytes * c, a + 32 * c); c += 1 }
        }
        isum &-= zero &* groupSums[g]
      } else {
        let a = act.codes + start
        if chunks == 1 {
          for j in 0..<32 { isum &+= Int32(Int8(bitPattern: codes[j] ^ 0x80)) &* Int32(a[j]) }
        } else {
          for j in 0..<(32 * chunks) { isum &+= Int32(Int8(bitPattern: codes[j] ^ 0x80)) &* Int32(a[j]) }
        }
        if zero != 128 { isum &-= (zero &- 128) &* groupSums[g] }
      }
      return (isum, BlockBytes.f16(p, 0))
    }
    return sum * act.scales[0]
  }
}
