@_exported import TensorCore

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
