import Foundation

/// `PLAN.json` exactly as DESIGN.md fixes it: totals, solver and score, and one entry per layer keyed by its name.
/// Unknown values (`model`, `bits`, `group_size`, `symmetric`) are written as `null`, so every key is always present.
public struct PlanDocument: Sendable, Equatable, Codable {
  /// The format of one layer in the plan.
  public struct Layer: Sendable, Equatable, Codable {
    /// Format name.
    public var format: String
    /// Nominal bits per weight (4 for `int4-g128`), or null.
    public var bits: Double?
    /// Quantization group size, or null (per channel, float, unknown).
    public var groupSize: Int?
    /// Whether the format has no zero point, or null.
    public var symmetric: Bool?
    /// Exact bytes of the layer in this format.
    public var bytes: Int
    /// The layer's predicted loss increase.
    public var predictedLossDelta: Double
    /// The quantizer whose codes the prediction was measured for (`rtn`, `gptq`, `awq`), or null when the problem
    /// did not say (a PROBLEM.json, or a run measured before quantizers were recorded: those are `rtn`).
    public var quantizer: String?

    enum CodingKeys: String, CodingKey {
      case format, bits, symmetric, bytes, quantizer
      case groupSize = "group_size"
      case predictedLossDelta = "predicted_loss_delta"
    }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(format, forKey: .format)
      try container.encode(bits, forKey: .bits)
      try container.encode(groupSize, forKey: .groupSize)
      try container.encode(symmetric, forKey: .symmetric)
      try container.encode(bytes, forKey: .bytes)
      try container.encode(predictedLossDelta, forKey: .predictedLossDelta)
      try container.encode(quantizer, forKey: .quantizer)
    }
  }

  /// `supportedFormatVersion` (1); `decode(_:source:)` refuses any other.
  public var formatVersion = PlanDocument.supportedFormatVersion
  /// Model name, or null.
  public var model: String?
  /// SHA-256 of the model file, or null.
  public var modelSHA256: String?
  /// The budget the plan was made for.
  public var budgetBytes: Int
  /// Σ of the layers' bytes.
  public var totalBytes: Int
  /// 8 · total_bytes / Σ parameters of the planned layers.
  public var bitsPerWeight: Double
  /// `exact`, `waterfill`, `lagrange` or `greedy`.
  public var solver: String
  /// Name of the score that was minimised.
  public var score: String
  /// Σ of the layers' predicted loss increases.
  public var predictedLossDelta: Double
  /// One entry per planned layer, keyed by name.
  public var layers: [String: Layer]
  /// The runtime the formats and bytes are for (`--target`: `any`, `llama-cpp`, `mlx`, `gptqmodel`,
  /// `llm-compressor`); null in plans written before targets existed, which read as `any`.
  public var target: String?

  enum CodingKeys: String, CodingKey {
    case model, solver, score, layers, target
    case formatVersion = "format_version"
    case modelSHA256 = "model_sha256"
    case budgetBytes = "budget_bytes"
    case totalBytes = "total_bytes"
    case bitsPerWeight = "bits_per_weight"
    case predictedLossDelta = "predicted_loss_delta"
  }

  /// The document for `plan`, taking bits, group size and symmetry from the chosen options of `problem`.
  /// - Parameter target: the runtime the problem's formats and bytes are for (`"any"` when unknown).
  public init(plan: AllocationPlan, problem: AllocationProblem, target: String = "any") {
    precondition(
      plan.choices.count == problem.layers.count,
      "plan of \(plan.choices.count) layers for a problem of \(problem.layers.count)")
    model = problem.model
    modelSHA256 = problem.modelSHA256
    budgetBytes = plan.budgetBytes
    totalBytes = plan.totalBytes
    bitsPerWeight = plan.bitsPerWeight
    solver = plan.solver.rawValue
    score = plan.score
    predictedLossDelta = plan.predictedLoss
    var layers = [String: Layer]()
    for (layer, choice) in zip(problem.layers, plan.choices) {
      let option = layer.options[choice.optionIndex]
      layers[layer.name] = Layer(
        format: option.format, bits: option.bits, groupSize: option.groupSize, symmetric: option.symmetric,
        bytes: option.bytes, predictedLossDelta: option.loss, quantizer: option.quantizer)
    }
    self.layers = layers
    self.target = target
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(formatVersion, forKey: .formatVersion)
    try container.encode(model, forKey: .model)
    try container.encode(modelSHA256, forKey: .modelSHA256)
    try container.encode(budgetBytes, forKey: .budgetBytes)
    try container.encode(totalBytes, forKey: .totalBytes)
    try container.encode(bitsPerWeight, forKey: .bitsPerWeight)
    try container.encode(solver, forKey: .solver)
    try container.encode(score, forKey: .score)
    try container.encode(target, forKey: .target)
    try container.encode(predictedLossDelta, forKey: .predictedLossDelta)
    try container.encode(layers, forKey: .layers)
  }

  /// Pretty-printed JSON with sorted keys (stable diffs), ending in a newline.
  public func jsonData() -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Every value is a string, integer, finite double or bool, so encoding cannot fail.
    var data = try! encoder.encode(self)
    data.append(0x0A)
    return data
  }
}
