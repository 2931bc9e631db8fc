import Foundation
import TensorCore

/// The per-layer stage and the audit.
extension MeasurementRun {
  /// Per layer: weight statistics, input trace and every candidate's errors and proxy scores.
  /// - Parameter gradientSum: the Fisher stage's gradient sum when this process ran it (else recomputed from the
  ///   saved part, the very same bits).
  func layerStage(_ store: RunStore, gradientSum: [Double]?) throws {
    let layers = model.linearLayers
    if store.progress.layersDone >= layers.count { return }
    // Per-parameter sums, each layer's part divided by the count as it is needed; the diagonal from the side
    // checkpoint (kept in memory by the store that saved it, or read from the file when resumed).
    // in the streamed form the sum stays in its side file, read a layer at a time
    let streamed = streamsGradientSum ? try streamedGradientSum(store) : nil
    let gradientSum = streamed != nil ? [] : try [gradientSum ?? self.gradientSum(store, checkpointing: false)]
    // The base gradient and the perturbed weights (a model's worth each) are not needed from here on.
    model.releaseCurvatureState()
    let windows = Double(model.calibrationWindowCount)
    let diagonalSum = provenance.keepsHessianDiagonal ? try store.diagonalSumBlocks() : nil
    let probes = Double(store.run.probeValues.count)
    let offsets = layers.reduce(into: [0]) { $0.append($0.last! + $1.parameterCount) }
    // Each layer's record rewrites the whole partial file (~10 ms for SmolLM2, 2 s over its 210 layers): with an
    // interval, at most one save per `layerCheckpointInterval`, and always after the stage's last layer.
    var schedule = CheckpointSchedule(
      interval: checkpointInterval > 0 ? min(checkpointInterval, Self.layerCheckpointInterval) : 0)
    for i in store.progress.layersDone..<layers.count {
      let layer = layers[i]
      let w = try model.weights(of: i)
      if w.count != layer.parameterCount {
        throw SensitivityError(
          .shapeMismatch, "'\(layer.name)': \(w.count) weights for shape \(layer.rows)×\(layer.columns)")
      }
      let range = offsets[i]..<offsets[i + 1]
      let gradient = try streamed.map { try Self.read($0, range.lowerBound, range.count).map { $0 / windows } }
        ?? Self.slice(gradientSum, range, dividedBy: windows)
      let diagonal = diagonalSum.map { Self.slice($0, range, dividedBy: probes) }
      let statistics = try WeightStatistics(weights: w)
      // An embedding table: its lookup, plus the LM head's inputs when it is tied (both uses add).
      let lookup = try model.tableLookup(of: i)
      if let lookup, lookup.rowCounts.count != layer.rows {
        throw SensitivityError(.shapeMismatch, "'\(layer.name)': lookup of \(lookup.rowCounts.count) rows, table has \(layer.rows)")
      }
      var gram: GramMatrix?
      var inputTrace = lookup?.inputTrace ?? 0
      var squareMeans: [Double] = []
      if lookup?.isAlsoProjection ?? true {
        let (x, n) = try model.layerInputs(of: i)
        gram = try GramMatrix(inputs: x, rows: n, columns: layer.columns)
        inputTrace += GramMatrix.inputTrace(inputs: x, rows: n)
        squareMeans = GramMatrix.columnSquareMeans(inputs: x, rows: n, columns: layer.columns)
      }
      // every candidate's Q(W) at once, unless they would take more than `candidateBatchBytes`: then as many at a
      // time as there are workers (the same numbers; a 1B model's table is 1 GB per candidate)
      let count = model.candidates.count
      let batch = 4 * w.count * count > candidateBatchBytes ? max(1, Parallel.workers) : max(count, 1)
      var results: [LayerMeasurement.CandidateResult?] = []
      for first in stride(from: 0, to: count, by: batch) {
        var quantized: [QuantizedWeights?] = []
        for c in first..<min(first + batch, count) {
          let q = try model.quantize(layer: i, candidate: c)
          if let q, q.weights.count != w.count {
            throw SensitivityError(
              .shapeMismatch, "'\(layer.name)' quantized to \(model.candidates[c].name): \(q.weights.count) values")
          }
          quantized.append(q)
        }
        results += try Self.measure(
          quantized, weights: w, rows: layer.rows, columns: layer.columns, gram: gram, lookup: lookup,
          hessianTrace: store.run.hessianTrace[i], gradient: gradient, hessianDiagonal: diagonal)
      }
      var m = LayerMeasurement(statistics: statistics, inputTrace: inputTrace, candidates: results)
      m.inputSquareMeans = squareMeans
      if schedule.isDue || i == layers.count - 1 {
        try schedule.save { try store.recordLayer(i, m) }
      } else {
        try store.recordLayer(i, m, checkpoint: false)
      }
      onProgress(.layers, i + 1, layers.count)
    }
    store.releaseSideVectors()
  }

