import Foundation
import HDF5

/// The one error type of `Sensitivity`: a code to switch on and a message that names the layer, dataset or setting
/// concerned and what would fix it.
public struct SensitivityError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, one case per rule.
  public enum Code: String, Sendable, CaseIterable {
    /// Arguments that disagree: block sizes, matrix shapes, a tolerance out of range, an empty layout.
    case invalidArgument
    /// A model callback returned blocks of the wrong count or length.
    case shapeMismatch
    /// A NaN or infinity where a finite number is needed (an HVP, a gradient, a weight).
    case nonFinite
    /// A partial run file was made with other settings, another model or other calibration data.
    case provenanceMismatch
    /// A run file that is malformed, of another format version, or inconsistent with itself.
    case badRunFile
    /// The run file could not be read or written (the HDF5 or file-system error is in the message).
    case io
  }

  /// What went wrong; switch on this.
  public var code: Code
  /// One line naming the object and the remedy.
  public var message: String
  /// The file concerned, when there is one.
  public var path: String?

  /// Creates an error.
  /// - Parameters:
  ///   - code: the rule that was broken.
  ///   - message: one line naming the object and what is wrong.
  ///   - path: the file, when there is one.
  public init(_ code: Code, _ message: String, path: String? = nil) {
    self.code = code
    self.message = message
    self.path = path
  }

  /// `code: message (path)`.
  public var description: String { "\(code.rawValue): \(message)" + (path.map { " (\($0))" } ?? "") }

  /// Wraps an HDF5 failure as `.io` (or `.badRunFile` when the file's content is at fault: always when
  /// `reading` an existing file, whose open fails only when it is damaged or truncated).
  static func wrapping(_ error: HDF5Error, path: String, reading: Bool = false) -> SensitivityError {
    // The HDF5 error's own path is this one: name it once.
    let text = error.path == nil || error.path == path ? error.message : error.description
    switch error.code {
    case .notHDF5, .notFound, .typeMismatch, .shapeMismatch:
      return SensitivityError(.badRunFile, text, path: path)
    case _ where reading && FileManager.default.fileExists(atPath: path):
      return SensitivityError(.badRunFile, "damaged or truncated HDF5 file: \(text)", path: path)
    default:
      return SensitivityError(.io, text, path: path)
    }
  }
}
