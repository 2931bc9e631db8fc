/// Legacy quantizers with an importance vector: ggml-quants.c's `quantize_row_q4_0_impl`, `_q4_1_impl`,
/// `_q5_0_impl`, `_q5_1_impl` (what `quantize_q4_0` … run when `quant_weights != NULL`), byte for byte
/// (GGMLImportanceGoldenTests). `quantize_q8_0` ignores the weights, so q8_0 is `quantizeRow`'s.
///
/// σ² = Σx²/n over the whole row (n = `x.count`, accumulated left to right in Float), and for value j of block b
/// `w = qw[32·b + j]·√(σ² + x²)`. Per block of 32:
/// - q4_0 / q5_0: `make_qx_quants(32, nmax 8 | 16, x, L, 1, w)`: d = its scale (x̂ = d·(q − nmax)), q = L. Unlike
///   `quantize_row_q4_0_ref` (d = max/−8), d is the weighted least-squares scale of the best of 19 trial grids, and
///   an all-zero block (max |x| < 1e-15) stores q = 0 rather than 8.
/// - q4_1 / q5_1: `make_qkx3_quants(32, nmax 15 | 31, x, w, L, &min, Laux, −0.9, 0.05, 36, false)`: d = scale,
///   m = −the_min (x̂ = d·q + m), q = L.
extension GGMLLegacyCodec {
  /// Quantizes one row with importance `qw` (`qw.count == x.count`, a multiple of 32; `out.count` the row size).
  static func quantizeRowWeighted(
    _ type: GGMLType, _ x: UnsafeBufferPointer<Float>, importance qw: UnsafeBufferPointer<Float>,
    _ out: UnsafeMutableRawBufferPointer
  ) {
    precondition(x.count % 32 == 0 && qw.count == x.count && out.count == x.count / 32 * type.bytesPerBlock,
      "\(type.ggmlName): \(x.count) values, \(qw.count) importances into \(out.count) bytes")
    if type == .q8_0 { return quantizeRow(type, x, out) }
    guard let xs = x.baseAddress, let ws = qw.baseAddress, let o = out.baseAddress else { return }
    var sumX2: Float = 0
    for j in 0..<x.count { sumX2 += xs[j] * xs[j] }
    let sigma2 = sumX2 / Float(x.count)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weightBuffer in
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { levelBuffer in
        let weight = weightBuffer.baseAddress!, L = levelBuffer.baseAddress!, Laux = L + 32
        for b in 0..<(x.count / 32) {
          let v = xs + 32 * b, w = ws + 32 * b
          let y = o + b * type.bytesPerBlock
          for j in 0..<32 { weight[j] = w[j] * (sigma2 + v[j] * v[j]).squareRoot() }
          switch type {
          case .q4_0, .q5_0:
            let levels = UnsafeMutableRawPointer(L).bindMemory(to: Int8.self, capacity: 32)
            let d = KQuantSearch.symmetricScale(v, count: 32, nmax: type == .q4_0 ? 8 : 16, weights: weight, levels: levels)
            BlockBytes.storeF16(d, y, 0)
            storeCodes(y, bits: type == .q4_0 ? 4 : 5, at: 2) { Int(levels[$0]) }
          case .q4_1, .q5_1:
            let (d, theMin) = KQuantSearch.affineScaleQKX3(v, count: 32, nmax: type == .q4_1 ? 15 : 31, weights: weight,
              levels: L, scratch: Laux, rmin: -0.9, rdelta: 0.05, nstep: 36, useMAD: false)
            BlockBytes.storeF16(d, y, 0)
            BlockBytes.storeF16(-theMin, y, 2)
            storeCodes(y, bits: type == .q4_1 ? 4 : 5, at: 4) { Int(L[$0]) }
          default: preconditionFailure("\(type.ggmlName) is not a legacy type")
          }
        }
      }
    }
  }
}
