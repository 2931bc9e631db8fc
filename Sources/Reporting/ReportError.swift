/// Inputs of a report that do not belong together: a plan or validation made for another model, a plan naming layers
/// the run lacks, a validation of another plan. `description` is one line naming the option and the file.
public struct ReportError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The option whose file is wrong (`--plan`, `--validation`, or `RUN.h5` for what the run file holds).
  public var option: String
  /// The file as the user named it (or the run file for a document stored in it).
  public var path: String
  /// What is wrong.
  public var message: String

  /// Creates an error.
  public init(option: String, path: String, _ message: String) {
    self.option = option
    self.path = path
    self.message = message
  }

  /// `option 'path': message`.
  public var description: String { "\(option) '\(path)': \(message)" }
}
