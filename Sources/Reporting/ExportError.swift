/// A plan that a runtime cannot express, or a model that does not fit the plan: one line naming the layer and the
/// format (`model.layers.0.self_attn.q_proj [576, 576]: q4_k needs rows of a multiple of 256 values, …`).
///
/// Every exporter refuses before it returns any text, so a refused export never leaves a partial file.
public struct ExportError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong; the command line maps every code to the usage exit status.
  public enum Code: String, Sendable, CaseIterable {
    /// A format the runtime cannot store at all (an `int` format for llama.cpp, `q4_k` for MLX, int5 for
    /// GPTQModel), or a name that is no format.
    case unsupportedFormat
    /// A format the runtime stores, but not for this layer's shape (a K-quant on a 576-wide row).
    case unsupportedShape
    /// A plan layer the model does not have, or one the runtime never quantizes.
    case unknownLayer
    /// Siblings that the runtime loads fused (`q/k/v_proj`, `gate/up_proj` of one block) with different formats.
    case fusedMismatch
    /// A model the exporter cannot read for this runtime (a safetensors folder where llama.cpp needs a GGUF), or
    /// a tensor name a recipe cannot spell.
    case unsupportedModel
  }

  /// What went wrong.
  public var code: Code
  /// One line naming the layer and the format, and what would work instead.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// `code: message`.
  public var description: String { "\(code.rawValue): \(message)" }
}
