import GGML

/// Uniform integer formats `intN[-gG][-asym]`, N in 2…8: one f16 scale (plus a u8 zero point when asymmetric) per
/// group of L weights along a row (L = G, or the whole row when per-channel).
///
/// Group layout: `[scale f16][zero u8, asymmetric only][codes: ⌈L/32⌉ chunks of 4N bytes]`, the last chunk
/// zero-padded. Inside a chunk of 32 codes u: N = 8 is one byte per code; N = 4 puts code j in the low nibble and
/// j+16 in the high nibble of byte j (ggml's q4_0 order, so the GEMV unpacks 32 values with two masks); any other N
/// is a little-endian bit stream, code j in bits [N·j, N·j + N).
///
/// Symmetric (Q = 2^(N−1)): c = clip threshold (amax under min-max); `d = −sign(m)·c/Q` with m the value of largest
/// |x|, so m maps to code −Q exactly (ggml's q4_0 trick, which uses the whole code range); `q = clamp(round(x/d),
/// −Q, Q−1)`, `u = q + Q`, `x̂ = (u − Q)·d`. Error for |x| ≤ c: ≤ |d|/2, except a value of the opposite sign near c,
/// clamped to Q−1: ≤ |d|. So `|x − x̂| ≤ |d| + max(0, |x| − c)`.
///
/// Asymmetric: [lo, hi] = [min(x, 0), max(x, 0)] (clipped by calibration), `s = (hi − lo)/(2^N − 1)`,
/// `z = clamp(round(−lo/s), 0, 2^N − 1)`, `u = clamp(round(x/s) + z, 0, 2^N − 1)`, `x̂ = (u − z)·s`. Zero is exact;
/// error ≤ s inside [lo, hi] (half a step plus up to half a step of grid shift from rounding z).
///
/// Scales are rounded to f16 *before* codes are chosen, so codes are optimal for the stored scale.
enum IntegerCodec {
  /// How a group's range is chosen (from `RangeCalibration`).
  enum Clip: Equatable {
    /// Min-max: the full range of the group.
    case none
    /// Clip |x| at this threshold (percentile and KL calibration give one threshold per tensor).
    case threshold(Float)
    /// Try range ratios 1, 1 − 0.5/steps, …, down to 0.5 + 0.5/steps; keep the one with the least squared error.
    case mseSearch(steps: Int)
  }

  /// Bytes of one group of `length` weights.
  static func groupBytes(length: Int, bits: Int, symmetric: Bool) -> Int {
    2 + (symmetric ? 0 : 1) + (length + 31) / 32 * 4 * bits
  }

  // MARK: - Code packing

  /// Byte offset and shift of code `j` inside a group's code area.
  @inline(__always) static func codePosition(_ j: Int, bits: Int) -> (byte: Int, shift: Int) {
    let chunk = (j / 32) * 4 * bits, k = j % 32
    switch bits {
    case 8: return (chunk + k, 0)
    case 4: return (chunk + k % 16, 4 * (k / 16))
    default: return (chunk + bits * k / 8, bits * k % 8)
    }
  }

  /// Reads code `j` (unsigned, 0..<2^bits).
  @inline(__always) static func loadCode(_ codes: UnsafeRawPointer, _ j: Int, bits: Int) -> Int {
    let (byte, shift) = codePosition(j, bits: bits)
    var word = Int(codes.load(fromByteOffset: byte, as: UInt8.self))
    if shift + bits > 8 { word |= Int(codes.load(fromByteOffset: byte + 1, as: UInt8.self)) << 8 }
    return (word >> shift) & ((1 << bits) - 1)
  }

  /// ORs code `u` into position `j` (the area must start zeroed).
  @inline(__always) static func storeCode(_ codes: UnsafeMutableRawPointer, _ j: Int, _ u: Int, bits: Int) {
    let (byte, shift) = codePosition(j, bits: bits)
    let word = u << shift
    codes.storeBytes(of: codes.load(fromByteOffset: byte, as: UInt8.self) | UInt8(word & 0xFF), toByteOffset: byte, as: UInt8.self)
    if shift + bits > 8 {
      codes.storeBytes(of: codes.load(fromByteOffset: byte + 1, as: UInt8.self) | UInt8(word >> 8), toByteOffset: byte + 1, as: UInt8.self)
    }
  }

  // MARK: - Quantize

