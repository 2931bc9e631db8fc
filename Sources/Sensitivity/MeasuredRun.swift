/// Everything a measurement stored in `RUN.h5`, as one value: what the allocator, the reports and tests read.
///
/// Per-layer arrays have one entry per `layers` element; per-(layer, candidate) arrays are `[layer][candidate]`
/// in `candidates` order. Missing numbers are NaN: a candidate the layer's shape does not allow (its `bytes` is
/// −1), a statistic that was not asked for (`topEigenvalue` without `--eigen`), or one not yet measured in a
/// partial run. JSON encoding needs a `nonConformingFloatEncodingStrategy` for the NaNs; `==` compares numbers
/// bitwise, so NaN equals NaN (`MeasuredRun+Equatable.swift`).
/// The file layout is in `Documentation/RunFormat.md`.
public struct MeasuredRun: Sendable, Codable, Equatable {
  /// One linear layer: its Hugging Face module path and weight shape `[rows, columns] = [out, in]`.
  public struct Layer: Sendable, Codable, Equatable {
    /// Hugging Face module path, e.g. `model.layers.0.mlp.down_proj`.
    public var name: String
    /// `out`, the number of output features.
    public var rows: Int
    /// `in`, the number of input features.
    public var columns: Int
    /// `rows · columns`.
    public var parameterCount: Int { rows * columns }

    /// A layer named `name` with a `[rows, columns]` weight.
    public init(name: String, rows: Int, columns: Int) {
      self.name = name
      self.rows = rows
      self.columns = columns
    }
  }

  /// One candidate format: its name in the project grammar and bits per weight including scales and zeros.
  public struct Candidate: Sendable, Codable, Equatable {
    /// Format name in the project grammar (`int4-g128`).
    public var name: String
    /// Bits per weight including scales and zero points.
    public var bitsPerWeight: Double

    /// A candidate format.
    public init(name: String, bitsPerWeight: Double) {
      self.name = name
      self.bitsPerWeight = bitsPerWeight
    }
  }

  /// True loss changes of single-layer quantizations, and how well each proxy ranks them.
  public struct Audit: Sendable, Codable, Equatable {
    /// Layer index of each audited quantization.
    public var layer: [Int] = []
    /// Candidate index of each audited quantization.
    public var candidate: [Int] = []
    /// Mean NLL with only that layer quantized, minus `baselineNLL` (nats per token).
    public var deltaNLL: [Double] = []
    /// Mean KL divergence of the next-token distributions, unquantized ‖ quantized (nats per token).
    public var deltaKLD: [Double] = []
    /// Mean NLL of the unquantized model on the evaluation tokens (`SensitivityModel.evaluate`).
    public var baselineNLL: Double = .nan
    /// Spearman ρ between each proxy (by score name) and `deltaNLL` over the audited pairs; NaN if undefined.
    public var spearmanNLL: [String: Double] = [:]
    /// Spearman ρ between each proxy and `deltaKLD`.
    public var spearmanKLD: [String: Double] = [:]

    /// An audit with no entries and an unknown baseline.
    public init() {}
  }

