import TensorCore

/// The input Gram matrix `G = XᵀX/n` of one linear layer, from `n` captured input rows `X` `[n, in]`.
///
/// `G` is the layer-local Hessian of the output error: for a weight perturbation `ΔW` `[out, in]` the outputs move
/// by `X ΔWᵀ`, and `‖X ΔWᵀ‖²_F / n = tr(ΔW G ΔWᵀ)`, the quantity GPTQ and OBQ minimize (their `H = 2XᵀX` up to the
/// factor `2/n`). `tr(G) = ‖X‖²_F/n` is the input trace stored as `/hessian/input_trace`.
///
/// `init` forms `G` with OpenBLAS `sgemm` (Float accumulation); `reference(inputs:rows:columns:)` is the
/// Double-accumulating twin. Likewise `outputError` (sgemm for `P = ΔW G`, then `Σ P ⊙ ΔW` in Double) beside
/// `outputErrorReference`. Reference: Frantar et al. (2022), GPTQ; Frantar & Alistarh (2022), OBQ.
public struct GramMatrix: Sendable {
  /// `in`, the layer's input width.
  public let dimension: Int
  /// `n`, the number of input rows it was formed from.
  public let sampleCount: Int
  /// `G`, `[in, in]` row-major, symmetric.
  public let values: [Float]

  /// Forms `G = XᵀX/n`.
  /// - Parameters:
  ///   - inputs: `X`, `[rows, columns]` row-major: one captured input vector per row.
  ///   - rows: `n ≥ 1`.
  ///   - columns: `in ≥ 1`.
  /// - Throws: `.invalidArgument` for empty or mis-sized inputs, `.nonFinite` for a NaN or infinite input.
  /// - Complexity: O(n · in²).
  public init(inputs: [Float], rows: Int, columns: Int) throws(SensitivityError) {
    try GramMatrix.check(inputs, rows: rows, columns: columns)
    var g = [Float](repeating: 0, count: columns * columns)
    inputs.withUnsafeBufferPointer { x in
      g.withUnsafeMutableBufferPointer { c in
        // G[in,in] = (1/n) · Xᵀ[in,n] · X[n,in]; X is stored [n,in], so A is X transposed.
        BLAS.sgemm(
          transposeA: true, m: columns, n: columns, k: rows, alpha: 1 / Float(rows),
          a: x.baseAddress!, b: x.baseAddress!, c: c.baseAddress!)
      }
    }
    dimension = columns
    sampleCount = rows
    values = g
  }

  /// Reference `G = XᵀX/n`: three loops, Double accumulation, `[in, in]` row-major. Slow and obviously right.
  public static func reference(inputs: [Float], rows: Int, columns: Int) -> [Double] {
    var g = [Double](repeating: 0, count: columns * columns)
    for a in 0..<columns {
      for b in 0..<columns {
        var sum = 0.0
        for r in 0..<rows { sum += Double(inputs[r * columns + a]) * Double(inputs[r * columns + b]) }
        g[a * columns + b] = sum / Double(rows)
      }
    }
    return g
  }

  /// `tr(XᵀX)/n = Σ x²/n` in Double, straight from the inputs (more accurate than summing `G`'s Float diagonal).
  public static func inputTrace(inputs: [Float], rows: Int) -> Double {
    var sum = 0.0
    for x in inputs { sum += Double(x) * Double(x) }
    return sum / Double(max(rows, 1))
  }

  /// Output error `tr(ΔW G ΔWᵀ) = ‖X ΔWᵀ‖²_F / n` of a weight change `ΔW` `[rows, in]`.
  /// - Throws: `.invalidArgument` when `delta.count` is not `rows · dimension`.
  /// - Complexity: O(rows · in²): one sgemm.
  public func outputError(delta: [Float], rows: Int) throws(SensitivityError) -> Double {
    try checkDelta(delta, rows: rows)
    if rows == 0 { return 0 }
    var p = [Float](repeating: 0, count: rows * dimension)
    delta.withUnsafeBufferPointer { d in
      values.withUnsafeBufferPointer { g in
        p.withUnsafeMutableBufferPointer { c in
          // P[rows,in] = ΔW[rows,in] · G[in,in]
          BLAS.sgemm(m: rows, n: dimension, k: dimension, a: d.baseAddress!, b: g.baseAddress!, c: c.baseAddress!)
        }
      }
    }
    // tr(P ΔWᵀ) = Σ_{r,c} P[r,c] · ΔW[r,c]
    var sum = 0.0
    for j in p.indices { sum += Double(p[j]) * Double(delta[j]) }
    return sum
  }

  /// Reference output error: `Σ_r Σ_{a,b} ΔW[r,a] G[a,b] ΔW[r,b]` with `G` from `reference(...)`, in Double.
  public static func outputErrorReference(
    delta: [Float], rows: Int, inputs: [Float], inputRows: Int, columns: Int
  ) -> Double {
    let g = reference(inputs: inputs, rows: inputRows, columns: columns)
    var sum = 0.0
    for r in 0..<rows {
      for a in 0..<columns {
        var inner = 0.0
        for b in 0..<columns { inner += g[a * columns + b] * Double(delta[r * columns + b]) }
        sum += Double(delta[r * columns + a]) * inner
      }
    }
    return sum
  }

  private func checkDelta(_ delta: [Float], rows: Int) throws(SensitivityError) {
    if rows < 0 || delta.count != rows * dimension {
      throw SensitivityError(
        .invalidArgument, "ΔW has \(delta.count) values; \(rows) rows of \(dimension) need \(rows * dimension)")
    }
  }

  private static func check(_ inputs: [Float], rows: Int, columns: Int) throws(SensitivityError) {
    if rows < 1 || columns < 1 || inputs.count != rows * columns {
      throw SensitivityError(
        .invalidArgument, "inputs: \(inputs.count) values for \(rows) rows of \(columns) columns")
    }
    if let x = inputs.first(where: { !$0.isFinite }) {
      throw SensitivityError(.nonFinite, "captured layer input \(x)")
    }
  }
}
