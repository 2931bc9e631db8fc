import GGML

/// MLX's affine format (`affine<B>-g<G>`): B-bit unsigned codes with one scale and one bias per group of G values
/// along a row, `x̂ = q·s + b`, quantized exactly as mlx's `affine_quantize` does.
///
/// Quantizer (ml-explore/mlx `mlx/ops.cpp` `affine_quantize` and its CPU kernel `mlx/backend/cpu/quantized.cpp`
/// `quantize`, @846d1762; n = 2^B − 1, all arithmetic in Float, `rint` = round half to even):
/// ```
/// s = max((max − min) / n, 1e-7);  s = |min| > |max| ? s : −s      // the scale points away from the larger edge
/// edge = |min| > |max| ? min : max
/// q0 = rint(edge / s)
/// if q0 ≠ 0 { s = edge / q0; b = edge } else { b = 0 }             // the zero-edge adjustment: 0 lies on the grid
/// q = clamp(rint((x − b) / s), 0, n)
/// ```
/// Codes are computed with the Float `s` and `b`; the stored scale and bias are then cast to the model's dtype
/// (`static_cast<T>`). BitPlan stores them as **f16** (round to nearest even), as mlx does for an f16 model; mlx-lm
/// converts in the checkpoint's `torch_dtype` (`mlx_lm/convert.py`), so a bf16 model gets bf16 scales and biases:
/// the same bytes, rounded to 8 instead of 11 significant bits. Group sizes MLX accepts are 32, 64 and 128 and bits
/// 2, 3, 4, 5, 6 and 8 (`affine_quantize`'s checks; `Target.mlx` offers those); the codec takes any B in 2...8 and
/// any G that is a multiple of 32.
///
/// Row layout: `[codes: B·c/8 bytes][scales: c/G × f16][biases: c/G × f16]`, so `rowSizeInBytes = B·c/8 + 4·c/G`.
/// The codes are MLX's packed `uint32` words written little-endian: code i of the row occupies bits
/// `[i·B, (i+1)·B)` of the row's bit stream, least significant bit first (for B = 2, 4, 8 that is `32/B` codes per
/// word, code k of a word at shift `k·B`; for 3, 5, 6 bits codes straddle words, as mlx's `pack_and_quantize`
/// does). MLX keeps `weight [rows, c·B/32] uint32`, `scales [rows, c/G]` and `biases [rows, c/G]` as three
/// tensors; an exporter takes the three parts of each row from here. Dequantization: `Float(q)·s + b` with the
/// stored f16 `s` and `b` (mlx multiplies and adds in the scale dtype; this is the same product before that last
/// rounding).
///
/// Error: with s₀ = (max − min)/n, |edge| ≥ n·s₀/2 so |q0| ≥ n/2, and the adjusted step satisfies
/// |s|/s₀ ∈ [1 − 1/(2|q0|), 1 + 1/(2|q0|)]. Unclamped values are within |s|/2 < s₀ of the grid; the far end is
/// clamped by at most n·(s₀ − |s|) ≤ n·s₀/(2|q0|) < s₀. So before f16 rounding `|x − x̂| < s₀`; rounding s and b to f16
/// adds at most `2⁻¹¹·(n·|s| + |b|)`.
enum AffineCodec {
  /// Bytes of one row of `columns` values.
  static func rowBytes(columns: Int, bits: Int, group: Int) -> Int {
    columns * bits / 8 + 4 * (columns / group)
  }

  /// Scale and bias of one group, exactly as mlx computes them in Float (before the cast to the model's dtype).
  static func groupParameters(_ v: UnsafePointer<Float>, count: Int, bits: Int) -> (scale: Float, bias: Float) {
    let bins = Float((1 << bits) - 1)
    var wMin = Float.infinity, wMax = -Float.infinity
    for j in 0..<count {
      wMax = max(wMax, v[j])
      wMin = min(wMin, v[j])
    }
    let mask = abs(wMin) > abs(wMax)
    var scale = max((wMax - wMin) / bins, 1e-7 as Float)
    scale = mask ? scale : -scale
    let edge = mask ? wMin : wMax
    let q0 = (edge / scale).rounded(.toNearestOrEven)
    var bias: Float = 0
    if q0 != 0 {
      scale = edge / q0
      bias = edge
    }
    return (scale, bias)
  }