  /// Root attributes: checksums and settings.
  public var provenance: RunProvenance
  /// `/layers/*`, in model order.
  public var layers: [Layer]
  /// `/candidates/*`, in column order.
  public var candidates: [Candidate]
  /// `/weights/variance`, `/weights/absmax`, `/weights/kurtosis` (see `WeightStatistics`).
  public var weightVariance: [Double]
  /// `/weights/absmax`.
  public var weightAbsmax: [Double]
  /// `/weights/kurtosis` (excess).
  public var weightKurtosis: [Double]
  /// `/hessian/trace`: Hutchinson estimate of `tr(Hᵢᵢ)` of the mean NLL, and its standard error and probe count.
  public var hessianTrace: [Double]
  /// `/hessian/trace_stderr`.
  public var hessianTraceStandardError: [Double]
  /// `/hessian/probes_used`.
  public var probesUsed: [Int]
  /// `/hessian/probe_values`: `[probe][layer]` values `vᵢᵀ(Hv)ᵢ`.
  public var probeValues: [[Double]]
  /// `/hessian/top_eigenvalue`: dominant eigenvalue of each layer's diagonal Hessian block (NaN if not measured).
  public var topEigenvalue: [Double]
  /// `/hessian/input_trace`: `tr(XᵀX)/n` of the layer inputs.
  public var inputTrace: [Double]
  /// `/hessian/input_diagonal`: per layer, `diag(XᵀX)/n` of its inputs, `columns` values (llama.cpp's importance
  /// matrix); empty where not measured (an untied embedding, a layer not reached yet, files written before it).
  public var inputSquareMeans: [[Double]]
  /// `/fisher/trace`: `Σ g²` of the layer's mean NLL gradient over the calibration windows.
  public var fisherTrace: [Double]
  /// `/error/weight`: `‖Q(W) − W‖²_F`; `/error/output`: `tr(ΔW XᵀX ΔWᵀ)/n`.
  public var weightError: [[Double]]
  /// `/error/output`.
  public var outputError: [[Double]]
  /// `/bytes`: exact bytes of the layer in each format; −1 where the format does not fit the layer's shape.
  public var bytes: [[Int]]
  /// `/calibration/method`: the range calibration the quantizer chose per (layer, candidate); "" where not offered.
  public var calibrationMethod: [[String]]
  /// `/calibration/quantizer`: the quantizer that chose the codes per (layer, candidate) (`rtn`, `gptq`, `awq`);
  /// "" where not offered. Files written before quantizers existed read as `rtn` wherever a candidate was offered.
  public var quantizer: [[String]]
  /// `/proxies/<score>`: predicted loss increase per (layer, candidate) by each `LossProxy` score name.
  public var proxies: [String: [[Double]]]
  /// `/audit`, when `--audit N` or `--audit-format F` was given.
  public var audit: Audit?
  /// `/measured`, when `--score-kld` was given: single-layer KLD and ΔNLL measured end to end (`MeasuredScores`).
  public var measured: MeasuredScores?
  /// `/validation`: the plan-vs-baselines table of the last `bitplan validate --run` on this run.
  public var validation: ValidationTable?

  /// The plan and its baselines as measured by `bitplan validate` (one row each, the plan first), with the
  /// settings that produced them. Intervals are 95% bootstrap intervals over windows.
  public struct ValidationTable: Sendable, Codable, Equatable {
    /// `plan`, `uniform`, `q4km`, `edges`.
    public var name: [String] = []
    /// What each row is (`uniform int4-g64`).
    public var label: [String] = []
    public var bytes: [Int] = []
    public var bitsPerWeight: [Double] = []
    /// Mean KL(base‖model) in nats, and its interval.
    public var kld: [Double] = []
    public var kldLow: [Double] = []
    public var kldHigh: [Double] = []
    public var perplexity: [Double] = []
    public var perplexityLow: [Double] = []
    public var perplexityHigh: [Double] = []
    public var top1: [Double] = []
    /// Attributes: `protocol`, `activations`, `eval_sha256`, `plan`, `tokens`, `windows`.
    public var scoringProtocol = ""
    public var activations = ""
    public var evalSHA256 = ""
    public var plan = ""
    public var tokens = 0
    public var windows = 0

    public init() {}
  }

  /// An empty run for `layers` × `candidates`: every number NaN, bytes −1, no probes.
  public init(provenance: RunProvenance, layers: [Layer], candidates: [Candidate]) {
    let (l, c) = (layers.count, candidates.count)
    let perLayer = [Double](repeating: .nan, count: l)
    let grid = [[Double]](repeating: [Double](repeating: .nan, count: c), count: l)
    self.provenance = provenance
    self.layers = layers
    self.candidates = candidates
    (weightVariance, weightAbsmax, weightKurtosis) = (perLayer, perLayer, perLayer)
    (hessianTrace, hessianTraceStandardError, topEigenvalue) = (perLayer, perLayer, perLayer)
    (inputTrace, fisherTrace) = (perLayer, perLayer)
    inputSquareMeans = [[Double]](repeating: [], count: l)
    probesUsed = [Int](repeating: 0, count: l)
    probeValues = []
    (weightError, outputError) = (grid, grid)
    bytes = [[Int]](repeating: [Int](repeating: -1, count: c), count: l)
    calibrationMethod = [[String]](repeating: [String](repeating: "", count: c), count: l)
    quantizer = calibrationMethod
    proxies = Dictionary(uniqueKeysWithValues: LossProxy.allCases.map { ($0.rawValue, grid) })
    audit = nil
    measured = nil
    validation = nil
  }
}
