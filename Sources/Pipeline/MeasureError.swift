/// The error of `bitplan measure`'s own input checks: settings that disagree with each other or with the model,
/// texts too short for the windows asked for, candidate lists that fit no layer. Errors from reading the model
/// (`ModelIOError`), the engine (`EngineError`), quantizing (`QuantizationError`) and the run store
/// (`SensitivityError`) pass through unchanged.
public struct MeasureError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong; switch on this.
  public enum Code: String, Sendable, CaseIterable {
    /// A setting out of range or inconsistent with another (`--hvp-tokens` above `--tokens`, no probes).
    case badSettings
    /// A calibration or audit text that gives fewer tokens than the windows need.
    case textTooShort
    /// A candidate format that is malformed or fits none of the model's linear layers.
    case badCandidate
    /// A file that cannot be read (the calibration or audit text, the model's files for hashing).
    case io
  }

  /// What went wrong.
  public var code: Code
  /// One line naming the setting, file or format and the remedy.
  public var message: String
  /// The file concerned, when there is one.
  public var path: String?

  /// Creates an error.
  /// - Parameters:
  ///   - code: the rule that was broken.
  ///   - message: one line naming the object and what to do.
  ///   - path: the file, when there is one.
  public init(_ code: Code, _ message: String, path: String? = nil) {
    self.code = code
    self.message = message
    self.path = path
  }

  /// `code: message (path)`.
  public var description: String { "\(code.rawValue): \(message)" + (path.map { " (\($0))" } ?? "") }
}
