/// Single-layer scores measured end to end (`bitplan measure --score-kld`, `/measured` in `RUN.h5`): for every
/// offered (layer, candidate), the model with only that layer quantized is run on the leading `tokens`
/// calibration tokens and compared with the unquantized model.
///
/// The KLD is the truth the proxies (`/proxies`) estimate: `KL(p ‖ q)` of the next-token distributions averaged over
/// the `tokens − 1` predictions, which is also the expected NLL increase under the unquantized model's own
/// predictions. It is allocated by as the score `kld` (`MeasuredRun.scoreGrid(named:)`); ΔNLL on so few tokens is
/// much noisier (either sign) and is stored for comparison only.
public struct MeasuredScores: Sendable, Codable, Equatable {
  /// The score name under which `kld` is offered to the allocator and the audit.
  public static let scoreName = "kld"

  /// `/measured/kld` `[layer][candidate]`, nats/token; NaN where the candidate is not offered or not yet measured.
  public var kld: [[Double]]
  /// `/measured/delta_nll` `[layer][candidate]`: mean NLL with only that layer quantized minus `baselineNLL`.
  public var deltaNLL: [[Double]]
  /// Mean NLL of the unquantized model on the same tokens (attribute `baseline_nll`).
  public var baselineNLL: Double
  /// Calibration tokens scored, BOS included (attribute `tokens`; equals the provenance's `kld_tokens`).
  public var tokens: Int

  /// No pair measured yet (every score NaN).
  public init(layers: Int, candidates: Int, tokens: Int, baselineNLL: Double) {
    let grid = [[Double]](repeating: [Double](repeating: .nan, count: candidates), count: layers)
    (kld, deltaNLL) = (grid, grid)
    self.tokens = tokens
    self.baselineNLL = baselineNLL
  }

  /// Layers whose every offered candidate (`bytes ≥ 0`) is measured, counted from the first: where a resumed
  /// stage continues (the stage records a layer at a time, in order).
  public func layersDone(bytes: [[Int]]) -> Int {
    var done = 0
    while done < kld.count && bytes[done].indices.allSatisfy({ bytes[done][$0] < 0 || !kld[done][$0].isNaN }) {
      done += 1
    }
    return done
  }
}

extension MeasuredRun {
  /// The per-(layer, candidate) grid of a score: a proxy (`/proxies/<name>`) or the measured KLD (`kld`, from
  /// `/measured/kld`); nil when the run has no such score.
  public func scoreGrid(named name: String) -> [[Double]]? {
    if let grid = proxies[name] { return grid }
    return name == MeasuredScores.scoreName ? measured?.kld : nil
  }

  /// Every score's grid by name: the proxies, and `kld` when the run measured it.
  public var scoreGrids: [String: [[Double]]] {
    var grids = proxies
    if let measured, grids[MeasuredScores.scoreName] == nil { grids[MeasuredScores.scoreName] = measured.kld }
    return grids
  }
}