  /// Quantizes one row of groups. `out.count` must be `(x.count / length) · groupBytes`.
  static func quantizeRow(
    _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer, bits: Int, group: Int?, symmetric: Bool,
    clip: Clip
  ) {
    let length = group ?? x.count
    guard length > 0, let xs = x.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length, bits: bits, symmetric: symmetric)
    precondition(x.count % length == 0 && out.count == x.count / length * size, "int\(bits): \(x.count) values into \(out.count) bytes")
    // The search's ratios in lanes, once per row (`IntegerCodec+Search.swift`).
    let plan: SearchPlan? = if case .mseSearch(let steps) = clip { SearchPlan(bits: bits, symmetric: symmetric, steps: steps) } else { nil }
    for g in 0..<(x.count / length) {
      let v = xs + g * length, y = o + g * size
      // `quantizeGroupFast` writes `quantizeGroup`'s bytes (`IntegerCodec+Pack.swift`).
      switch clip {
      case .none: quantizeGroupFast(v, length, y, bits: bits, symmetric: symmetric, ratio: 1, threshold: .infinity)
      case .threshold(let t): quantizeGroupFast(v, length, y, bits: bits, symmetric: symmetric, ratio: 1, threshold: t)
      case .mseSearch:
        // The error-only search, then one quantization at the ratio it chose (`IntegerCodec+Search.swift`).
        let ratio = plan!.ratio(v, length)
        quantizeGroupFast(v, length, y, bits: bits, symmetric: symmetric, ratio: ratio, threshold: .infinity)
      }
    }
  }

  /// Quantizes one group with range scaled by `ratio` and clipped at `threshold`; returns Σ (x − x̂)².
  static func quantizeGroup(
    _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, bits: Int, symmetric: Bool, ratio: Float,
    threshold: Float
  ) -> Float {
    let size = groupBytes(length: n, bits: bits, symmetric: symmetric)
    y.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    let codes = y + (symmetric ? 2 : 3)
    var error: Float = 0
    if symmetric {
      let Q = 1 << (bits - 1)
      var amax: Float = 0, m: Float = 0
      for j in 0..<n where abs(x[j]) > amax {
        amax = abs(x[j])
        m = x[j]
      }
      let d = storeSymmetricScale(amax: amax, extreme: m, y, bits: bits, ratio: ratio, threshold: threshold)
      let id: Float = d != 0 ? 1 / d : 0
      for j in 0..<n {
        let q = max(-Q, min(Q - 1, Int((x[j] * id).rounded())))
        storeCode(codes, j, q + Q, bits: bits)
        let e = x[j] - Float(q) * d
        error += e * e
      }
    } else {
      let top = (1 << bits) - 1
      let (s, z) = storeAsymmetricHeader(x, n, y, bits: bits, ratio: ratio, threshold: threshold)
      let id: Float = s > 0 ? 1 / s : 0
      for j in 0..<n {
        let u = max(0, min(top, Int((x[j] * id).rounded()) + z))
        storeCode(codes, j, u, bits: bits)
        let e = x[j] - Float(u - z) * s
        error += e * e
      }
    }
    return error
  }

  /// The symmetric scale d = f16(∓min(amax·ratio, threshold)/Q) of a group whose largest |x| is `amax`, first
  /// reached at the value `extreme` (the sign maps it to −Q), stored at `y`; returns d.
  static func storeSymmetricScale(
    amax: Float, extreme m: Float, _ y: UnsafeMutableRawPointer, bits: Int, ratio: Float, threshold: Float
  ) -> Float {
    let c = min(amax * ratio, threshold)
    let d = BlockBytes.roundToF16((m < 0 ? c : -c) / Float(1 << (bits - 1)))
    BlockBytes.storeF16(d, y, 0)
    return d
  }

  /// The asymmetric header of a group: the range [min(lo, 0), max(hi, 0)] scaled by `ratio` and clipped at
  /// ±`threshold`, scale s = f16((hi − lo)/(2^bits − 1)) and zero point z = clamp(round(−lo/s)), stored at `y`.
  static func storeAsymmetricHeader(
    _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutableRawPointer, bits: Int, ratio: Float, threshold: Float
  ) -> (scale: Float, zero: Int) {
    let top = (1 << bits) - 1
    var lo: Float = 0, hi: Float = 0
    for j in 0..<n {
      lo = min(lo, x[j])
      hi = max(hi, x[j])
    }
    lo = max(lo * ratio, -threshold)
    hi = min(hi * ratio, threshold)
    let s = BlockBytes.roundToF16((hi - lo) / Float(top))
    BlockBytes.storeF16(s, y, 0)
    let z = s > 0 ? max(0, min(top, Int((-lo / s).rounded()))) : 0
    y.storeBytes(of: UInt8(z), toByteOffset: 2, as: UInt8.self)
    return (s, z)
  }
}
