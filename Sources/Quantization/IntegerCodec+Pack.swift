import GGML

/// The integer quantizer used for whole tensors: the bytes of `quantizeGroup`, which stays the reference (and the
/// error sum of the MSE search's reference), without its error sum and its code-by-code read-modify-write stores.
///
/// The scale (and zero point) come from the same helpers (`storeSymmetricScale`, `storeAsymmetricHeader`); then each chunk of 32 codes is computed into
/// a small buffer (`x·(1/d)` rounded half away from zero, clamped in Float, which equals the reference's Int clamp
/// for these whole numbers far below 2²⁴) and packed at once in the layout of the type's documentation: bytes for
/// N = 8, two nibbles per byte (j, j+16) for N = 4, otherwise eight codes per N-byte little-endian word.
extension IntegerCodec {
  /// Quantizes one group like `quantizeGroup`, without returning the error.
  static func quantizeGroupFast(
    _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, bits: Int, symmetric: Bool, ratio: Float,
    threshold: Float
  ) {
    let size = groupBytes(length: n, bits: bits, symmetric: symmetric)
    y.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    let codes = y + (symmetric ? 2 : 3)
    // Code u = clamp(round(x·id) + offset, 0, top).
    let id: Float, offset: Float, top: Float
    if symmetric {
      let Q = 1 << (bits - 1)
      let (amax, m) = BlockBytes.extreme(x, n)
      let d = storeSymmetricScale(amax: amax, extreme: m, y, bits: bits, ratio: ratio, threshold: threshold)
      (id, offset, top) = (d != 0 ? 1 / d : 0, Float(Q), Float(2 * Q - 1))
    } else {
      let (s, z) = storeAsymmetricHeader(x, n, y, bits: bits, ratio: ratio, threshold: threshold)
      (id, offset, top) = (s > 0 ? 1 / s : 0, Float(z), Float((1 << bits) - 1))
    }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { u in
      var j = 0
      while j < n {
        let k = min(32, n - j)
        for t in 0..<32 {
          // Codes past the group's end stay 0, as the reference leaves the zeroed area.
          var q = t < k ? (x[j + t] * id).rounded(.toNearestOrAwayFromZero) + offset : 0
          q = q < 0 ? 0 : q
          q = q > top ? top : q
          // q is a whole number in [0, 255] (or −0): 2²³ + q holds it in its low mantissa bits. `UInt8(q)` would
          // check the range per value and keep the loop scalar.
          u[t] = UInt8(truncatingIfNeeded: (q + 8_388_608).bitPattern)
        }
        pack(u.baseAddress!, into: codes + (j / 32) * 4 * bits, bits: bits)
        j += 32
      }
    }
  }

  /// Packs 32 codes into one chunk of `4·bits` bytes.
  @inline(__always) static func pack(_ u: UnsafePointer<UInt8>, into chunk: UnsafeMutableRawPointer, bits: Int) {
    switch bits {
    case 8: chunk.copyMemory(from: u, byteCount: 32)
    case 4:
      for t in 0..<16 { chunk.storeBytes(of: u[t] | u[t + 16] << 4, toByteOffset: t, as: UInt8.self) }
    default:
      // Eight codes fill exactly `bits` bytes of the little-endian bit stream.
      for octet in 0..<4 {
        var word: UInt64 = 0
        for k in 0..<8 { word |= UInt64(u[8 * octet + k]) << UInt64(bits * k) }
        for byte in 0..<bits {
          chunk.storeBytes(of: UInt8(truncatingIfNeeded: word >> UInt64(8 * byte)), toByteOffset: octet * bits + byte, as: UInt8.self)
        }
      }
    }
  }
}
