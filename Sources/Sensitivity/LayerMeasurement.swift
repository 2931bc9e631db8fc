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
  /// `tr(XᵀX)/n` of the layer's captured inputs.
  public var inputTrace: Double
  /// One entry per candidate, `nil` where the format does not fit the layer's shape.
  public var candidates: [CandidateResult?]

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
    let n = rows * gram.dimension
    if delta.count != n || (gradient.map { $0.count != n } ?? false) || (hessianDiagonal.map { $0.count != n } ?? false)
    {
      throw SensitivityError(.invalidArgument, "ΔW, gradient or diagonal length differs from \(rows)×\(gram.dimension)")
    }
    let (weightError, fisherDiagonal, taylorDiagonal) = diagonalProxies(
      delta: delta, gradient: gradient, hessianDiagonal: hessianDiagonal)
    let outputError = try gram.outputError(delta: delta, rows: rows)
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
    let zeros = [Double](repeating: 0, count: gradient == nil || hessianDiagonal == nil ? delta.count : 0)
    let (g, h) = (gradient ?? zeros, hessianDiagonal ?? zeros)
    var (weight, fisher, taylor) = (0.0, 0.0, 0.0)
    delta.withUnsafeBufferPointer { delta in
      g.withUnsafeBufferPointer { g in
        h.withUnsafeBufferPointer { h in
          for j in delta.indices {
            let d = Double(delta[j])
            weight += d * d
            let gd = g[j] * d
            fisher += gd * gd
            taylor += h[j] * d * d
          }
        }
      }
    }
    return (weight, gradient == nil ? .nan : fisher, hessianDiagonal == nil ? .nan : 0.5 * taylor)
  }
}
