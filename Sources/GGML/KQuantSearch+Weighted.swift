/// The scale searches behind ggml's importance-matrix quantizers (ggml-quants.c: `make_qx_quants` with `qw`,
/// `make_qkx3_quants`, `make_qp_quants`), with the same float arithmetic in the same order as ggml so the chosen
/// levels match byte for byte (QuantizationTests' GGMLImportanceGoldenTests, against ggml itself).
///
/// The caller supplies the per-value weights w (ggml's importance paths use `w = qw·√(σ² + x²)`, or `qw` itself
/// for q6_K, or the sums of those over a sub-block when quantizing the sub-block scales):
/// - `symmetricScale(…, weights:)` (`make_qx_quants`, rmse_type 1, qw ≠ NULL): `x ≈ scale·(L − nmax)`, 19 trial
///   inverse scales `−(nmax + 0.1·k)/max`, k = 0, ±1…±9; keeps the one maximizing (Σ w·x·l)²/Σ w·l².
/// - `affineScaleQKX3` (`make_qkx3_quants`): `x ≈ scale·L − min`, L in 0…nmax, weighted least-squares (scale, min)
///   for each trial inverse scale `(rmin + rdelta·k + nmax)/(max − min)`, k = 0…nstep; keeps the least Σ w·e².
/// - `positiveScale` (`make_qp_quants`): x ≥ 0 (sub-block scales or mins), `x ≈ scale·L`, L in 0…nmax; 9 trial
///   inverse scales `(nmax + 0.1·k)/max`, k = 0, ±1…±4, by Σ w·e², then up to 5 passes of coordinate descent.
extension KQuantSearch {
  /// ggml's `nearest_int` bit for bit, for every input: the low 23 bits of `f + 1.5·2²³`, minus 2²². Equal to
  /// round-half-even for |f| ≤ 2²² − 1 (where `BlockBytes.nearestInt` agrees); outside it, ggml (built with
  /// NDEBUG, so without its assert) returns these wrapped bits, and `make_qp_quants`' descent step
  /// `x·Σwl²/Σwxl` can land there when Σwxl is tiny.
  @inline(__always) static func nearestIntBits(_ f: Float) -> Int {
    Int((f + 12_582_912).bitPattern & 0x7F_FFFF) - 0x40_0000
  }

