/// The one error type of the Validation module: a plan that does not fit the model, a format without a packed
/// kernel, a text too short for the windows asked for, bad settings.
///
/// Messages are one line and name the layer, format, file or option, e.g.
/// `unknownLayer: the plan names 'model.layers.40.mlp.down_proj', which the model lacks (30 blocks)`.
public struct PlanValidationError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong.
  public enum Code: String, Sendable {
    /// The plan was made for another model (its `model_sha256` differs from the model's).
    case modelMismatch
    /// The plan names a layer the model does not have.
    case unknownLayer
    /// The plan names a format the grammar does not know, or one that cannot take the layer's shape.
    case unknownFormat
    /// A format has no packed kernel for the activations asked for.
    case noPackedKernel
    /// The evaluation text gives fewer tokens than the windows need.
    case textTooShort
    /// An option is out of range (windows, tokens, baselines, bootstrap count).
    case badSettings
    /// A cached reference distribution does not match what it claims to be.
    case badCache
  }

  public var code: Code
  public var message: String

  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  public var description: String { "\(code.rawValue): \(message)" }
}
