import Sensitivity
import _TestSupport

/// A symmetric matrix `A` over several blocks, with block-diagonal parts and off-diagonal coupling between blocks,
/// as the exact Hessian of the quadratic loss `½ wᵀAw`. Tests compare estimators against its exact traces.
struct QuadraticForm {
  let blocks: [HutchinsonTrace.Block]
  let size: Int
  /// `A`, `[size, size]` row-major.
  let a: [Double]

  /// Entries uniform in [−1, 1) plus `diagonalShift` on the diagonal (so block traces are clearly non-zero),
  /// off-block entries scaled by `coupling`, symmetrized.
  init(sizes: [Int], seed: UInt64, diagonalShift: Double = 1.5, coupling: Double = 0.3, alternatingSigns: Bool = true) {
    blocks = sizes.enumerated().map { HutchinsonTrace.Block(name: "layer\($0.offset)", count: $0.element) }
    size = sizes.reduce(0, +)
    let owner = sizes.enumerated().flatMap { Array(repeating: $0.offset, count: $0.element) }
    var rng = SplitMix64(seed: seed)
    var a = [Double](repeating: 0, count: size * size)
    for i in 0..<size {
      for j in i..<size {
        var x = Double.random(in: -1..<1, using: &rng)
        if owner[i] != owner[j] { x *= coupling }
        if i == j { x += diagonalShift * (owner[i] % 2 == 0 || !alternatingSigns ? 1 : -1) }
        a[i * size + j] = x
        a[j * size + i] = x
      }
    }
    self.a = a
  }

  var offsets: [Int] { blocks.reduce(into: [0]) { $0.append($0.last! + $1.count) } }

  /// `tr(A_ii)` per block.
  var exactTraces: [Double] {
    let o = offsets
    return blocks.indices.map { b in (o[b]..<o[b + 1]).reduce(0.0) { $0 + a[$1 * size + $1] } }
  }

  /// Variance of one probe's `vᵢᵀ(Av)ᵢ`: `4 Σ_{j<k in i} A_jk² + Σ_{j in i, k not in i} A_jk²`.
  var probeVariances: [Double] {
    let o = offsets
    return blocks.indices.map { b in
      var v = 0.0
      for j in o[b]..<o[b + 1] {
        for k in 0..<size where k != j {
          let inside = k >= o[b] && k < o[b + 1]
          v += inside ? 2 * a[j * size + k] * a[j * size + k] : a[j * size + k] * a[j * size + k]
        }
      }
      return v
    }
  }

  /// `A · v` for blocked `v`, Double accumulation, rounded to Float.
  func product(_ v: [[Float]]) -> [[Float]] {
    let flat = v.flatMap { $0 }
    var out = [Float](repeating: 0, count: size)
    for i in 0..<size {
      var sum = 0.0
      for j in 0..<size { sum += a[i * size + j] * Double(flat[j]) }
      out[i] = Float(sum)
    }
    let o = offsets
    return blocks.indices.map { Array(out[o[$0]..<o[$0 + 1]]) }
  }

  /// `A` restricted to block `b`'s diagonal block, applied to `x`.
  func blockProduct(_ b: Int, _ x: [Float]) -> [Float] {
    let o = offsets
    return (o[b]..<o[b + 1]).map { i in
      var sum = 0.0
      for (t, j) in (o[b]..<o[b + 1]).enumerated() { sum += a[i * size + j] * Double(x[t]) }
      return Float(sum)
    }
  }
}
