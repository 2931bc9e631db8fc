/// Everything measured for one layer in the per-layer stage: weight statistics, input trace, and for each candidate
/// the errors, bytes, calibration and proxy scores. `RunStore.recordLayer` stores it.
public struct LayerMeasurement: Sendable, Codable, Equatable {
  /// One candidate format applied to the layer.
  public struct CandidateResult: Sendable, Codable, Equatable {
    /// `‖Q(W) − W‖²_F`.
    public var weightError: Double
    /// `tr(ΔW XᵀX ΔWᵀ)/n`.
    public var outputError: Double
    /// Exact bytes of the layer in this format.
    public var bytes: Int
    /// The range calibration the quantizer used (e.g. `absmax`, `mse-grid`).
    public var calibration: String
    /// Predicted loss increase by score name (`LossProxy` raw values).
    public var proxies: [String: Double]
    /// The quantizer that chose the codes (`rtn`, `gptq`, `awq`).
    public var quantizer = "rtn"

    /// A candidate's measurements; see the properties.
    public init(weightError: Double, outputError: Double, bytes: Int, calibration: String, proxies: [String: Double]) {
      self.weightError = weightError
      self.outputError = outputError
      self.bytes = bytes
      self.calibration = calibration
      self.proxies = proxies
    }
  }

  /// Variance, absmax and excess kurtosis of `W`.
  public var statistics: WeightStatistics
  /// `tr(XᵀX)/n` of the layer's captured inputs (an embedding table: summed over its uses, `TableLookup`).
  public var inputTrace: Double
  /// One entry per candidate, `nil` where the format does not fit the layer's shape.
  public var candidates: [CandidateResult?]
  /// `diag(XᵀX)/n` of the layer's captured inputs (`GramMatrix.columnSquareMeans`; a tied embedding: of the LM
  /// head's inputs); empty where the layer has no projection inputs (an untied embedding's lookup).
  public var inputSquareMeans: [Double] = []

  /// A layer's measurements; see the properties.
  public init(statistics: WeightStatistics, inputTrace: Double, candidates: [CandidateResult?]) {
    self.statistics = statistics
    self.inputTrace = inputTrace
    self.candidates = candidates
  }

  /// Measures one candidate from `ΔW = Q(W) − W` and the layer's curvature information.
  /// - Parameters:
  ///   - delta: `ΔW`, `[rows, in]` row-major.
  ///   - rows: `out`.
  ///   - gram: the layer's `G = XᵀX/n`.
  ///   - hessianTrace: the layer's Hutchinson trace (NaN if unknown; `hawq_trace` is then NaN).
  ///   - gradient: the layer's mean NLL gradient, for `fisher_diag` (omitted: NaN).
  ///   - hessianDiagonal: the layer's Hutchinson diagonal, for `taylor_diag` (omitted: NaN).
  /// - Throws: `.invalidArgument` when a length disagrees with `rows · gram.dimension`.
  public static func measure(
    delta: [Float], rows: Int, gram: GramMatrix, hessianTrace: Double, gradient: [Double]?,
    hessianDiagonal: [Double]?, bytes: Int, calibration: String
  ) throws(SensitivityError) -> CandidateResult {
    try measure(
      delta: delta, rows: rows, columns: gram.dimension, gram: gram, lookup: nil, hessianTrace: hessianTrace,
      gradient: gradient, hessianDiagonal: hessianDiagonal, bytes: bytes, calibration: calibration)
  }

