import TensorCore

/// A seeded random stream keyed by `(seed, domain, index)`: SplitMix64 (Steele, Lea, Flood 2014) started from a
/// state derived from the three keys.
///
/// A measurement run draws each random object (Hutchinson probe `k`, the power-iteration start for layer `i`, the
/// audit sample) from its own stream, so that any one of them can be regenerated alone: a resumed run that
/// continues at probe `k` draws exactly the probe an uninterrupted run would have drawn.
///
/// The starting state is `mix(mix(seed) ^ domain.rawValue·φ) ^ index·φ'` with SplitMix64's output function `mix`
/// and two odd constants; distinct keys give unrelated streams (SplitMix64 passes BigCrush from any start).
public struct ProbeStream: RandomNumberGenerator, Sendable {
  /// What the stream is used for; keeps the streams of different stages apart for the same index.
  public enum Domain: UInt64, Sendable, CaseIterable {
    /// Hutchinson probe vectors (index: probe number).
    case hutchinson = 1
    /// Power-iteration start vectors (index: layer number).
    case powerIteration = 2
    /// The choice of (layer, candidate) pairs to audit (index 0).
    case audit = 3
  }

  /// SplitMix64's state.
  public private(set) var state: UInt64

  /// The stream for `(seed, domain, index)`.
  public init(seed: UInt64, domain: Domain, index: Int) {
    let a = ProbeStream.mix(seed) ^ (domain.rawValue &* 0x9E37_79B9_7F4A_7C15)
    state = ProbeStream.mix(a) ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03)
  }

  /// The next 64 random bits (SplitMix64).
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return ProbeStream.mix(state)
  }

  /// Fills `values` with Rademacher signs ±1, one bit per value (bit set: −1), 64 values per draw, in order.
  public mutating func fillRademacher(_ values: inout [Float]) {
    var i = 0
    while i < values.count {
      var bits = next()
      let end = min(i + 64, values.count)
      while i < end {
        values[i] = (bits & 1) == 0 ? 1 : -1
        bits >>= 1
        i += 1
      }
    }
  }

  /// The same signs as `fillRademacher(_:)` called after `firstWord` draws, without advancing the stream: SplitMix64
  /// is counter-based (draw w is `mix(state + (w+1)·γ)`), so the words are formed independently, 64 values each,
  /// in parallel chunks, and the bit pattern of ±1 is written directly (sign bit = the drawn bit).
  public func fillRademacher(_ values: UnsafeMutableBufferPointer<Float>, firstWord: Int) {
    let words = (values.count + 63) / 64
    let (base, n) = (state, values.count)
    guard let out = values.baseAddress else { return }
    let raw = UnsafeMutableRawPointer(out)
    // lane j of a 16-value step takes bit j of its 16 bits (`vpsrlvd`), moved to the sign of 1.0
    let shifts = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    Parallel.forEachChunk(words, costPerItem: 64) { range in
      for w in range {
        var bits = ProbeStream.mix(base &+ UInt64(truncatingIfNeeded: firstWord + w + 1) &* 0x9E37_79B9_7F4A_7C15)
        if 64 * w + 64 <= n {
          for step in 0..<4 {
            let lanes = (SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: bits >> (16 * step))) &>> shifts) & 1
            raw.storeBytes(of: lanes &<< 31 | 0x3F80_0000, toByteOffset: 4 * (64 * w + 16 * step), as: SIMD16<UInt32>.self)
          }
          continue
        }
        for i in 64 * w..<n {
          out[i] = Float(bitPattern: 0x3F80_0000 | UInt32(truncatingIfNeeded: bits & 1) << 31)
          bits >>= 1
        }
      }
    }
  }

  /// Σ vᵢ·xᵢ in Double for the signs v that `fillRademacher(_:firstWord:)` would write over `x.count` values, without
  /// writing them: a sign bit of the draw flips the sign of the widened value. Summed over fixed chunks of 2¹⁶
  /// values (8 interleaved partial sums each), chunk sums added in order, so the bits do not depend on the worker
  /// count; equal to `HutchinsonTrace.accumulate` of the written signs with `x`.
  public func rademacherDot(_ x: UnsafeBufferPointer<Float>, firstWord: Int) -> Double {
    let n = x.count, size = 1 << 16
    let chunks = (n + size - 1) / size
    guard let base = x.baseAddress, chunks > 0 else { return 0 }
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: chunks)
    defer { partials.deallocate() }
    nonisolated(unsafe) let out = partials  // each chunk writes its own slot
    let state = self.state
    let shifts = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
    Parallel.forEachChunk(chunks, costPerItem: size) { range in
      for c in range {
        let (start, end) = (c * size, min(c * size + size, n))
        var lanes = SIMD8<Double>()
        var i = start
        // whole draws: 64 values, 8 at a time; lane j of step s takes bit 8s + j
        while i + 64 <= end {
          let bits = ProbeStream.mix(state &+ UInt64(truncatingIfNeeded: firstWord + i / 64 + 1) &* 0x9E37_79B9_7F4A_7C15)
          for step in 0..<8 {
            let signs = ((SIMD8<UInt64>(repeating: bits >> UInt64(8 * step)) &>> shifts) & 1) &<< 63
            var p = SIMD8<Double>()
            for j in 0..<8 { p[j] = Double(bitPattern: Double(base[i + 8 * step + j]).bitPattern ^ signs[j]) }
            lanes += p
          }
          i += 64
        }
        // the last, partial draw: groups of 8 into the lanes, then one by one (the order of `accumulate`)
        var bits = i < end ? ProbeStream.mix(state &+ UInt64(truncatingIfNeeded: firstWord + i / 64 + 1) &* 0x9E37_79B9_7F4A_7C15) : 0
        while i + 8 <= end {
          var p = SIMD8<Double>()
          for j in 0..<8 { p[j] = Double(bitPattern: Double(base[i + j]).bitPattern ^ ((bits >> UInt64(j)) & 1) << 63) }
          lanes += p
          bits >>= 8
          i += 8
        }
        var sum = lanes.sum()
        while i < end {
          sum += Double(bitPattern: Double(base[i]).bitPattern ^ (bits & 1) << 63)
          bits >>= 1
          i += 1
        }
        out[c] = sum
      }
    }
    return (0..<chunks).reduce(0.0) { $0 + partials[$1] }
  }

  /// SplitMix64's output function (a bijection on 64-bit words).
  static func mix(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