  /// The code of `x` for a group with `scale` and `bias`: `clamp(rint((x − b)/s), 0, n)`.
  @inline(__always) static func code(_ x: Float, scale: Float, bias: Float, bits: Int) -> UInt64 {
    let q = ((x - bias) / scale).rounded(.toNearestOrEven)
    return UInt64(min(max(q, 0), Float((1 << bits) - 1)))
  }

  /// Quantizes one row of `x.count` values into `out` (`rowBytes` bytes).
  static func quantizeRow(_ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableRawBufferPointer, bits: Int, group: Int) {
    let columns = x.count
    guard columns > 0, let xs = x.baseAddress, let o = out.baseAddress else { return }
    precondition(columns % group == 0 && out.count == rowBytes(columns: columns, bits: bits, group: group),
      "affine\(bits)-g\(group): \(columns) values into \(out.count) bytes")
    let groups = columns / group
    let codeBytes = columns * bits / 8
    o.initializeMemory(as: UInt8.self, repeating: 0, count: out.count)
    for g in 0..<groups {
      let v = xs + g * group
      let (scale, bias) = groupParameters(v, count: group, bits: bits)
      // Codes: every 8 values fill exactly `bits` bytes of the little-endian bit stream (a group starts on such a
      // boundary because G is a multiple of 32).
      for chunk in 0..<(group / 8) {
        var word: UInt64 = 0
        for k in 0..<8 { word |= code(v[8 * chunk + k], scale: scale, bias: bias, bits: bits) << UInt64(k * bits) }
        let at = (g * group + 8 * chunk) * bits / 8
        for byte in 0..<bits { o.storeBytes(of: UInt8(truncatingIfNeeded: word >> UInt64(8 * byte)), toByteOffset: at + byte, as: UInt8.self) }
      }
      BlockBytes.storeF16(scale, o, codeBytes + 2 * g)
      BlockBytes.storeF16(bias, o, codeBytes + 2 * groups + 2 * g)
    }
  }

  /// Reference: value i decoded on its own, one bit at a time from the row's bit stream.
  static func dequantizeRowReference(
    _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, bits: Int, group: Int
  ) {
    let columns = y.count
    guard columns > 0, let s = src.baseAddress else { return }
    precondition(columns % group == 0 && src.count == rowBytes(columns: columns, bits: bits, group: group),
      "affine\(bits)-g\(group): \(src.count) bytes for \(columns) values")
    let groups = columns / group
    let codeBytes = columns * bits / 8
    for i in 0..<columns {
      var q = 0
      for b in 0..<bits {
        let bit = i * bits + b
        let byte = s.load(fromByteOffset: bit / 8, as: UInt8.self)
        q |= Int((byte >> UInt8(bit % 8)) & 1) << b
      }
      let g = i / group
      y[i] = Float(q) * BlockBytes.f16(s, codeBytes + 2 * g) + BlockBytes.f16(s, codeBytes + 2 * groups + 2 * g)
    }
  }

  /// Chunk loop: 8 codes from `bits` bytes at a time, scale and bias read once per group (same product and sum as
  /// the reference, so bit-identical).
  static func dequantizeRowFast(_ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, bits: Int, group: Int) {
    let columns = y.count
    guard columns > 0, let s = src.baseAddress, let out = y.baseAddress else { return }
    precondition(columns % group == 0 && src.count == rowBytes(columns: columns, bits: bits, group: group),
      "affine\(bits)-g\(group): \(src.count) bytes for \(columns) values")
    let groups = columns / group
    let codeBytes = columns * bits / 8
    let mask = UInt64((1 << bits) - 1)
    for g in 0..<groups {
      let scale = BlockBytes.f16(s, codeBytes + 2 * g)
      let bias = BlockBytes.f16(s, codeBytes + 2 * groups + 2 * g)
      for chunk in 0..<(group / 8) {
        let at = (g * group + 8 * chunk) * bits / 8
        var word: UInt64 = 0
        for byte in 0..<bits { word |= UInt64(s.load(fromByteOffset: at + byte, as: UInt8.self)) << UInt64(8 * byte) }
        let o = out + g * group + 8 * chunk
        for k in 0..<8 { o[k] = Float((word >> UInt64(k * bits)) & mask) * scale + bias }
      }
    }
  }
}
