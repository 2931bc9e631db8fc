/// The one error type of the Quantization module.
///
/// Carries a `code` callers can switch on and a message that names the offending value and the remedy, in the
/// style of NIO's `FileSystemError` (STYLE §5).
public struct QuantizationError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong.
  public enum Code: String, Sendable, Codable {
    /// A format name does not follow the grammar (`int4-g128`, `q4_k`, ...).
    case badFormatName
    /// The format cannot hold a tensor of this shape (block or group size does not divide the row length).
    case unsupportedShape
    /// A byte buffer has the wrong length for its declared format and shape.
    case sizeMismatch
    /// A calibration setting is out of range (percentile outside (0, 100], empty search grid, ...).
    case badCalibration
    /// A fixture or serialized tensor is malformed.
    case badData
    /// The format has no packed kernel for the requested activation precision (`PackedTensor.executionPath`).
    case noPackedKernel
  }

  /// What went wrong, for `switch`.
  public var code: Code
  /// Human-readable detail: the value seen, what was expected, and how to fix it.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// `"code: message"`.
  public var description: String { "\(code.rawValue): \(message)" }
}
