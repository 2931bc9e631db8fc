import TensorCore

/// Recording probes: from a Hessian-vector product, or replayed from stored values when a run resumes.
extension HutchinsonTrace {
  /// Records probe number `probesDone`: computes `vᵢᵀ(Hv)ᵢ` per block in `Double` (a sum of `±(Hv)_j` in order)
  /// and, when kept, adds `v ⊙ Hv` to the diagonal sums.
  /// - Parameters:
  ///   - probe: the vector from `probe(probesDone)`.
  ///   - product: `H · probe`, blocked like `probe`.
  /// - Returns: the per-block values just recorded.
  /// - Throws: `.shapeMismatch` when `product` is not blocked like the layout, `.nonFinite` for a NaN or infinite
  ///   block value (as `record(probe:streaming:)`: only the diagonal sums of earlier blocks have changed then).
  @discardableResult
  public mutating func record(probe: [[Float]], product: [[Float]]) throws(SensitivityError) -> [Double] {
    try checkBlocks(product, "Hessian-vector product")
    do {
      return try record(probe: probe) { consume in
        for i in product.indices { try product[i].withUnsafeBufferPointer { try consume(i, $0) } }
      }
    } catch let error as SensitivityError {
      throw error
    } catch {
      fatalError("unreachable: the product closure throws only SensitivityError")
    }
  }

  /// Records probe number `probesDone` from a product handed over block by block: `product` is called once with a
  /// `consume` function and must call `consume(i, (Hv)ᵢ)` exactly once for every block i, in any order (the engine
  /// hands blocks over as its backward pass finishes them, so no model-sized product is ever stored). Same numbers
  /// as `record(probe:product:)`.
  /// - Throws: what `product` throws; `.shapeMismatch` for a wrong block size, a block given twice or one missing;
  ///   `.nonFinite` for a NaN or infinite block value. Nothing is recorded then, except that the diagonal sums of
  ///   blocks handed over before the failure have been updated (a measurement run stops there and resumes from its
  ///   checkpoint).
  @discardableResult
  public mutating func record(
    probe: [[Float]], streaming product: ((Int, UnsafeBufferPointer<Float>) throws -> Void) throws -> Void
  ) throws -> [Double] {
    try checkBlocks(probe, "probe")
    return try record { consume in
      try withoutActuallyEscaping(consume) { consume in
        try product { i, hv in
          guard probe.indices.contains(i) else {
            throw SensitivityError(.shapeMismatch, "Hessian-vector product: block \(i) of \(hv.count) values is out of place")
          }
          try probe[i].withUnsafeBufferPointer { try consume(i, $0, hv) }
        }
      }
    }
  }

  /// Records probe number `probesDone` from the probe and its product handed over together, block by block:
  /// `product` must call `consume(i, vᵢ, (Hv)ᵢ)` exactly once for every block i, in any order, with vᵢ the block of
  /// `probe(probesDone)` (a model that regenerates the probe a block at a time, `SensitivityModel.hessianVectorProduct
  /// (probe:workspace:consume:)`, never holds it whole). Same numbers as `record(probe:product:)`.
  /// - Throws: as `record(probe:streaming:)`, and `.shapeMismatch` for a block of v of the wrong size.
  @discardableResult
  public mutating func record(
    streaming product: ((Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void) throws -> Void
  ) throws -> [Double] {
    var values = [Double?](repeating: nil, count: blocks.count)
    var diagonal = diagonalSum
    diagonalSum = nil  // moved out so the closure can update it without a copy
    defer { diagonalSum = diagonal }
    let blocks = self.blocks, k = probesDone
    try product { i, v, hv in
      guard blocks.indices.contains(i), values[i] == nil, hv.count == blocks[i].count, v.count == hv.count else {
        throw SensitivityError(.shapeMismatch, "Hessian-vector product: block \(i) of \(hv.count) values is out of place")
      }
      let value =
        if diagonal == nil { Self.accumulate(v, hv, into: nil) } else {
          diagonal![i].withUnsafeMutableBufferPointer { Self.accumulate(v, hv, into: $0) }
        }
      if !value.isFinite {
        throw SensitivityError(.nonFinite, "probe \(k): vᵀHv of block '\(blocks[i].name)' is \(value)")
      }
      values[i] = value
    }
    if let i = values.firstIndex(where: { $0 == nil }) {
      throw SensitivityError(.shapeMismatch, "Hessian-vector product: block '\(blocks[i].name)' was not handed over")
    }
    let recorded = values.map { $0! }
    append(recorded)
    return recorded
  }

  /// Elements per chunk of `accumulate`: a fixed size, so the sum's order does not depend on the worker count.
  static var chunkSize: Int { 1 << 16 }

  /// vᵀh in Double (Σ over chunks of `chunkSize`, in chunk order, each chunk with 8 interleaved partial sums), and
  /// `diagonal += v ⊙ h` in the same pass; chunks run in parallel.
  package static func accumulate(
    _ v: UnsafeBufferPointer<Float>, _ h: UnsafeBufferPointer<Float>, into diagonal: UnsafeMutableBufferPointer<Double>?
  ) -> Double {
    let n = v.count, size = chunkSize
    let chunks = (n + size - 1) / size
    var partials = [Double](repeating: 0, count: chunks)
    partials.withUnsafeMutableBufferPointer { partials in
      Parallel.forEachChunk(chunks, costPerItem: size) { range in
        for c in range {
          let (start, end) = (c * size, min(c * size + size, n))
          var lanes = SIMD8<Double>()
          var i = start
          while i + 8 <= end {
            var p = SIMD8<Double>()
            for j in 0..<8 { p[j] = Double(v[i + j]) * Double(h[i + j]) }
            lanes += p
            if let d = diagonal { for j in 0..<8 { d[i + j] += p[j] } }
            i += 8
          }
          var sum = lanes.sum()
          while i < end {
            let p = Double(v[i]) * Double(h[i])
            sum += p
            if let d = diagonal { d[i] += p }
            i += 1
          }
          partials[c] = sum
        }
      }
    }
    return partials.reduce(0, +)
  }

  /// Records probe number `probesDone` from its per-block values `vᵢᵀ(Hv)ᵢ`, computed elsewhere (a product that
  /// regenerates the probe block by block, `SensitivityModel.hutchinsonSample`). The diagonal is not kept then.
  /// - Throws: `.invalidArgument` when the diagonal is kept, `.shapeMismatch` for a count other than the number of
  ///   blocks, `.nonFinite` for a NaN or infinite value; nothing is recorded then.
  public mutating func record(values: [Double]) throws(SensitivityError) {
    if settings.keepsDiagonal {
      throw SensitivityError(.invalidArgument, "the Hessian diagonal needs the whole product, not per-block values")
    }
    if values.count != blocks.count {
      throw SensitivityError(.shapeMismatch, "probe \(probesDone) has \(values.count) values for \(blocks.count) blocks")
    }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
      throw SensitivityError(.nonFinite, "probe \(probesDone): vᵀHv of block '\(blocks[i].name)' is \(values[i])")
    }
    append(values)
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
