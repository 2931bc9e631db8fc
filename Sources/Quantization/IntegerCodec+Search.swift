import GGML

/// The MSE clip search of `IntegerCodec.Clip.mseSearch`: which range ratio to quantize a group with.
///
/// For ratios r_k = 1 − 0.5·k/steps, k = 0 ..< steps, the error of the group quantized at r_k is
/// `E_k = Σ_j (x_j − x̂_j(r_k))²`, accumulated in Float from j = 0 upwards exactly as `quantizeGroup` does; the
/// search keeps the first k with the least E_k. `searchRatioReference` gets each E_k from `quantizeGroup` (which
/// also writes the codes); `searchRatio` computes the same E_k without writing codes, all ratios at once: lane k of
/// a `SIMD16<Float>` holds ratio k, and each lane adds its terms in the same order with the same Float operations
/// (`x·(1/d)` rounded half away from zero, clamped, `x − q·d`, squared), so its E_k are bit-identical to the
/// reference's and the same ratio wins. Integer clamping in the reference equals Float clamping here because the
/// rounded values are whole numbers far below 2²⁴.
extension IntegerCodec {
  /// The ratio r_k the search chooses for `n` values at `x`: `quantizeGroup` once per ratio, in order.
  /// - Parameter scratch: `groupBytes(length: n, …)` bytes to quantize into.
  static func searchRatioReference(
    _ x: UnsafePointer<Float>, _ n: Int, scratch: UnsafeMutableRawPointer, bits: Int, symmetric: Bool, steps: Int
  ) -> Float {
    var best = (error: Float.infinity, ratio: Float(1))
    for k in 0..<max(1, steps) {
      let ratio = searchRatio(k, steps: steps)
      let e = quantizeGroup(x, n, scratch, bits: bits, symmetric: symmetric, ratio: ratio, threshold: .infinity)
      if e < best.error { best = (e, ratio) }
    }
    return best.ratio
  }

  /// The same choice as `searchRatioReference`, from the lane errors of `SearchPlan` (no array per group).
  static func searchRatio(_ x: UnsafePointer<Float>, _ n: Int, bits: Int, symmetric: Bool, steps: Int) -> Float {
    SearchPlan(bits: bits, symmetric: symmetric, steps: steps).ratio(x, n)
  }

  /// Ratio k of a search with `steps` steps: `1 − 0.5·k/steps`.
  @inline(__always) static func searchRatio(_ k: Int, steps: Int) -> Float {
    1 - 0.5 * Float(k) / Float(max(1, steps))
  }

  /// `E_k` for every ratio k of the search (see the extension's documentation).
  static func searchErrors(_ x: UnsafePointer<Float>, _ n: Int, bits: Int, symmetric: Bool, steps: Int) -> [Float] {
    let plan = SearchPlan(bits: bits, symmetric: symmetric, steps: steps)
    var errors = [Float](repeating: 0, count: plan.count)
    plan.forEachError(x, n) { k, e in errors[k] = e }
    return errors
  }
}

/// One MSE clip search's fixed part: the ratios in lanes, 20 per pass over a group (lanes 0-15 in a `SIMD16` and
/// 16-19 in a `SIMD4`, so the default 20 steps take one pass with no idle 512-bit half; a second `SIMD16` cost 40%
/// more for the same pass). Made once per row, not per group: per group only the steps, their inverses and the
/// clamp bounds are computed, lane-wise (before, one scalar f16 rounding and two divisions per ratio per group
/// took longer than the pass over a 32- or 64-value group itself).
struct SearchPlan {
  /// Ratios `first ..< first + 20` of one pass; lanes past the last ratio repeat it.
  struct Pass {
    var first: Int
    var a: SIMD16<Float>
    var b: SIMD4<Float>
  }

  let bits: Int, symmetric: Bool, count: Int
  let passes: [Pass]

  init(bits: Int, symmetric: Bool, steps: Int) {
    let count = max(1, steps)
    (self.bits, self.symmetric, self.count) = (bits, symmetric, count)
    passes = stride(from: 0, to: count, by: 20).map { first in
      var pass = Pass(first: first, a: SIMD16(), b: SIMD4())
      for lane in 0..<16 { pass.a[lane] = IntegerCodec.searchRatio(min(first + lane, count - 1), steps: steps) }
      for lane in 0..<4 { pass.b[lane] = IntegerCodec.searchRatio(min(first + 16 + lane, count - 1), steps: steps) }
      return pass
    }
  }

  /// Calls `body(k, E_k)` for every ratio k in order.
  @inline(__always) func forEachError(_ x: UnsafePointer<Float>, _ n: Int, _ body: (Int, Float) -> Void) {
    // The ratio-independent part of the group: the largest |x| and its value (symmetric), or min and max.
    var amax: Float = 0, m: Float = 0, lo: Float = 0, hi: Float = 0
    if symmetric {
      (amax, m) = BlockBytes.extreme(x, n)
    } else {
      (lo, hi) = Self.range(x, n)
    }
    for pass in passes {
      let a = SearchLanes(ratio: pass.a, bits: bits, amax: amax, m: m, lo: lo, hi: hi, symmetric: symmetric)
      let b = SearchLanes(ratio: pass.b, bits: bits, amax: amax, m: m, lo: lo, hi: hi, symmetric: symmetric)
      var (sumA, sumB) = (SIMD16<Float>(), SIMD4<Float>())
      for j in 0..<n {
        sumA += a.squaredError(x[j])
        sumB += b.squaredError(x[j])
      }
      for lane in 0..<16 where pass.first + lane < count { body(pass.first + lane, sumA[lane]) }
      for lane in 0..<4 where pass.first + 16 + lane < count { body(pass.first + 16 + lane, sumB[lane]) }
    }
  }

