/// A bit-allocation problem: every layer picks exactly one of its candidate formats, each with an exact byte count
/// and a predicted loss increase, subject to a byte budget and to pins and tie groups.
///
/// This is a multiple-choice knapsack: minimise Σᵢ lossᵢ(fᵢ) subject to Σᵢ bytesᵢ(fᵢ) ≤ budget, fᵢ ∈ allowedᵢ. It knows
/// nothing of models: layers are names with numbers. A `RUN.h5` reader fills one `Option` per (layer, candidate)
/// with `/bytes` and the chosen score column; `ProblemFile` fills it from `PROBLEM.json`.
public struct AllocationProblem: Sendable, Equatable {
  /// One candidate format for one layer.
  public struct Option: Sendable, Equatable, Codable {
    /// Format name in the project grammar (`int4-g128`, `q4_0`, `f16`); compared as an exact string.
    public var format: String
    /// Exact bytes of the layer stored in this format, scales and zero points included.
    public var bytes: Int
    /// Predicted loss increase (the chosen score) when the layer is stored in this format.
    public var loss: Double
    /// Nominal bits per weight of the format (4 for `int4-g128`), when known; reported in plans.
    public var bits: Double?
    /// Quantization group size, when known; reported in plans.
    public var groupSize: Int?
    /// Whether the format is symmetric (no zero point), when known; reported in plans.
    public var symmetric: Bool?
    /// The quantizer that produced the option's codes (`rtn`, `gptq`, `awq`), when known; reported in plans.
    public var quantizer: String?

    public init(
      format: String, bytes: Int, loss: Double, bits: Double? = nil, groupSize: Int? = nil, symmetric: Bool? = nil,
      quantizer: String? = nil
    ) {
      self.format = format
      self.bytes = bytes
      self.loss = loss
      self.bits = bits
      self.groupSize = groupSize
      self.symmetric = symmetric
      self.quantizer = quantizer
    }
  }

  /// One quantizable layer, named by its Hugging Face module path.
  public struct Layer: Sendable, Equatable, Codable {
    /// Hugging Face module path, e.g. `model.layers.0.self_attn.q_proj`.
    public var name: String
    /// Number of weights; the denominator of bits per weight and the weight of the water-filling mean.
    public var parameterCount: Int
    /// The formats this layer may take (at least those its shape permits), in a stable order.
    public var options: [Option]
    /// Sensitivity sᵢ (for example a Hessian trace per weight); needed only by the water-filling solver.
    public var sensitivity: Double?
    /// Weight variance σᵢ²; needed only by the water-filling solver.
    public var variance: Double?

    public init(
      name: String, parameterCount: Int, options: [Option], sensitivity: Double? = nil, variance: Double? = nil
    ) {
      self.name = name
      self.parameterCount = parameterCount
      self.options = options
      self.sensitivity = sensitivity
      self.variance = variance
    }
  }

  /// The layers to allocate, in a stable order (plans list them in this order).
  public var layers: [Layer]
  /// Pins and tie groups, applied in order (the first matching pin wins, as in llama.cpp's `--tensor-type`).
  public var constraints: [AllocationConstraint]
  /// Name of the score that `Option.loss` holds (`error`, `hessian`, ...), copied into plans.
  public var score: String
  /// Model name and checksum, copied into plans when known.
  public var model: String?
  /// SHA-256 of the model file, copied into plans when known.
  public var modelSHA256: String?

  public init(
    layers: [Layer], constraints: [AllocationConstraint] = [], score: String = "error", model: String? = nil,
    modelSHA256: String? = nil
  ) {
    self.layers = layers
    self.constraints = constraints
    self.score = score
    self.model = model
    self.modelSHA256 = modelSHA256
  }

  /// Total weights over all layers: the denominator of `--bpw`.
  public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }

  /// Checks the numbers: at least one layer, unique names, at least one candidate per layer, unique formats within a
  /// layer, non-negative bytes and parameter counts, finite scores.
  /// - Throws: `AllocationError` naming the first offending layer.
  public func validate() throws(AllocationError) {
    guard !layers.isEmpty else { throw AllocationError(.emptyProblem, "the problem has no layers") }
    var names = Set<String>()
    for layer in layers {
      guard names.insert(layer.name).inserted else {
        throw AllocationError(.duplicate, "layer '\(layer.name)' appears twice")
      }
      guard layer.parameterCount >= 0 else {
        throw AllocationError(.badNumber, "layer '\(layer.name)': parameter count \(layer.parameterCount) < 0")
      }
      guard !layer.options.isEmpty else {
        throw AllocationError(.noCandidates, "layer '\(layer.name)' has no candidate formats")
      }
      var formats = Set<String>()
      for option in layer.options {
        guard formats.insert(option.format).inserted else {
          throw AllocationError(.duplicate, "layer '\(layer.name)': format '\(option.format)' offered twice")
        }
        guard option.bytes >= 0 else {
          throw AllocationError(
            .badNumber, "layer '\(layer.name)', format '\(option.format)': bytes \(option.bytes) < 0")
        }
        guard option.loss.isFinite else {
          throw AllocationError(
            .badNumber, "layer '\(layer.name)', format '\(option.format)': score \(option.loss) is not finite")
        }
      }
    }
  }

  /// The smallest and largest total bytes any plan can have under the constraints: Σ of the per-group minima and
  /// maxima after pins and ties are applied.
  /// - Complexity: O(layers × candidates) plus the pattern matching.
  public func achievableBytes() throws(AllocationError) -> ClosedRange<Int> {
    try ReducedProblem(self).achievableBytes
  }

  /// Fails at once with the achievable range when no plan fits in `budget` bytes.
  public func checkFeasible(budget: Int) throws(AllocationError) {
    try ReducedProblem(self).checkFeasible(budget: budget)
  }
}

/// A constraint on the choice of formats. Patterns are Swift regular expressions searched anywhere in the layer name
/// (like llama.cpp's `--tensor-type`).
public enum AllocationConstraint: Sendable, Equatable, Codable {
  /// Every layer whose name matches `pattern` takes `format` (the first matching pin wins).
  case pin(pattern: String, format: String)
  /// Layers matching `pattern` share one format per block. The block key is the regex's first capture group when it
  /// has one (`layers\.(\d+)\.self_attn\.[qkv]_proj` ties q/k/v of each block), otherwise the name with the matched
  /// part removed.
  case tie(pattern: String)
  /// These exact layers share one format (the `ties` lists of PROBLEM.json).
  case tieNames([String])
}