  /// `make_qx_quants(n, nmax, x, L, rmse_type: 1, qw: weights)`. Writes `L[i]` in 0..<2·nmax; returns the scale.
  /// All-zero sub-blocks (max |x| < `GROUP_MAX_EPS`) get L = 0 and scale 0; all-zero weights give scale 0.
  static func symmetricScale(
    _ x: UnsafePointer<Float>, count n: Int, nmax: Int, weights w: UnsafePointer<Float>, levels L: UnsafeMutablePointer<Int8>
  ) -> Float {
    let (amax, max) = BlockBytes.extreme(x, n)
    if amax < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    let fmax = Float(nmax)
    @inline(__always) func level(_ iscale: Float, _ v: Float) -> Int {
      Swift.max(-nmax, Swift.min(nmax - 1, nearestIntBits(iscale * v)))
    }
    var iscale = -fmax / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      let l = level(iscale, x[i])
      L[i] = Int8(l + nmax)
      sumlx += w[i] * x[i] * Float(l)
      suml2 += w[i] * Float(l) * Float(l)
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
      iscale = -(fmax + 0.1 * Float(step)) / max
      sumlx = 0
      suml2 = 0
      for i in 0..<n {
        let l = level(iscale, x[i])
        sumlx += w[i] * x[i] * Float(l)
        suml2 += w[i] * Float(l) * Float(l)
      }
      if suml2 > 0 && sumlx * sumlx > best * suml2 {
        for i in 0..<n { L[i] = Int8(nmax + level(iscale, x[i])) }
        scale = sumlx / suml2
        best = scale * sumlx
      }
    }
    return scale
  }

  /// `make_qkx3_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad)` with non-NULL
  /// weights. Writes `L[i]` in 0...nmax; returns `(scale, theMin)` with `x ≈ scale·L − theMin`.
  ///
  /// With weights given, ggml's `make_qkx3_quants` is statement for statement `make_qkx2_quants` (`affineScale`)
  /// except for its early exit `max <= min` where qkx2 tests `max == min`; the two agree because after clamping
  /// `min` to ≤ 0, `max ≥ x[0] ≥ min` always holds. So this delegates rather than restating the search.
  static func affineScaleQKX3(
    _ x: UnsafePointer<Float>, count n: Int, nmax: Int, weights: UnsafePointer<Float>,
    levels L: UnsafeMutablePointer<UInt8>, scratch Laux: UnsafeMutablePointer<UInt8>,
    rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool
  ) -> (scale: Float, theMin: Float) {
    affineScale(x, count: n, nmax: nmax, weights: weights, levels: L, scratch: Laux,
      rmin: rmin, rdelta: rdelta, nstep: nstep, useMAD: useMAD)
  }

  /// `make_qp_quants(n, nmax, x, L, quant_weights: weights)`: quantizes the non-negative `x` (a super-block's
  /// sub-block scales or mins) as `scale·L`. Writes `L[i]` (ggml's `uint8_t`); returns the scale.
  ///
  /// Steps: `max = max(0, x)`; below `GROUP_MAX_EPS` all L = 0 and scale 0. Start at iscale = nmax/max and try
  /// `(nmax + 0.1·k)/max`, k = ±1…±4, keeping the least Σ w·(x − l/iscale)² with l = min(nmax, nearest(iscale·x))
  /// (no lower clamp); then levels at the best iscale, and up to 5 passes moving one level to
  /// `min(nmax, nearest(x·Σwl²/Σwxl))` (sums without that value) when it raises (Σwxl)²/Σwl². Returns Σwxl/Σwl².
  /// Levels are stored as UInt8 with ggml's wrap-around, and read back wrapped, where ggml reads `L[i]`.
  static func positiveScale(
    _ x: UnsafePointer<Float>, count n: Int, nmax: Int, weights w: UnsafePointer<Float>, levels L: UnsafeMutablePointer<UInt8>
  ) -> Float {
    var max: Float = 0
    for i in 0..<n { max = max > x[i] ? max : x[i] }  // ggml's MAX(max, x[i])
    if max < groupMaxEpsilon {
      for i in 0..<n { L[i] = 0 }
      return 0
    }
    let fmax = Float(nmax)
    var iscale = fmax / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestIntBits(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMSE: Float = 0
    for i in 0..<n {
      let diff = x[i] - scale * Float(L[i])
      bestMSE += w[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
      let iscaleStep = (0.1 * Float(step) + fmax) / max
      let scaleStep = 1 / iscaleStep
      var mse: Float = 0
      for i in 0..<n {
        let l = Swift.min(nmax, nearestIntBits(iscaleStep * x[i]))
        let diff = x[i] - scaleStep * Float(l)
        mse += w[i] * diff * diff
      }
      if mse < bestMSE {
        bestMSE = mse
        iscale = iscaleStep
      }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
      let l = Swift.min(nmax, nearestIntBits(iscale * x[i]))
      L[i] = UInt8(truncatingIfNeeded: l)
      sumlx += w[i] * x[i] * Float(l)
      suml2 += w[i] * Float(l) * Float(l)
    }
    for _ in 0..<5 {
      var changed = 0
      for i in 0..<n {
        let li = Float(L[i])
        var slx = sumlx - w[i] * x[i] * li
        var sl2 = suml2 - w[i] * li * li
        guard slx > 0 && sl2 > 0 else { continue }
        let newL = Swift.min(nmax, nearestIntBits(x[i] * sl2 / slx))
        if newL == Int(L[i]) { continue }
        slx += w[i] * x[i] * Float(newL)
        sl2 += w[i] * Float(newL) * Float(newL)
        if slx * slx * suml2 > sumlx * sumlx * sl2 {
          L[i] = UInt8(truncatingIfNeeded: newL)
          sumlx = slx
          suml2 = sl2
          changed += 1
        }
      }
      if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
  }
}
