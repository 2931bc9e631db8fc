/// Activations quantized to int8 in blocks of 32, the partner of packed weights in the integer GEMV (ggml pairs
/// q4_0 and q8_0 weights with q8_0 activations the same way).
///
/// Per block b: `d_b = amax_b/127` (kept as Float, not f16), `a_i = roundf(x_i·(1/d_b))` in −127…127,
/// `x_i ≈ d_b·a_i` with error ≤ d_b/2. `sums16[k]` is Σ a_i over values 16k…16k+15, used by formats with an offset
/// (x̂ = s·q + m needs m·Σ a). The count is padded to a multiple of 32 with zero codes.
public struct Q8Activations: Sendable, Equatable {
  /// Number of real values.
  public let count: Int
  /// ⌈count/32⌉·32 codes.
  public private(set) var codes: [Int8]
  /// One scale per 32 values.
  public private(set) var scales: [Float]
  /// Σ codes over each 16 values.
  public private(set) var sums16: [Int32]

  /// Quantizes `x`.
  public init(_ x: UnsafeBufferPointer<Float>) {
    count = x.count
    let blocks = (x.count + 31) / 32
    codes = [Int8](repeating: 0, count: 32 * blocks)
    scales = [Float](repeating: 0, count: blocks)
    sums16 = [Int32](repeating: 0, count: 2 * blocks)
    for b in 0..<blocks {
      let n = min(32, x.count - 32 * b)
      var amax: Float = 0
      for j in 0..<n { amax = max(amax, abs(x[32 * b + j])) }
      let d = amax / 127
      let id: Float = d != 0 ? 1 / d : 0
      scales[b] = d
      for j in 0..<n {
        let q = Int8(BlockBytes.roundAway(x[32 * b + j] * id))
        codes[32 * b + j] = q
        sums16[2 * b + j / 16] += Int32(q)
      }
    }
  }

  /// Quantizes an array.
  public init(_ x: [Float]) {
    self = x.withUnsafeBufferPointer { Q8Activations($0) }
  }
}
