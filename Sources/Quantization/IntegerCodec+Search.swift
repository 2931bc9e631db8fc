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

  /// The same choice as `searchRatioReference`, from `searchErrors`.
  static func searchRatio(_ x: UnsafePointer<Float>, _ n: Int, bits: Int, symmetric: Bool, steps: Int) -> Float {
    let errors = searchErrors(x, n, bits: bits, symmetric: symmetric, steps: steps)
    var best = (error: Float.infinity, ratio: Float(1))
    for k in errors.indices where errors[k] < best.error { best = (errors[k], searchRatio(k, steps: steps)) }
    return best.ratio
  }

  /// Ratio k of a search with `steps` steps: `1 − 0.5·k/steps`.
  @inline(__always) static func searchRatio(_ k: Int, steps: Int) -> Float {
    1 - 0.5 * Float(k) / Float(max(1, steps))
  }

  /// `E_k` for every ratio k of the search (see the extension's documentation), 20 ratios per pass over `x`: lanes
  /// 0-15 in a `SIMD16` and 16-19 in a `SIMD4`, so the default 20 steps take one pass with no idle 512-bit half
  /// (a second `SIMD16` cost 40% more for the same pass).
  static func searchErrors(_ x: UnsafePointer<Float>, _ n: Int, bits: Int, symmetric: Bool, steps: Int) -> [Float] {
    let count = max(1, steps)
    var errors = [Float](repeating: 0, count: count)
    // The ratio-independent part of the group: the largest |x| and its value (symmetric), or min and max.
    var amax: Float = 0, m: Float = 0, lo: Float = 0, hi: Float = 0
    if symmetric {
      (amax, m) = BlockBytes.extreme(x, n)
    } else {
      for j in 0..<n {
        lo = min(lo, x[j])
        hi = max(hi, x[j])
      }
    }
    for first in stride(from: 0, to: count, by: 20) {
      let a = SearchLanes<SIMD16<Float>>(first: first, count: count, steps: steps, bits: bits, amax: amax, m: m, lo: lo, hi: hi, symmetric: symmetric)
      let b = SearchLanes<SIMD4<Float>>(first: first + 16, count: count, steps: steps, bits: bits, amax: amax, m: m, lo: lo, hi: hi, symmetric: symmetric)
      var (sumA, sumB) = (SIMD16<Float>(), SIMD4<Float>())
      for j in 0..<n {
        sumA += a.squaredError(x[j])
        sumB += b.squaredError(x[j])
      }
      for lane in 0..<16 where first + lane < count { errors[first + lane] = sumA[lane] }
      for lane in 0..<4 where first + 16 + lane < count { errors[first + 16 + lane] = sumB[lane] }
    }
    return errors
  }
}

/// Per lane, for ratios `first ..< first + V.scalarCount` of the search: step d (or s), its inverse and the clamp
/// bounds of the code; lanes past the last ratio repeat it.
struct SearchLanes<V: SIMD> where V.Scalar == Float {
  var d = V(), id = V(), low = V(), high = V()

  @inline(__always) init(
    first: Int, count: Int, steps: Int, bits: Int, amax: Float, m: Float, lo: Float, hi: Float, symmetric: Bool
  ) {
    var ratio = V()
    for lane in 0..<V.scalarCount { ratio[lane] = IntegerCodec.searchRatio(min(first + lane, count - 1), steps: steps) }
    if symmetric {
      // The scalar steps of `quantizeGroup`, lane-wise: c = amax·r, d = f16(∓c/Q) (the sign makes m map to −Q).
      let Q = 1 << (bits - 1)
      let c = amax * ratio
      let signed = (m < 0 ? c : -c) / Float(Q)
      for lane in 0..<V.scalarCount {
        d[lane] = BlockBytes.roundToF16(signed[lane])
        id[lane] = d[lane] != 0 ? 1 / d[lane] : 0
      }
      low = V(repeating: Float(-Q))
      high = V(repeating: Float(Q - 1))
    } else {
      let top = (1 << bits) - 1
      for lane in 0..<V.scalarCount {
        let s = BlockBytes.roundToF16((hi * ratio[lane] - lo * ratio[lane]) / Float(top))
        let z = s > 0 ? max(0, min(top, Int((-(lo * ratio[lane]) / s).rounded()))) : 0
        (d[lane], id[lane]) = (s, s > 0 ? 1 / s : 0)
        (low[lane], high[lane]) = (Float(-z), Float(top - z))  // u − z, with u clamped to [0, top]
      }
    }
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
