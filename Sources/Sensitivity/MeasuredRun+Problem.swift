/// The columns the allocator needs, per layer: the offered candidates with their bytes and chosen score.
extension MeasuredRun {
  /// One layer's options for the allocation problem under one score.
  public struct ProblemColumn: Sendable, Codable, Equatable {
    /// Hugging Face module path.
    public var name: String
    /// Number of weights.
    public var parameterCount: Int
    /// Offered candidates (bytes ≥ 0), in candidate order.
    public var formats: [String]
    /// Exact bytes per offered candidate.
    public var bytes: [Int]
    /// The score's predicted loss increase per offered candidate.
    public var loss: [Double]
    /// Bits per weight per offered candidate (from `/candidates/bits_per_weight`).
    public var bitsPerWeight: [Double]
    /// The quantizer per offered candidate (from `/calibration/quantizer`: `rtn`, `gptq`, `awq`).
    public var quantizers: [String] = []
    /// Hessian trace per weight `tr(Hᵢᵢ)/n`, the water-filling sensitivity.
    public var hessianTracePerWeight: Double
    /// Weight variance, the water-filling scale.
    public var variance: Double
  }

  /// Score names available in this run (the `/proxies` datasets, and `kld` with `/measured`), sorted.
  public var scoreNames: [String] { scoreGrids.keys.sorted() }

  /// Per layer, the offered candidates with bytes and the predicted loss under `score` (a `LossProxy` name).
  /// - Throws: `.invalidArgument` for an unknown score (for `kld` on a run without `/measured`: measure with
  ///   `--score-kld`); `.nonFinite` when an offered candidate's score is NaN or
  ///   infinite (a stage that was skipped, e.g. `taylor_diag` without the diagonal).
  public func problemColumns(score: String) throws(SensitivityError) -> [ProblemColumn] {
    guard let grid = scoreGrid(named: score) else {
      if score == MeasuredScores.scoreName {
        throw SensitivityError(
          .invalidArgument, "this run has no measured KLD (/measured); measure it with `bitplan measure … --score-kld`, "
            + "or choose another --score (\(scoreNames.joined(separator: ", ")))")
      }
      throw SensitivityError(
        .invalidArgument, "unknown score '\(score)'; this run has \(scoreNames.joined(separator: ", "))")
    }
    return try layers.indices.map { (i) throws(SensitivityError) -> ProblemColumn in
      var column = ProblemColumn(
        name: layers[i].name, parameterCount: layers[i].parameterCount, formats: [], bytes: [], loss: [],
        bitsPerWeight: [], hessianTracePerWeight: hessianTrace[i] / Double(layers[i].parameterCount),
        variance: weightVariance[i])
      for c in candidates.indices where bytes[i][c] >= 0 {
        let loss = grid[i][c]
        if !loss.isFinite {
          throw SensitivityError(
            .nonFinite,
            "score '\(score)' of '\(layers[i].name)' in \(candidates[c].name) is \(loss); pick another --score")
        }
        column.formats.append(candidates[c].name)
        column.bytes.append(bytes[i][c])
        column.loss.append(loss)
        column.bitsPerWeight.append(candidates[c].bitsPerWeight)
        column.quantizers.append(quantizer[i][c].isEmpty ? "rtn" : quantizer[i][c])
      }
      return column
    }
  }
}

extension MeasuredRun {
  /// Indices of the layers whose Hutchinson trace is too noisy to rank them: negative, within two standard errors
  /// of zero, or not measured (NaN). With few probes many layers are (64 probes leave about 125 of SmolLM2's 210).
  public var noisyTraceLayers: [Int] {
    layers.indices.filter { i in !(hessianTrace[i] > 2 * hessianTraceStandardError[i]) }
  }
}

extension LossProxy {
  /// Whether the proxy is built on the Hutchinson estimate of the Hessian (its trace or its diagonal), and so is
  /// as noisy as that estimate: `hawq_trace` and `taylor_diag`.
  public var usesHessianEstimate: Bool { self == .hawqTrace || self == .taylorDiagonal }
}
