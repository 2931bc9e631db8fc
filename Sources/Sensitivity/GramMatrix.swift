import TensorCore

/// The input Gram matrix `G = XᵀX/n` of one linear layer, from `n` captured input rows `X` `[n, in]`.
///
/// `G` is the layer-local Hessian of the output error: for a weight perturbation `ΔW` `[out, in]` the outputs move
/// by `X ΔWᵀ`, and `‖X ΔWᵀ‖²_F / n = tr(ΔW G ΔWᵀ)`, the quantity GPTQ and OBQ minimize (their `H = 2XᵀX` up to the
/// factor `2/n`). `tr(G) = ‖X‖²_F/n` is the input trace stored as `/hessian/input_trace`.
///
/// `G` is held as whichever factor is smaller: with fewer rows than columns (`n < in`, e.g. 512 calibration tokens
/// for SmolLM2's widths 576 and 1536) the inputs `X` themselves, and `outputError` is `‖X ΔWᵀ‖²_F / n` (one sgemm of
/// `n · in · out` multiply-adds, against `in² · out` for `ΔW G` plus `n · in²` to form `G`); otherwise `G`, formed
/// with OpenBLAS `sgemm` (Float accumulation), and `outputError` is `Σ (ΔW G) ⊙ ΔW`. Either way the final sum is in
/// Double. `reference(inputs:rows:columns:)` and `outputErrorReference` are the Double-accumulating twins.
/// Reference: Frantar et al. (2022), GPTQ; Frantar & Alistarh (2022), OBQ.
public struct GramMatrix: Sendable {
  /// `in`, the layer's input width.
  public let dimension: Int
  /// `n`, the number of input rows it was formed from.
  public let sampleCount: Int
  /// `G` as stored: `X` `[n, in]` when `n < in`, else `G` `[in, in]` (see the type's documentation).
  let storage: Storage

  enum Storage {
    case inputs([Float])
    case gram([Float])
  }

  /// `G`, `[in, in]` row-major, symmetric; formed on each use when the inputs are held.
  /// - Complexity: O(n · in²) when the inputs are held, else O(1).
  public var values: [Float] {
    switch storage {
    case .gram(let g): return g
    case .inputs(let x): return Self.form(x, rows: sampleCount, columns: dimension)
    }
  }

  /// Holds `G = XᵀX/n` (as `X` when `n < in`, else formed: see the type's documentation).
  /// - Parameters:
  ///   - inputs: `X`, `[rows, columns]` row-major: one captured input vector per row.
  ///   - rows: `n ≥ 1`.
  ///   - columns: `in ≥ 1`.
  /// - Throws: `.invalidArgument` for empty or mis-sized inputs, `.nonFinite` for a NaN or infinite input.
  /// - Complexity: O(n · in²) when `n ≥ in`, else O(n · in).
  public init(inputs: [Float], rows: Int, columns: Int) throws(SensitivityError) {
    try GramMatrix.check(inputs, rows: rows, columns: columns)
    dimension = columns
    sampleCount = rows
    storage = rows < columns ? .inputs(inputs) : .gram(Self.form(inputs, rows: rows, columns: columns))
  }

  /// `G = XᵀX/n` by sgemm.
  static func form(_ inputs: [Float], rows: Int, columns: Int) -> [Float] {
    var g = [Float](repeating: 0, count: columns * columns)
    inputs.withUnsafeBufferPointer { x in
      g.withUnsafeMutableBufferPointer { c in
        // G[in,in] = (1/n) · Xᵀ[in,n] · X[n,in]; X is stored [n,in], so A is X transposed.
        BLAS.sgemm(
          transposeA: true, m: columns, n: columns, k: rows, alpha: 1 / Float(rows),
          a: x.baseAddress!, b: x.baseAddress!, c: c.baseAddress!)
      }
    }
    return g
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

  /// `diag(XᵀX)/n`: each input column's mean square `Σ_r x[r,j]²/n`, in Double, straight from the inputs `[rows,
  /// columns]`. This is llama.cpp's importance matrix for the layer (`llama-imatrix` accumulates `Σ x²` and a token
  /// count per weight tensor; `llama-quantize` divides them), and its sum is `inputTrace`.
  public static func columnSquareMeans(inputs: [Float], rows: Int, columns: Int) -> [Double] {
    var sums = [Double](repeating: 0, count: columns)
    guard columns > 0, inputs.count >= rows * columns else { return sums }
    for r in 0..<rows {
      for j in 0..<columns {
        let x = Double(inputs[r * columns + j])
        sums[j] += x * x
      }
    }
    let n = Double(max(rows, 1))
    return sums.map { $0 / n }
  }

  /// Output error `tr(ΔW G ΔWᵀ) = ‖X ΔWᵀ‖²_F / n` of a weight change `ΔW` `[rows, in]`.
  /// - Throws: `.invalidArgument` when `delta.count` is not `rows · dimension`.
  /// - Complexity: one sgemm, O(rows · in · min(n, in)).
  public func outputError(delta: [Float], rows: Int) throws(SensitivityError) -> Double {
    try checkDelta(delta, rows: rows)
    if rows == 0 { return 0 }
    switch storage {
    case .inputs(let x):
      var y = [Float](repeating: 0, count: sampleCount * rows)
      x.withUnsafeBufferPointer { x in
        delta.withUnsafeBufferPointer { d in
          y.withUnsafeMutableBufferPointer { c in
            // Y[n,rows] = X[n,in] · ΔWᵀ[in,rows]; ΔW is stored [rows,in], so B is ΔW transposed.
            BLAS.sgemm(
              transposeB: true, m: sampleCount, n: rows, k: dimension, a: x.baseAddress!, b: d.baseAddress!,
              c: c.baseAddress!)
          }
        }
      }
      // ‖Y‖²_F / n
      var sum = 0.0
      for v in y { sum += Double(v) * Double(v) }
      return sum / Double(sampleCount)
    case .gram(let g):
      var p = [Float](repeating: 0, count: rows * dimension)
      delta.withUnsafeBufferPointer { d in
        g.withUnsafeBufferPointer { g in
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
