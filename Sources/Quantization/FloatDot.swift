/// Dot products of Float buffers. `reference` defines the answer; `simd` is tested against it.
enum FloatDot {
  /// Double accumulator, left to right. Slow and obviously right.
  static func reference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Double {
    var sum = 0.0
    for i in 0..<n { sum += Double(a[i]) * Double(b[i]) }
    return sum
  }

  /// 4 × SIMD8 accumulators, then a scalar tail (the layout of ggml's vec.cpp and STYLE §6). Differs from
  /// `reference` only by rounding in Float and reassociation: |error| ≤ γ_n·Σ|aᵢbᵢ| with γ_n ≈ (n/32 + 8)·2⁻²⁴.
  @inline(__always) static func simd(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
    typealias V = SIMD8<Float>
    let (ra, rb) = (UnsafeRawPointer(a), UnsafeRawPointer(b))
    @inline(__always) func load(_ p: UnsafeRawPointer, _ i: Int) -> V {
      p.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: V.self)
    }
    var (s0, s1, s2, s3) = (V(), V(), V(), V())
    var i = 0
    while i + 32 <= n {
      s0 += load(ra, i) * load(rb, i)  // `+= a * b`, not addProduct (STYLE §6)
      s1 += load(ra, i + 8) * load(rb, i + 8)
      s2 += load(ra, i + 16) * load(rb, i + 16)
      s3 += load(ra, i + 24) * load(rb, i + 24)
      i += 32
    }
    var sum = ((s0 + s1) + (s2 + s3)).sum()
    while i < n {
      sum += a[i] * b[i]
      i += 1
    }
    return sum
  }
}