  /// `LayerMeasurement.measure` of every quantized candidate of one layer (`nil` stays `nil`). The candidates run in
  /// parallel over the cores (`Parallel.forEach`), each task's GEMMs whole on its own thread (OpenBLAS' own threads
  /// had left the workers spinning in `sched_yield` between the small GEMMs: 12% of the stage's samples). Each candidate's numbers are computed exactly as in
  /// order; the first failing candidate's error is thrown.
  static func measure(
    _ quantized: [QuantizedWeights?], weights w: [Float], rows: Int, columns: Int, gram: GramMatrix?,
    lookup: TableLookup? = nil, hessianTrace: Double, gradient: [Double], hessianDiagonal: [Double]?
  ) throws(SensitivityError) -> [LayerMeasurement.CandidateResult?] {
    typealias Slot = Result<LayerMeasurement.CandidateResult?, SensitivityError>
    let slots = UnsafeMutableBufferPointer<Slot>.allocate(capacity: quantized.count)
    defer {
      slots.deinitialize()
      slots.deallocate()
    }
    // Each worker reads only immutable arrays and writes its own slot; GEMMs inside a task run whole.
    let out = slots
    Parallel.forEach(quantized.count) { c in
      let result = Slot { () throws(SensitivityError) -> LayerMeasurement.CandidateResult? in
        guard let q = quantized[c] else { return nil }
        let delta = Self.difference(q.weights, w)
        var result = try LayerMeasurement.measure(
          delta: delta, rows: rows, columns: columns, gram: gram, lookup: lookup, hessianTrace: hessianTrace,
          gradient: gradient, hessianDiagonal: hessianDiagonal, bytes: q.bytes, calibration: q.calibration)
        result.quantizer = q.quantizer
        if let e = q.outputError {
          // The input is quantized too (w8a8): the error measured on the calibration inputs, not from ΔW alone.
          result.outputError = e
          result.proxies[LossProxy.outputError.rawValue] = e
        }
        return result
      }
      (out.baseAddress! + c).initialize(to: result)
    }
    return try slots.map { slot throws(SensitivityError) in try slot.get() }
  }

