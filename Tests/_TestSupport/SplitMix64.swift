/// Seeded generator for tests (Steele, Lea, Flood 2014). Every random number in a test comes from here.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  public var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// `n` floats uniform in [-1, 1), reproducible from `seed`.
public func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
  var rng = SplitMix64(seed: seed)
  return (0..<n).map { _ in Float.random(in: -1..<1, using: &rng) * scale }
}

/// `n` doubles uniform in [-1, 1), reproducible from `seed`.
public func randomDoubles(_ n: Int, seed: UInt64) -> [Double] {
  var rng = SplitMix64(seed: seed)
  return (0..<n).map { _ in Double.random(in: -1..<1, using: &rng) }
}

/// The lengths that hit every SIMD tail (ggml's list).
public let tailLengths = [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 127, 1023, 4099]