  /// Measures one candidate of a layer that may be an embedding table: as `measure(delta:rows:gram:…)`, with the
  /// output error the sum over the layer's uses, `tr(ΔW G ΔWᵀ)` of the projection (when `gram` is given) plus
  /// `lookup.outputError` of the table lookup (when `lookup` is given).
  /// - Throws: `.invalidArgument` when a length disagrees with `rows · columns`, or neither use is given.
  public static func measure(
    delta: [Float], rows: Int, columns: Int, gram: GramMatrix?, lookup: TableLookup?, hessianTrace: Double,
    gradient: [Double]?, hessianDiagonal: [Double]?, bytes: Int, calibration: String
  ) throws(SensitivityError) -> CandidateResult {
    let n = rows * columns
    if delta.count != n || (gradient.map { $0.count != n } ?? false) || (hessianDiagonal.map { $0.count != n } ?? false)
      || (gram.map { $0.dimension != columns } ?? false)
    {
      throw SensitivityError(.invalidArgument, "ΔW, gradient, diagonal or inputs differ from \(rows)×\(columns)")
    }
    if gram == nil && lookup == nil {
      throw SensitivityError(.invalidArgument, "a layer's output error needs its inputs or its table lookup")
    }
    let (weightError, fisherDiagonal, taylorDiagonal) = diagonalProxies(
      delta: delta, gradient: gradient, hessianDiagonal: hessianDiagonal)
    let outputError = try (gram?.outputError(delta: delta, rows: rows) ?? 0)
      + (lookup?.outputError(delta: delta, columns: columns) ?? 0)
    let proxies: [LossProxy: Double] = [
      .weightError: weightError,
      .hawqTrace: LossProxy.hawqTrace(hessianTrace: hessianTrace, parameterCount: n, weightError: weightError),
      .fisherDiagonal: fisherDiagonal,
      .taylorDiagonal: taylorDiagonal,
      .outputError: outputError,
    ]
    return CandidateResult(
      weightError: weightError, outputError: outputError, bytes: bytes, calibration: calibration,
      proxies: Dictionary(uniqueKeysWithValues: proxies.map { ($0.key.rawValue, $0.value) }))
  }

  /// `LossProxy.weightError`, `.fisherDiagonal` and `.taylorDiagonal` (NaN for a missing vector) in one pass over
  /// `ΔW`. Each sum adds the same Double terms in the same order as its `LossProxy` function, so the results are
  /// bit-identical; the three running sums are independent, so one pass costs about what one sum did (each is a
  /// chain of dependent adds).
  package static func diagonalProxies(delta: [Float], gradient: [Double]?, hessianDiagonal: [Double]?)
    -> (weightError: Double, fisherDiagonal: Double, taylorDiagonal: Double)
  {
    precondition(
      (gradient?.count ?? delta.count) == delta.count && (hessianDiagonal?.count ?? delta.count) == delta.count,
      "ΔW has \(delta.count) values, the gradient \(gradient?.count ?? -1), the diagonal \(hessianDiagonal?.count ?? -1)")
    // a missing vector reads as zeros without allocating them (8 bytes per weight: 2 GB for a 1B model's table)
    var (weight, fisher, taylor) = (0.0, 0.0, 0.0)
    func sums(_ g: UnsafePointer<Double>?, _ h: UnsafePointer<Double>?, _ delta: UnsafeBufferPointer<Float>) {
      for j in delta.indices {
        let d = Double(delta[j])
        weight += d * d
        if let g {
          let gd = g[j] * d
          fisher += gd * gd
        }
        if let h { taylor += h[j] * d * d }
      }
    }
    delta.withUnsafeBufferPointer { delta in
      switch (gradient, hessianDiagonal) {
      case (let g?, let h?):
        g.withUnsafeBufferPointer { g in h.withUnsafeBufferPointer { h in sums(g.baseAddress, h.baseAddress, delta) } }
      case (let g?, nil):
        g.withUnsafeBufferPointer { g in sums(g.baseAddress, nil, delta) }
      case (nil, let h?):
        h.withUnsafeBufferPointer { h in sums(nil, h.baseAddress, delta) }
      case (nil, nil):
        sums(nil, nil, delta)
      }
    }
    return (weight, gradient == nil ? .nan : fisher, hessianDiagonal == nil ? .nan : 0.5 * taylor)
  }
}