  /// `a − b` elementwise (equal lengths), in one vectorized loop (`zip(…).map` was not vectorized).
  static func difference(_ a: [Float], _ b: [Float]) -> [Float] {
    precondition(a.count == b.count, "length mismatch \(a.count) != \(b.count)")
    return [Float](unsafeUninitializedCapacity: a.count) { out, initialized in
      a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
          for j in 0..<a.count { out[j] = a[j] - b[j] }
        }
      }
      initialized = a.count
    }
  }

  /// Values `range` of the vector whose consecutive blocks are `blocks`, each divided by `divisor`.
  /// One divide per value, in a plain loop over the buffers (appending a lazy map went element by element).
  package static func slice(_ blocks: [[Double]], _ range: Range<Int>, dividedBy divisor: Double) -> [Double] {
    let total = blocks.reduce(0) { $0 + $1.count }
    precondition(range.lowerBound >= 0 && range.upperBound <= total, "vector of \(total) values has no range \(range)")
    return [Double](unsafeUninitializedCapacity: range.count) { out, initialized in
      var (start, written) = (0, 0)
      for block in blocks {
        let (lower, upper) = (max(range.lowerBound, start), min(range.upperBound, start + block.count))
        if lower < upper {
          block.withUnsafeBufferPointer { b in
            for j in (lower - start)..<(upper - start) {
              out[written] = b[j] / divisor
              written += 1
            }
          }
        }
        start += block.count
        if start >= range.upperBound { break }
      }
      initialized = written
    }
  }

  /// The audit: each pair's single-layer score on the held-out text (`SensitivityModel.score(…on: .heldOut)`).
  func auditStage(_ store: RunStore) throws {
    if store.run.audit == nil {
      try store.recordAuditBaseline(meanNLL: try model.baselineNLL(on: .heldOut))
    }
    let pairs = try auditPairs(bytes: store.run.bytes)
    let baseline = store.run.audit!.baselineNLL
    for a in store.run.audit!.layer.count..<pairs.count {
      let (layer, candidate) = pairs[a]
      guard let e = try model.score(layer: layer, candidate: candidate, on: .heldOut) else {
        throw SensitivityError(.shapeMismatch, "audited candidate \(candidate) no longer fits layer \(layer)")
      }
      try store.recordAudit(layer: layer, candidate: candidate, deltaNLL: e.meanNLL - baseline, deltaKLD: e.meanKLD)
      onProgress(.audit, a + 1, pairs.count)
    }
  }

  /// The pairs this run audits: with `provenance.auditFormat` every layer that offers that candidate, in layer order
  /// (`auditCount` of them); otherwise `auditPairs(bytes:count:seed:)`.
  /// - Throws: `.invalidArgument` when the audit format is no candidate or the count disagrees with the layers.
  func auditPairs(bytes: [[Int]]) throws(SensitivityError) -> [(Int, Int)] {
    guard !provenance.auditFormat.isEmpty else {
      return Self.auditPairs(bytes: bytes, count: provenance.auditCount, seed: provenance.seed)
    }
    let pairs = try Self.auditPairs(bytes: bytes, format: provenance.auditFormat, candidates: provenance.candidates)
    if pairs.count != provenance.auditCount {
      throw SensitivityError(
        .invalidArgument, "--audit-format \(provenance.auditFormat) fits \(pairs.count) layers, the settings say \(provenance.auditCount)")
    }
    return pairs
  }

  /// Every layer that offers candidate `format` (bytes ≥ 0), paired with it, in layer order: the all-layer audit.
  /// - Throws: `.invalidArgument` when `format` is not among `candidates`.
  public static func auditPairs(bytes: [[Int]], format: String, candidates: [String]) throws(SensitivityError) -> [(Int, Int)] {
    guard let c = candidates.firstIndex(of: format) else {
      throw SensitivityError(
        .invalidArgument, "--audit-format \(format) is not a candidate (\(candidates.joined(separator: ",")))")
    }
    return bytes.indices.compactMap { l in bytes[l][c] >= 0 ? (l, c) : nil }
  }

  /// The (layer, candidate) pairs to audit: the first `count` of all offered pairs (bytes ≥ 0, in row-major order)
  /// after a Fisher–Yates shuffle driven by `ProbeStream(seed, .audit, 0)` (index `j = next() mod (i+1)`; the modulo
  /// bias below 2⁻⁴⁰ for realistic sizes is irrelevant to a sample). Written out rather than `shuffled(using:)`,
  /// whose algorithm the standard library does not promise to keep.
  static func auditPairs(bytes: [[Int]], count: Int, seed: UInt64) -> [(Int, Int)] {
    var pairs: [(Int, Int)] = []
    for (l, row) in bytes.enumerated() { for (c, b) in row.enumerated() where b >= 0 { pairs.append((l, c)) } }
    var stream = ProbeStream(seed: seed, domain: .audit, index: 0)
    if pairs.count > 1 {
      for i in stride(from: pairs.count - 1, to: 0, by: -1) {
        let j = Int(stream.next() % UInt64(i + 1))
        pairs.swapAt(i, j)
      }
    }
    return Array(pairs.prefix(count))
  }
}
