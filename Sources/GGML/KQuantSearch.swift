/// The scale searches behind ggml's K-quant reference quantizers (ggml-quants.c: `make_qx_quants`,
/// `make_q3_quants`, `make_qkx2_quants`), rewritten in Swift with the same arithmetic in the same order so the
/// chosen codes match ggml's.
///
/// All three fit one sub-block `x[0..<n]` with integer levels `L` and return the scale; they differ in the model:
/// - `symmetricScale` (`make_qx_quants`, rmse_type 1): `x ≈ scale·(L − nmax)`, weights w = x², starting from
///   `iscale = −nmax/max` and trying 18 perturbed inverse scales `−(nmax + 0.1·k)/max`, k = ±1…±9, keeping the one
///   that maximizes (Σ w·x·l)²/Σ w·l², i.e. minimizes the weighted squared error at the optimal scale.
/// - `symmetricScaleQ3` (`make_q3_quants`, do_rmse): the same model with up to 5 passes of coordinate descent on
///   single levels.
/// - `affineScale` (`make_qkx2_quants`): `x ≈ scale·L − min` with L in 0…nmax, least-squares (scale, min) for
///   `nstep + 1` trial inverse scales `(rmin + rdelta·k + nmax)/(max − min)`, error measured as Σ w·|e| (MAD) or
///   Σ w·e².
enum KQuantSearch {
  /// ggml's `GROUP_MAX_EPS`: a sub-block whose largest |x| is below this is all zero.
  static let groupMaxEpsilon: Float = 1e-15

  /// `make_qx_quants(n, nmax, x, L, rmse_type: 1, qw: NULL)`. Writes `L[i]` in 0..<2·nmax; returns the scale.
  /// Without `qw`, ggml weighs each value by `w = x²`: the weighted search (`KQuantSearch+Weighted.swift`) with those
  /// weights, the same products in the same order (its `nearestIntBits` is `nearestInt` for the levels' range).
  static func symmetricScale(_ x: UnsafePointer<Float>, count n: Int, nmax: Int, levels L: UnsafeMutablePointer<Int8>) -> Float {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { w in
      for i in 0..<n { w[i] = x[i] * x[i] }
      return symmetricScale(x, count: n, nmax: nmax, weights: w.baseAddress!, levels: L)
    }
  }

  /// `make_q3_quants(n, nmax, x, L, do_rmse: true)`. Writes `L[i]` in 0..<2·nmax; returns the scale.
  static func symmetricScaleQ3(_ x: UnsafePointer<Float>, count n: Int, nmax: Int, levels L: UnsafeMutablePointer<Int8>) -> Float {
    let (amax, max) = BlockBytes.extreme(x, n)
    if amax < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    @inline(__always) func clamp(_ l: Int) -> Int { Swift.max(-nmax, Swift.min(nmax - 1, l)) }
    let iscale = -Float(nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      let l = clamp(BlockBytes.nearestInt(iscale * x[i]))
      L[i] = Int8(l)
      let w = x[i] * x[i]
      sumlx += w * x[i] * Float(l)
      suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
      var changed = 0
      for i in 0..<n {
        let w = x[i] * x[i]
        let li = Float(L[i])
        var slx = sumlx - w * x[i] * li
        if slx > 0 {
          var sl2 = suml2 - w * li * li
          let newL = clamp(BlockBytes.nearestInt(x[i] * sl2 / slx))
          if newL != Int(L[i]) {
            slx += w * x[i] * Float(newL)
            sl2 += w * Float(newL) * Float(newL)
            if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
              L[i] = Int8(newL)
              sumlx = slx
              suml2 = sl2
              changed += 1
            }
          }
        }
      }
      if changed == 0 { break }
    }
    for i in 0..<n { L[i] += Int8(nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
  }

  /// `make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad)`.
  /// Writes `L[i]` in 0...nmax; returns `(scale, theMin)` with `x ≈ scale·L − theMin`.
  static func affineScale(
    _ x: UnsafePointer<Float>, count n: Int, nmax: Int, weights: UnsafePointer<Float>,
    levels L: UnsafeMutablePointer<UInt8>, scratch Laux: UnsafeMutablePointer<UInt8>,
    rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool
  ) -> (scale: Float, theMin: Float) {
    var min = x[0]
    var max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
      if x[i] < min { min = x[i] }
      if x[i] > max { max = x[i] }
      sumW += weights[i]
      sumX += weights[i] * x[i]
    }
    if min > 0 { min = 0 }
    if max == min {
      for i in 0..<n { L[i] = 0 }
      return (0, -min)
    }
    let fmax = Float(nmax)
    @inline(__always) func level(_ iscale: Float, _ v: Float) -> Int {
      Swift.max(0, Swift.min(nmax, BlockBytes.nearestInt(iscale * (v - min))))
    }
    @inline(__always) func cost(_ d: Float) -> Float { useMAD ? abs(d) : d * d }
    var iscale = fmax / (max - min)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
      L[i] = UInt8(level(iscale, x[i]))
      bestError += weights[i] * cost(scale * Float(L[i]) + min - x[i])
    }
    if nstep < 1 { return (scale, -min) }
    for step in 0...nstep {
      iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
      var sumL: Float = 0
      var sumL2: Float = 0
      var sumXL: Float = 0
      for i in 0..<n {
        let l = level(iscale, x[i])
        Laux[i] = UInt8(l)
        let w = weights[i]
        sumL += w * Float(l)
        sumL2 += w * Float(l) * Float(l)
        sumXL += w * Float(l) * x[i]
      }
      let D = sumW * sumL2 - sumL * sumL
      if D > 0 {
        var thisScale = (sumW * sumXL - sumX * sumL) / D
        var thisMin = (sumL2 * sumX - sumL * sumXL) / D
        if thisMin > 0 {
          thisMin = 0
          thisScale = sumXL / sumL2
        }
        var error: Float = 0
        for i in 0..<n { error += weights[i] * cost(thisScale * Float(Laux[i]) + thisMin - x[i]) }
        if error < bestError {
          for i in 0..<n { L[i] = Laux[i] }
          bestError = error
          scale = thisScale
          min = thisMin
        }
      }
    }
    return (scale, -min)
  }
}
