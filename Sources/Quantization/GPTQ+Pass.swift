import TensorCore

/// The column passes of `GPTQ`: the blocked one (Float, lazy batches, one GEMM per batch) and its plain Double twin.
///
/// Both keep the weights transposed in processing order, `w[k·rows + r]` = W[r, order[k]], so that a column is one
/// contiguous run of `rows` values: quantizing a column and adding a multiple of one column's error to another are
/// loops over rows that LLVM vectorizes. Codes are written as `codes[column·rows + r]` and values as
/// `values[r·columns + column]`, both in original column order.
extension GPTQ {
  /// The blocked pass: batches of `blockSize` columns; inside a batch each column's error updates the batch's later
  /// columns at once, and the columns after the batch receive the whole batch's errors in one GEMM,
  /// `W[:, i2…] −= E·U[i1..<i2, i2…]` (as `w[i2…] −= U[i1..<i2, i2…]ᵀ·E` in the transposed layout).
  static func passBlocked(
    _ weights: [Float], _ grid: inout GPTQGrid, order: [Int], u: [Float], blockSize: Int, actOrder: Bool,
    codes: inout [UInt8], values: inout [Float]
  ) {
    let (rows, n, L) = (grid.rows, grid.columns, grid.blockLength)
    let batch = min(blockSize, n)
    var w = [Float](repeating: 0, count: n * rows)
    for r in 0..<rows {
      for k in 0..<n { w[k * rows + r] = weights[r * n + order[k]] }
    }
    var errors = [Float](repeating: 0, count: batch * rows)
    var q = [Float](repeating: 0, count: rows)
    var blockValues = [Float](repeating: 0, count: rows * L)
    w.withUnsafeMutableBufferPointer { wb in
      errors.withUnsafeMutableBufferPointer { eb in
        u.withUnsafeBufferPointer { ub in
          codes.withUnsafeMutableBufferPointer { cb in
            let (W, E, U, C) = (wb.baseAddress!, eb.baseAddress!, ub.baseAddress!, cb.baseAddress!)
            for i1 in stride(from: 0, to: n, by: batch) {
              let i2 = min(i1 + batch, n)
              for k in i1..<i2 {
                let column = order[k]
                if !actOrder && column % L == 0 {
                  // The group's current values: columns inside the batch are up to date in W; later ones still
                  // lack this batch's errors so far, E[0..<k−i1], which the GEMM would add after the batch.
                  blockValues.withUnsafeMutableBufferPointer { vb in
                    let V = vb.baseAddress!
                    for c in 0..<L {
                      let kc = k + c, src = W + kc * rows
                      for r in 0..<rows { V[r * L + c] = src[r] }
                      if kc >= i2 {
                        for t in 0..<(k - i1) {
                          let h = U[(i1 + t) * n + kc], e = E + t * rows
                          for r in 0..<rows { V[r * L + c] -= h * e[r] }
                        }
                      }
                    }
                  }
                  blockValues.withUnsafeBufferPointer { grid.fixBlock(column / L, values: $0.baseAddress!) }
                }
                let x = W + k * rows
                q.withUnsafeMutableBufferPointer { grid.quantizeColumn(column, x, codes: C + column * rows, values: $0.baseAddress!) }
                let d = U[k * n + k]
                let e = E + (k - i1) * rows
                for r in 0..<rows {
                  e[r] = (x[r] - q[r]) / d
                  values[r * n + column] = q[r]
                }
                for c in (k + 1)..<i2 {
                  let h = U[k * n + c], y = W + c * rows
                  for r in 0..<rows { y[r] -= h * e[r] }
                }
              }
              if i2 < n {
                BLAS.sgemm(
                  transposeA: true, m: n - i2, n: rows, k: i2 - i1, alpha: -1, a: U + i1 * n + i2, lda: n, b: E, ldb: rows,
                  beta: 1, c: W + i2 * rows, ldc: rows)
              }
            }
          }
        }
      }
    }
  }

  /// The plain pass, in Double: each column's error updates every later column at once.
  static func passReference(
    _ weights: [Float], _ grid: inout GPTQGrid, order: [Int], u: [Double], actOrder: Bool, codes: inout [UInt8],
    values: inout [Float]
  ) {
    let (rows, n, L) = (grid.rows, grid.columns, grid.blockLength)
    var w = [Double](repeating: 0, count: n * rows)
    for r in 0..<rows {
      for k in 0..<n { w[k * rows + r] = Double(weights[r * n + order[k]]) }
    }
    var x = [Float](repeating: 0, count: rows), q = [Float](repeating: 0, count: rows)
    var e = [Double](repeating: 0, count: rows)
    var blockValues = [Float](repeating: 0, count: rows * L)
    for k in 0..<n {
      let column = order[k]
      if !actOrder && column % L == 0 {
        for c in 0..<L {
          for r in 0..<rows { blockValues[r * L + c] = Float(w[(k + c) * rows + r]) }
        }
        blockValues.withUnsafeBufferPointer { grid.fixBlock(column / L, values: $0.baseAddress!) }
      }
      for r in 0..<rows { x[r] = Float(w[k * rows + r]) }
      codes.withUnsafeMutableBufferPointer { cb in
        x.withUnsafeBufferPointer { xb in
          q.withUnsafeMutableBufferPointer {
            grid.quantizeColumn(column, xb.baseAddress!, codes: cb.baseAddress! + column * rows, values: $0.baseAddress!)
          }
        }
      }
      let d = u[k * n + k]
      for r in 0..<rows {
        e[r] = (w[k * rows + r] - Double(q[r])) / d
        values[r * n + column] = q[r]
      }
      for c in (k + 1)..<n {
        let h = u[k * n + c]
        for r in 0..<rows { w[c * rows + r] -= h * e[r] }
      }
    }
  }
}
