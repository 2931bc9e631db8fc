import TensorCore

extension AWQ {
  /// ‖X·(W − Ŵ)ᵀ‖²_F / n: the output error of using Ŵ for W on inputs X [n, columns], per token (the units of the
  /// run file's `/error/output`, tr(ΔW·XᵀX·ΔWᵀ)/n). ΔW is formed first (no cancellation between two large
  /// products); the product runs through OpenBLAS in tiles of rows and the squares are summed in Double.
  /// - Precondition: `weights` and `approximation` hold `rows · columns` values, `inputs` `inputRows · columns`.
  public static func outputError(
    weights: [Float], approximation: [Float], rows: Int, columns: Int, inputs: [Float], inputRows n: Int
  ) -> Double {
    precondition(weights.count == rows * columns && approximation.count == rows * columns, "weights: [\(rows), \(columns)]")
    precondition(inputs.count == n * columns, "inputs: \(inputs.count) values for [\(n), \(columns)]")
    var delta = [Float](repeating: 0, count: rows * columns)
    for i in 0..<delta.count { delta[i] = weights[i] - approximation[i] }
    // Y = X·ΔWᵀ in tiles of output rows so the product stays small for wide layers
    let tile = Swift.max(1, Swift.min(rows, (1 << 20) / Swift.max(n, 1)))
    var y = [Float](repeating: 0, count: n * tile)
    var total = 0.0
    inputs.withUnsafeBufferPointer { x in
      delta.withUnsafeBufferPointer { d in
        y.withUnsafeMutableBufferPointer { y in
          var r0 = 0
          while r0 < rows {
            let m = Swift.min(tile, rows - r0)
            // Y[n, m] = X[n, columns] · ΔW[r0..<r0+m, columns]ᵀ
            BLAS.sgemm(
              transposeB: true, m: n, n: m, k: columns, a: x.baseAddress!, b: d.baseAddress! + r0 * columns,
              c: y.baseAddress!)
            for i in 0..<(n * m) { total += Double(y[i]) * Double(y[i]) }
            r0 += m
          }
        }
      }
    }
    return total / Double(Swift.max(n, 1))
  }

  /// The reference twin of `outputError`: three loops in Double.
  public static func outputErrorReference(
    weights: [Float], approximation: [Float], rows: Int, columns: Int, inputs: [Float], inputRows n: Int
  ) -> Double {
    var total = 0.0
    for t in 0..<n {
      for r in 0..<rows {
        var dot = 0.0
        for j in 0..<columns {
          dot += Double(inputs[t * columns + j]) * (Double(weights[r * columns + j]) - Double(approximation[r * columns + j]))
        }
        total += dot * dot
      }
    }
    return total / Double(Swift.max(n, 1))
  }
}
