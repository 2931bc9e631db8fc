/// The one error type of the `HDF5` module: a code to switch on, and a message that names the file, the object
/// inside it, the C function that failed and HDF5's own description of the failure.
///
/// Every negative `herr_t`/`hid_t` returned by the C library becomes an `HDF5Error`; the library's automatic
/// error-stack printing is switched off, so nothing is written to stderr.
public struct HDF5Error: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong.
  public enum Code: String, Sendable, CaseIterable {
    /// The file could not be created, opened, flushed or closed.
    case io
    /// The file exists but is not an HDF5 file.
    case notHDF5
    /// A group, dataset or attribute that does not exist.
    case notFound
    /// The stored element type is not the one asked for (a string dataset read as `Double`, say).
    case typeMismatch
    /// A value count that disagrees with a shape, a rank we do not support, or a hyperslab outside the extent.
    case shapeMismatch
    /// A path or name we refuse: empty components, `.`/`..`, an embedded NUL; or writing to a read-only file.
    case invalidArgument
    /// Any other failing call into the library.
    case library
  }

  /// What went wrong, for callers to switch on.
  public var code: Code
  /// A one-line explanation naming the object, the C function and the remedy where there is one.
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
}
