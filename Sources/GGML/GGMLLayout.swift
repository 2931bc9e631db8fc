/// Where every field of a GGML block lives: the byte offsets of ggml-common.h's `block_*` structs and, for value `i`
/// of one block, which bits hold its code and which bytes its scales. This is the one place in BitPlan that spells
/// out the bit layout of a block; the reference decoder (`GGMLDecode.reference`) and Quantization's integer decode
/// for the int8-activation kernels read blocks only through these accessors. The fast decoder and the encoders
/// restate the same layout as block loops, and the tests hold them to the reference bit for bit.
///
/// All scalars are little-endian; `p` always points at the first byte of one block.
///
/// Index conventions for value `i` of a 256-value K-quant super-block (ggml-quants.c `dequantize_row_q*_K`):
/// - a 2-bit field ("crumb", q2_K/q3_K low bits, q6_K high bits) lives in byte `32·(i/128) + i%32` at bit
///   `2·((i%128)/32)`;
/// - a K-quant nibble (q4_K, q5_K) lives in byte `32·(i/64) + i%32`, low nibble when `(i/32)` is even;
/// - a single high bit (q3_K `hmask`, q5_K `qh`) is bit `i/32` of byte `i%32`;
/// - a q6_K low nibble lives in `ql[64·(i/128) + 32·((i%128/32)%2) + i%32]`, high nibble when `i%128 ≥ 64`.
///
/// Legacy 32-value blocks keep value `j < 16` in the low nibble of `qs[j]` and value `j + 16` in its high nibble;
/// the fifth bit of value `j` (q5_0, q5_1) is bit `j` of the u32 `qh`.
package enum GGMLLayout {
  // MARK: - Byte offsets (ggml-common.h)

  /// q2_K, 84 bytes: `scales[16] @0` (low nibble scale, high nibble min), `qs[64] @16`, `d @80`, `dmin @82`.
  package enum Q2K { package static let scales = 0, qs = 16, d = 80, dmin = 82 }
  /// q3_K, 110 bytes: `hmask[32] @0`, `qs[64] @32`, `scales[12] @96` (sixteen 6-bit scales, stored + 32), `d @108`.
  package enum Q3K { package static let hmask = 0, qs = 32, scales = 96, d = 108 }
  /// q4_K, 144 bytes: `d @0`, `dmin @2`, `scales[12] @4` (eight 6-bit scales and mins), `qs[128] @16`.
  package enum Q4K { package static let d = 0, dmin = 2, scales = 4, qs = 16 }
  /// q5_K, 176 bytes: `d @0`, `dmin @2`, `scales[12] @4`, `qh[32] @16`, `qs[128] @48`.
  package enum Q5K { package static let d = 0, dmin = 2, scales = 4, qh = 16, qs = 48 }
  /// q6_K, 210 bytes: `ql[128] @0`, `qh[64] @128`, `scales: int8[16] @192`, `d @208`.
  package enum Q6K { package static let ql = 0, qh = 128, scales = 192, d = 208 }

  /// Offsets of a legacy block's fields: `d` is always at 0; `m` (q4_1, q5_1) at 2; `qh` (q5_0, q5_1) after the
  /// f16s; `qs` last.
  /// - q4_0 `d, qs[16] @2`; q4_1 `d, m, qs[16] @4`; q5_0 `d, qh @2, qs[16] @6`; q5_1 `d, m, qh @4, qs[16] @8`;
  ///   q8_0 `d, qs: int8[32] @2`.
  @inlinable @inline(__always)
  package static func legacyOffsets(_ type: GGMLType) -> (m: Int, qh: Int, qs: Int) {
    switch type {
    case .q4_0, .q8_0: (0, 0, 2)
    case .q4_1: (2, 0, 4)
    case .q5_0: (0, 2, 6)
    case .q5_1: (2, 4, 8)
    default: preconditionFailure("\(type.name) is not a legacy 32-value type")
    }
  }

  // MARK: - Field accessors

  @inlinable @inline(__always) static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> Int {
    Int(p.load(fromByteOffset: offset, as: UInt8.self))
  }

  /// Value `j` (0..<32) of a legacy block's nibbles at `qs`.
  @inlinable @inline(__always) package static func legacyNibble(_ qs: UnsafeRawPointer, _ j: Int) -> Int {
    j < 16 ? byte(qs, j) & 15 : byte(qs, j - 16) >> 4
  }

  /// The fifth bit of legacy value `j`, as 0 or 16: bit `j` of the u32 at `qh`.
  @inlinable @inline(__always) package static func legacyFifthBit(_ qh: UnsafeRawPointer, _ j: Int) -> Int {
    Int((BlockBytes.u32(qh, 0) >> UInt32(j)) & 1) << 4
  }

  /// The 2-bit field of value `i` (0..<256) of a super-block, packed four to a byte at `qs`.
  @inlinable @inline(__always) package static func crumb(_ qs: UnsafeRawPointer, _ i: Int) -> Int {
    (byte(qs, 32 * (i / 128) + i % 32) >> (2 * ((i % 128) / 32))) & 3
  }

  /// The K-quant nibble of value `i` (0..<256) at `qs` (q4_K, q5_K).
  @inlinable @inline(__always) package static func kNibble(_ qs: UnsafeRawPointer, _ i: Int) -> Int {
    (byte(qs, 32 * (i / 64) + i % 32) >> (4 * ((i / 32) % 2))) & 15
  }

  /// The single high bit of value `i` (0..<256): bit `i / 32` of byte `i % 32` at `bits` (q3_K hmask, q5_K qh).
  @inlinable @inline(__always) package static func highBit(_ bits: UnsafeRawPointer, _ i: Int) -> Int {
    (byte(bits, i % 32) >> (i / 32)) & 1
  }

  /// The 6-bit (scale, min) of q4_K/q5_K sub-block `j` (0..<8) from the 12 bytes at `q` (ggml `get_scale_min_k4`):
  /// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7, bytes 4-7 the same for mins, bytes
  /// 8-11 the low nibbles of scale 4-7 (low) and min 4-7 (high).
  @inlinable @inline(__always)
  package static func scaleMinK4(_ q: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    @inline(__always) func b(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
    if j < 4 { return (b(j) & 63, b(j + 4) & 63) }
    return ((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4))
  }

  /// The signed 6-bit scale of q3_K sub-block `j` (0..<16) from the 12 packed bytes at `sc`: low nibbles in bytes
  /// 0..7 (sub-blocks 0-7 low, 8-15 high), top two bits at bit `2·(j/4)` of byte `8 + j%4`; stored plus 32.
  @inlinable @inline(__always) package static func q3Scale(_ sc: UnsafeRawPointer, _ j: Int) -> Int {
    let low = j < 8 ? byte(sc, j) & 15 : byte(sc, j - 8) >> 4
    let high = (byte(sc, 8 + j % 4) >> (2 * (j / 4))) & 3
    return (low | (high << 4)) - 32
  }

  // MARK: - Per value: code, scales

  /// The signed integer code of value `i` (0..<`type.blockSize`) of the block at `p`, bias applied:
  /// q4_0 `q − 8`, q5_0 `q − 16`, q8_0 `q`, q4_1/q5_1 `q`; q2_K `q`, q3_K `q − 4·(1 − hbit)`, q4_K/q5_K `q`,
  /// q6_K `q − 32`. Every dequantized value is `code` times a scale, minus a minimum for the affine types.
  @inlinable @inline(__always) package static func code(_ type: GGMLType, _ p: UnsafeRawPointer, _ i: Int) -> Int {
    switch type {
    case .q4_0: return legacyNibble(p + 2, i) - 8
    case .q4_1: return legacyNibble(p + 4, i)
    case .q5_0: return (legacyNibble(p + 6, i) | legacyFifthBit(p + 2, i)) - 16
    case .q5_1: return legacyNibble(p + 8, i) | legacyFifthBit(p + 4, i)
    case .q8_0: return Int(p.load(fromByteOffset: 2 + i, as: Int8.self))
    case .q2_K: return crumb(p + Q2K.qs, i)
    case .q3_K: return crumb(p + Q3K.qs, i) - (highBit(p + Q3K.hmask, i) == 1 ? 0 : 4)
    case .q4_K: return kNibble(p + Q4K.qs, i)
    case .q5_K: return kNibble(p + Q5K.qs, i) | highBit(p + Q5K.qh, i) << 4
    case .q6_K:
      let r = i % 128
      let low = (byte(p + Q6K.ql, 64 * (i / 128) + 32 * ((r / 32) % 2) + i % 32) >> (4 * (r / 64))) & 15
      return (low | crumb(p + Q6K.qh, i) << 4) - 32
    default: preconditionFailure("\(type.name) has no integer codes")
    }
  }

  /// The f16 block scales, widened: `d` and the second f16 field `m` (the legacy minimum of q4_1/q5_1, the K-quant
  /// `dmin` of q2_K/q4_K/q5_K; 0 for the symmetric types).
  @inlinable @inline(__always)
  package static func blockScales(_ type: GGMLType, _ p: UnsafeRawPointer) -> (d: Float, m: Float) {
    switch type {
    case .q4_0, .q5_0, .q8_0: (BlockBytes.f16(p, 0), 0)
    case .q4_1, .q5_1: (BlockBytes.f16(p, 0), BlockBytes.f16(p, 2))
    case .q2_K: (BlockBytes.f16(p, Q2K.d), BlockBytes.f16(p, Q2K.dmin))
    case .q3_K: (BlockBytes.f16(p, Q3K.d), 0)
    case .q4_K, .q5_K: (BlockBytes.f16(p, Q4K.d), BlockBytes.f16(p, Q4K.dmin))
    case .q6_K: (BlockBytes.f16(p, Q6K.d), 0)
    default: preconditionFailure("\(type.name) has no block scales")
    }
  }

  /// Values per sub-block scale: 16 for q2_K, q3_K, q6_K; 32 for q4_K, q5_K and for a whole legacy block.
  @inlinable @inline(__always) package static func subBlockLength(_ type: GGMLType) -> Int {
    switch type {
    case .q2_K, .q3_K, .q6_K: 16
    default: 32
    }
  }

  /// The integer scale and min of K-quant sub-block `s` of the block at `p`: q2_K 4-bit (scale, min), q3_K signed
  /// 6-bit scale, q4_K/q5_K 6-bit (scale, min), q6_K int8 scale; min 0 for the symmetric types. Value `i` of the
  /// super-block is `(d·scale)·code − dmin·min`.
  @inlinable @inline(__always)
  package static func subScale(_ type: GGMLType, _ p: UnsafeRawPointer, _ s: Int) -> (scale: Int, min: Int) {
    switch type {
    case .q2_K:
      let b = byte(p + Q2K.scales, s)
      return (b & 15, b >> 4)
    case .q3_K: return (q3Scale(p + Q3K.scales, s), 0)
    case .q4_K, .q5_K:
      let (scale, min) = scaleMinK4(p + Q4K.scales, s)
      return (Int(scale), Int(min))
    case .q6_K: return (Int(p.load(fromByteOffset: Q6K.scales + s, as: Int8.self)), 0)
    default: preconditionFailure("\(type.name) has no sub-block scales")
    }
  }
}
