/// Recording probes: from a Hessian-vector product, or replayed from stored values when a run resumes.
extension HutchinsonTrace {
  /// Records probe number `probesDone`: computes `vᵢᵀ(Hv)ᵢ` per block in `Double` (a sum of `±(Hv)_j` in order)
  /// and, when kept, adds `v ⊙ Hv` to the diagonal sums.
  /// - Parameters:
  ///   - probe: the vector from `probe(probesDone)`.
  ///   - product: `H · probe`, blocked like `probe`.
  /// - Returns: the per-block values just recorded.
  /// - Throws: `.shapeMismatch` when `product` is not blocked like the layout, `.nonFinite` for a NaN or infinite
  ///   block value (nothing is recorded then).
  @discardableResult
  public mutating func record(probe: [[Float]], product: [[Float]]) throws(SensitivityError) -> [Double] {
    try checkBlocks(probe, "probe")
    try checkBlocks(product, "Hessian-vector product")
    var values = [Double](repeating: 0, count: blocks.count)
    for i in blocks.indices {
      var sum = 0.0
      let v = probe[i]
      let hv = product[i]
      for j in v.indices { sum += Double(v[j]) * Double(hv[j]) }
      values[i] = sum
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
      throw SensitivityError(.nonFinite, "probe \(probesDone): vᵀHv of block '\(blocks[i].name)' is \(values[i])")
    }
    if diagonalSum != nil {
      for i in blocks.indices {
        let v = probe[i]
        let hv = product[i]
        diagonalSum![i].withUnsafeMutableBufferPointer { d in
          for j in v.indices { d[j] += Double(v[j]) * Double(hv[j]) }
        }
      }
    }
    append(values)
    return values
  }

  /// Replays one stored probe's per-block values (a resumed run); the diagonal sums are restored separately.
  /// - Throws: `.shapeMismatch` for a count other than the number of blocks, `.nonFinite` for a NaN value.
  public mutating func replay(values: [Double]) throws(SensitivityError) {
    if values.count != blocks.count {
      throw SensitivityError(.shapeMismatch, "stored probe has \(values.count) values for \(blocks.count) blocks")
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
      throw SensitivityError(.nonFinite, "stored probe \(probesDone), block '\(blocks[i].name)' is \(values[i])")
    }
    append(values)
  }

  /// Restores the diagonal sums saved with the last recorded probe.
  /// - Throws: `.shapeMismatch` unless `sum` is blocked like the layout and the diagonal is kept.
  public mutating func restoreDiagonal(sum: [[Double]]) throws(SensitivityError) {
    guard diagonalSum != nil, sum.count == blocks.count,
      zip(sum, blocks).allSatisfy({ $0.count == $1.count })
    else { throw SensitivityError(.shapeMismatch, "stored Hessian diagonal does not fit the block layout") }
    diagonalSum = sum
  }

  /// Runs probes until the stopping rule is met, calling `hessianVectorProduct` once per probe.
  /// - Parameters:
  ///   - hessianVectorProduct: `v ↦ Hv`, blocked like the layout.
  ///   - afterProbe: called with the probe index and its values after each probe (to store them).
  /// - Throws: what the callbacks throw, or `SensitivityError` for malformed products.
  public mutating func run(
    hessianVectorProduct: ([[Float]]) throws -> [[Float]],
    afterProbe: (Int, [Double]) throws -> Void = { _, _ in }
  ) throws {
    while !isFinished {
      let k = probesDone
      let v = probe(k)
      let hv = try hessianVectorProduct(v)
      let values = try record(probe: v, product: hv)
      try afterProbe(k, values)
    }
  }

  private mutating func append(_ values: [Double]) {
    for i in values.indices { moments[i].add(values[i]) }
    samples.append(values)
  }

  private func checkBlocks(_ x: [[Float]], _ what: String) throws(SensitivityError) {
    guard x.count == blocks.count else {
      throw SensitivityError(.shapeMismatch, "\(what) has \(x.count) blocks, the layout \(blocks.count)")
    }
    for i in blocks.indices where x[i].count != blocks[i].count {
      throw SensitivityError(
        .shapeMismatch, "\(what): block '\(blocks[i].name)' has \(x[i].count) values, expected \(blocks[i].count)")
    }
  }
}