  /// The first ratio with the least error (ratio 1 when every error is NaN, as the reference's `<` keeps it).
  @inline(__always) func ratio(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var best = (error: Float.infinity, k: -1)
    forEachError(x, n) { k, e in
      if e < best.error { best = (e, k) }
    }
    return best.k < 0 ? 1 : IntegerCodec.searchRatio(best.k, steps: count)
  }

  /// min(x, 0) and max(x, 0) over the group: 16 lanes, then the tail (exact: min and max do not round).
  @inline(__always) static func range(_ x: UnsafePointer<Float>, _ n: Int) -> (lo: Float, hi: Float) {
    var (low, high) = (SIMD16<Float>(), SIMD16<Float>())
    var j = 0
    while j + 16 <= n {
      let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
      for l in 0..<16 {
        low[l] = v[l] < low[l] ? v[l] : low[l]
        high[l] = v[l] > high[l] ? v[l] : high[l]
      }
      j += 16
    }
    var (lo, hi): (Float, Float) = (0, 0)
    for l in 0..<16 {
      lo = low[l] < lo ? low[l] : lo
      hi = high[l] > hi ? high[l] : hi
    }
    while j < n {
      lo = min(lo, x[j])
      hi = max(hi, x[j])
      j += 1
    }
    return (lo, hi)
  }
}

/// Per lane, for the ratios in `ratio`: step d (or s), its inverse and the clamp bounds of the code. Lane-wise
/// the same Float operations as the scalar code of `quantizeGroup` (products, IEEE divisions, f16 rounding to
/// nearest even, `rounded()` half away from zero), so every lane equals the reference's value for its ratio.
struct SearchLanes<V: SIMD> where V.Scalar == Float {
  var d = V(), id = V(), low = V(), high = V()

  /// Every condition is a loop of one lane-wise select between two vectors: so the compiler makes each a vector
  /// compare and blend. Through `SIMDMask`, or with several statements or a scalar operand in one loop, it kept
  /// per-lane code through memory, which cost more than a group's pass itself.
  @inline(__always) init(ratio: V, bits: Int, amax: Float, m: Float, lo: Float, hi: Float, symmetric: Bool) {
    let zero = V(repeating: 0)
    if symmetric {
      // c = amax·r, d = f16(∓c/Q) (the sign makes m map to −Q), id = 1/d or 0.
      let Q = 1 << (bits - 1)
      let c = amax * ratio
      d = Self.roundedToF16((m < 0 ? c : -c) / Float(Q))
      id = 1 / d
      for l in 0..<V.scalarCount { id[l] = d[l] != zero[l] ? id[l] : zero[l] }
      low = V(repeating: Float(-Q))
      high = V(repeating: Float(Q - 1))
    } else {
      // s = f16((hi·r − lo·r)/top); z = clamp(round(−(lo·r)/s), 0, top) when s > 0, else 0.
      let top = V(repeating: Float((1 << bits) - 1))
      let loR = lo * ratio
      let s = Self.roundedToF16((hi * ratio - loR) / top)
      var z = (-loR / s).rounded(.toNearestOrAwayFromZero)
      for l in 0..<V.scalarCount { z[l] = z[l] > zero[l] ? z[l] : zero[l] }
      for l in 0..<V.scalarCount { z[l] = z[l] < top[l] ? z[l] : top[l] }
      for l in 0..<V.scalarCount { z[l] = s[l] > zero[l] ? z[l] : zero[l] }
      d = s
      id = 1 / s
      for l in 0..<V.scalarCount { id[l] = s[l] > zero[l] ? id[l] : zero[l] }
      (low, high) = (zero - z, top - z)  // u − z, with u clamped to [0, top]
    }
  }

  /// Each lane rounded to the nearest f16 (ties to even) and back: `BlockBytes.roundToF16` lane-wise, which the
  /// compiler turns into `vcvtps2ph`/`vcvtph2ps` where the CPU has F16C.
  @inline(__always) static func roundedToF16(_ v: V) -> V {
    var r = v
    for l in 0..<V.scalarCount { r[l] = Float(Float16(v[l])) }
    return r
  }

  /// `(x − q·d)²` per lane with `q = clamp(round(x·id), low, high)`. Symmetric: q = clamp(round(x/d), −Q, Q−1).
  /// Asymmetric: u − z = clamp(round(x/s) + z, 0, top) − z, and round(x/s) + z − z is exact, so clamping
  /// round(x/s) to [−z, top − z] gives the same number. The clamp is a lane loop of comparisons: `pointwiseMin`/`Max`
  /// and `replacing(with:where:)` compiled to per-lane code through memory (25× slower here), this to vector blends.
  @inline(__always) func squaredError(_ x: Float) -> V {
    let v = V(repeating: x)
    var q = (v * id).rounded(.toNearestOrAwayFromZero)
    for l in 0..<V.scalarCount {
      q[l] = q[l] < low[l] ? low[l] : q[l]
      q[l] = q[l] > high[l] ? high[l] : q[l]
    }
    let e = v - q * d
    return e * e
  }
}
