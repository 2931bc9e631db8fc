import Sensitivity
import Validation

/// The proxy audit: for each audited single-layer quantization, each proxy's prediction against the measured
/// ΔKLD and ΔNLL, and Spearman's ρ per proxy with a seeded bootstrap interval over the audited pairs.
extension ReportData {
  /// One audited (layer, candidate).
  public struct AuditPair: Sendable {
    public var layer: String
    public var candidate: String
    /// The highlighted score's prediction (nats/token).
    public var predicted: Double
    public var deltaKLD: Double
    public var deltaNLL: Double
  }

  /// ρ of one proxy against the truth, with 95% percentile-bootstrap intervals.
  public struct AuditCorrelation: Sendable {
    public var score: String
    public var kld: Interval
    public var nll: Interval
  }

  /// The audit and its correlations.
  public struct AuditSummary: Sendable {
    /// The score drawn in the scatter (the plan's, else the default).
    public var score: String
    public var pairs: [AuditPair]
    public var correlations: [AuditCorrelation]
    public var baselineNLL: Double
    /// Bootstrap resamples of the pairs and their seed (the run's seed).
    public var replicates: Int
    public var seed: UInt64
    /// Whether ρ came from the run file (`/audit/spearman_*`); the intervals are always computed here.
    public var storedRho: Bool
  }

  /// Resamples used for the ρ intervals.
  public static let auditReplicates = 2000

  /// The audit of `run` with each score's ρ and interval (the proxies, and `kld` when measured); `score` is the one
  /// drawn (the first name when the run has no such score). Nil without audited pairs.
  public static func auditSummary(_ run: MeasuredRun, score: String) -> AuditSummary? {
    guard let audit = run.audit, !audit.layer.isEmpty else { return nil }
    let n = audit.layer.count
    let grids = run.scoreGrids
    let names = grids.keys.sorted()
    let chosen = grids[score] != nil ? score : (names.first ?? score)
    func prediction(_ name: String, _ k: Int) -> Double {
      grids[name]?[audit.layer[k]][audit.candidate[k]] ?? .nan
    }
    let pairs = (0..<n).map { k in
      AuditPair(
        layer: run.layers[audit.layer[k]].name, candidate: run.candidates[audit.candidate[k]].name,
        predicted: prediction(chosen, k), deltaKLD: audit.deltaKLD[k], deltaNLL: audit.deltaNLL[k])
    }
    let seed = run.provenance.seed
    let draws = n >= 2 ? WindowBootstrap(windows: n, replicates: auditReplicates, seed: seed).draws : []
    let correlations = names.map { name in
      let x = (0..<n).map { prediction(name, $0) }
      return AuditCorrelation(
        score: name,
        kld: rhoInterval(x, audit.deltaKLD, stored: audit.spearmanKLD[name], draws: draws),
        nll: rhoInterval(x, audit.deltaNLL, stored: audit.spearmanNLL[name], draws: draws))
    }
    return AuditSummary(
      score: chosen, pairs: pairs, correlations: correlations, baselineNLL: audit.baselineNLL,
      replicates: auditReplicates, seed: seed, storedRho: !audit.spearmanKLD.isEmpty)
  }

  /// ρ (the stored value when there is one, else computed) with the 2.5th and 97.5th percentiles of ρ over
  /// resamples of the pairs; resamples where ρ is undefined (a constant side) are skipped.
  static func rhoInterval(_ x: [Double], _ y: [Double], stored: Double?, draws: [[Int]]) -> Interval {
    let value = stored ?? SpearmanCorrelation.rho(x, y) ?? .nan
    var replicated: [Double] = []
    replicated.reserveCapacity(draws.count)
    for d in draws {
      if let r = SpearmanCorrelation.rho(d.map { x[$0] }, d.map { y[$0] }) { replicated.append(r) }
    }
    replicated.sort()
    guard replicated.count >= 2 else { return Interval(value: value, low: .nan, high: .nan) }
    return Interval(
      value: value, low: WindowBootstrap.percentile(replicated, 0.025),
      high: WindowBootstrap.percentile(replicated, 0.975))
  }
}
