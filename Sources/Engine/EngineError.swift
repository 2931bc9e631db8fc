/// The one error type of the Engine module: bad weights, bad tokens, bad vectors, misuse of the operator seam.
///
/// Carries a code callers can switch on and a message naming the tensor and the shapes, e.g.
/// `shapeMismatch: tensor 'model.layers.3.self_attn.k_proj.weight' has shape [576, 576], expected [192, 576]`.
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong.
  public enum Code: String, Sendable {
    /// A tensor the configuration requires is absent.
    case missingTensor
    /// A tensor has the wrong shape or element count.
    case shapeMismatch
    /// The configuration itself is inconsistent (e.g. heads not divisible by kv heads, odd head dim).
    case badConfiguration
    /// A token id is outside `0..<vocab`, or the window is too short.
    case badTokens
    /// A name is not a tensor (or not a linear weight) of this model.
    case unknownTensor
    /// A pass that needs the backward pass (gradients, HVPs) was asked for while forward-only operators or an
    /// embedding source are installed (`LlamaModel.installOperator`); remove them first.
    case forwardOnly
    /// A tensor's dense values were released when an operator replaced it, and something needs them (reading or
    /// replacing the weight, or running the layer densely after `removeOperators()`).
    case weightReleased
    /// Stored scores are malformed (a `ReferenceDistribution`'s bytes: bad magic, version or length), or logits do
    /// not match the reference they are scored against.
    case badReference
  }

  public var code: Code
  public var message: String

  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  public var description: String { "\(code.rawValue): \(message)" }
}
