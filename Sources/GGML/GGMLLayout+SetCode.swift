/// Writing one value's integer code into a GGML block: the inverse of `GGMLLayout.code(_:_:_:)`, for quantizers
/// that fix a block's scales first and choose its codes afterwards (Quantization's GPTQ).
///
/// `setCode(type, p, i, c)` then `code(type, p, i)` gives `c` back, and no other value's bits change
/// (GGMLTests' `GGMLSetCodeTests`, every type, every position). The bit positions are `GGMLLayout`'s documented
/// conventions; the scale fields are left as they are.
extension GGMLLayout {
  /// The range of the signed code `code(type, p, i)` returns: q4_0 −8…7, q5_0 −16…15, q8_0 −128…127, q4_1 0…15,
  /// q5_1 0…31, q2_K 0…3, q3_K −4…3, q4_K 0…15, q5_K 0…31, q6_K −32…31.
  @inlinable package static func codeRange(_ type: GGMLType) -> ClosedRange<Int> {
    switch type {
    case .q4_0: -8...7
    case .q5_0: -16...15
    case .q8_0: -128...127
    case .q4_1: 0...15
    case .q5_1: 0...31
    case .q2_K: 0...3
    case .q3_K: -4...3
    case .q4_K: 0...15
    case .q5_K: 0...31
    case .q6_K: -32...31
    default: preconditionFailure("\(type.name) has no integer codes")
    }
  }

  /// Replaces `width` bits at bit `shift` of byte `offset` (shift + width ≤ 8) with `value`.
  @inlinable @inline(__always)
  static func setBits(_ p: UnsafeMutableRawPointer, _ offset: Int, shift: Int, width: Int, _ value: Int) {
    let mask = UInt8(truncatingIfNeeded: ((1 << width) - 1) << shift)
    let old = p.load(fromByteOffset: offset, as: UInt8.self)
    p.storeBytes(of: (old & ~mask) | (UInt8(truncatingIfNeeded: value << shift) & mask), toByteOffset: offset, as: UInt8.self)
  }

  /// Stores the signed code `c` (bias applied, as `code` returns it) of value `i` of the block at `p`.
  /// - Precondition: `codeRange(type).contains(c)`.
  @inlinable package static func setCode(_ type: GGMLType, _ p: UnsafeMutableRawPointer, _ i: Int, _ c: Int) {
    precondition(codeRange(type).contains(c), "\(type.name): code \(c) outside \(codeRange(type))")
    @inline(__always) func nibble(_ qs: Int, _ u: Int) {
      setBits(p, qs + i % 16, shift: i < 16 ? 0 : 4, width: 4, u)
    }
    @inline(__always) func fifthBit(_ qh: Int, _ u: Int) {
      setBits(p, qh + i / 8, shift: i % 8, width: 1, u >> 4)  // bit i of the little-endian u32 at qh
    }
    @inline(__always) func crumb(_ qs: Int, _ u: Int) {
      setBits(p, qs + 32 * (i / 128) + i % 32, shift: 2 * ((i % 128) / 32), width: 2, u)
    }
    @inline(__always) func kNibble(_ qs: Int, _ u: Int) {
      setBits(p, qs + 32 * (i / 64) + i % 32, shift: 4 * ((i / 32) % 2), width: 4, u)
    }
    @inline(__always) func highBit(_ bits: Int, _ bit: Int) { setBits(p, bits + i % 32, shift: i / 32, width: 1, bit) }
    switch type {
    case .q4_0: nibble(2, c + 8)
    case .q4_1: nibble(4, c)
    case .q5_0:
      nibble(6, (c + 16) & 15)
      fifthBit(2, c + 16)
    case .q5_1:
      nibble(8, c & 15)
      fifthBit(4, c)
    case .q8_0: p.storeBytes(of: Int8(c), toByteOffset: 2 + i, as: Int8.self)
    case .q2_K: crumb(Q2K.qs, c)
    case .q3_K:
      // code = crumb − 4·(1 − hbit): c ≥ 0 is crumb c with the high bit set, c < 0 is crumb c + 4 without it.
      crumb(Q3K.qs, (c + 4) & 3)
      highBit(Q3K.hmask, c >= 0 ? 1 : 0)
    case .q4_K: kNibble(Q4K.qs, c)
    case .q5_K:
      kNibble(Q5K.qs, c & 15)
      highBit(Q5K.qh, c >> 4)
    case .q6_K:
      let u = c + 32, r = i % 128
      setBits(p, Q6K.ql + 64 * (i / 128) + 32 * ((r / 32) % 2) + i % 32, shift: 4 * (r / 64), width: 4, u & 15)
      crumb(Q6K.qh, u >> 4)
    default: preconditionFailure("\(type.name) has no integer codes")
    }
  }
}
