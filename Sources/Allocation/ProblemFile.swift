import Foundation

/// `PROBLEM.json`: an allocation problem on its own, without a model (see Documentation/ProblemFormat.md).
///
/// Each candidate carries `bytes` and the default score `error`, and optionally more named scores under `scores`;
/// `problem(score:)` picks one of them as the loss to minimise.
public struct ProblemFile: Sendable, Equatable, Codable {
  /// One candidate format of one layer.
  public struct Candidate: Sendable, Equatable, Codable {
    /// Format name in the project grammar.
    public var format: String
    /// Exact bytes of the layer in this format.
    public var bytes: Int
    /// The default score (predicted loss increase), used by `--score error`.
    public var error: Double?
    /// Nominal bits per weight, when known.
    public var bits: Double?
    /// Quantization group size (`group_size`), when known.
    public var groupSize: Int?
    /// Whether the format has no zero point, when known.
    public var symmetric: Bool?
    /// More scores by name (`hessian`, `fisher`, `output`, ...).
    public var scores: [String: Double]?

    enum CodingKeys: String, CodingKey {
      case format, bytes, error, bits, scores, symmetric
      case groupSize = "group_size"
    }
  }

  /// One layer and its candidates.
  public struct Layer: Sendable, Equatable, Codable {
    /// Hugging Face module path.
    public var name: String
    /// Number of weights.
    public var params: Int
    /// Sensitivity sᵢ, for the water-filling solver.
    public var sensitivity: Double?
    /// Weight variance σᵢ², for the water-filling solver.
    public var variance: Double?
    /// The formats this layer may take.
    public var candidates: [Candidate]
  }

  /// The version this tool reads and writes.
  public static let formatVersion = 1
  /// The file's `format_version`.
  public var formatVersion: Int
  /// Model name, when known.
  public var model: String?
  /// SHA-256 of the model file, when known.
  public var modelSHA256: String?
  /// The layers, in order.
  public var layers: [Layer]
  /// Groups of exact layer names that must share one format.
  public var ties: [[String]]?

  enum CodingKeys: String, CodingKey {
    case model, layers, ties
    case formatVersion = "format_version"
    case modelSHA256 = "model_sha256"
  }

  /// Every score name some candidate carries, `error` first when present.
  public var scoreNames: [String] {
    var names = Set<String>()
    var hasError = false
    for layer in layers {
      for candidate in layer.candidates {
        if candidate.error != nil { hasError = true }
        candidate.scores.map { names.formUnion($0.keys) }
      }
    }
    return (hasError ? ["error"] : []) + names.subtracting(["error"]).sorted()
  }

  /// The allocation problem with `score` as the loss of every option and the file's ties as constraints.
  /// - Throws: `.unknownScore` naming the first candidate without that score; the problem's validation errors.
  public func problem(score: String = "error") throws(AllocationError) -> AllocationProblem {
    var result = [AllocationProblem.Layer]()
    for layer in layers {
      var options = [AllocationProblem.Option]()
      for candidate in layer.candidates {
        guard let loss = score == "error" ? (candidate.error ?? candidate.scores?["error"]) : candidate.scores?[score]
        else {
          throw AllocationError(
            .unknownScore,
            "layer '\(layer.name)', format '\(candidate.format)' has no score '\(score)' "
              + "(scores in this file: \(scoreNames.joined(separator: ", ")))")
        }
        options.append(
          .init(
            format: candidate.format, bytes: candidate.bytes, loss: loss, bits: candidate.bits,
            groupSize: candidate.groupSize, symmetric: candidate.symmetric))
      }
      result.append(
        .init(
          name: layer.name, parameterCount: layer.params, options: options, sensitivity: layer.sensitivity,
          variance: layer.variance))
    }
    let problem = AllocationProblem(
      layers: result, constraints: (ties ?? []).map { .tieNames($0) }, score: score, model: model,
      modelSHA256: modelSHA256)
    try problem.validate()
    return problem
  }

  /// The file that describes `problem` (its options' losses as `error`; pattern constraints are not stored).
  public init(_ problem: AllocationProblem) {
    formatVersion = Self.formatVersion
    model = problem.model
    modelSHA256 = problem.modelSHA256
    layers = problem.layers.map { layer in
      Layer(
        name: layer.name, params: layer.parameterCount, sensitivity: layer.sensitivity, variance: layer.variance,
        candidates: layer.options.map {
          Candidate(
            format: $0.format, bytes: $0.bytes, error: $0.loss, bits: $0.bits, groupSize: $0.groupSize,
            symmetric: $0.symmetric)
        })
    }
    let tieLists = problem.constraints.compactMap { if case .tieNames(let names) = $0 { names } else { nil } }
    ties = tieLists.isEmpty ? nil : tieLists
  }
}
