/// The one error type of `ModelIO`: a code to switch on, and a message that names the file, the tensor or key,
/// the byte offset and what is wrong.
public struct ModelIOError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, one case per validation rule.
  public enum Code: String, Sendable, CaseIterable {
    /// The file could not be opened, mapped or read.
    case io
    /// The file ends before a length, header or tensor that it announces.
    case truncated
    /// The first bytes are not those of the format.
    case badMagic
    /// A format version we do not read.
    case unsupportedVersion
    /// A header that is not well-formed (bad JSON, wrong key types, bad UTF-8, a value of the wrong kind).
    case badHeader
    /// A header length or string length beyond the format's limits.
    case headerTooLarge
    /// A count (tensors, metadata entries, array elements, dimensions) larger than the bytes left could hold.
    case absurdCount
    /// A tensor element type we do not know.
    case unknownDType
    /// A data offset or range outside the data section.
    case outOfBounds
    /// A tensor whose byte length disagrees with its shape and element type.
    case sizeMismatch
    /// Two tensors whose data ranges overlap.
    case overlap
    /// Misaligned data (GGUF alignment rule).
    case misaligned
    /// A shape with a negative, zero-product-overflowing or otherwise impossible dimension.
    case badShape
    /// The same tensor or key named twice.
    case duplicate
    /// `config.json` missing, malformed or inconsistent with the weights.
    case badConfig
    /// A tensor the architecture needs is absent.
    case missingTensor
    /// An architecture, tokenizer type or pre-tokenizer we do not support.
    case unsupported
    /// The tokenizer data is missing or malformed.
    case badTokenizer
    /// A stored number the format does not allow (a non-finite or negative importance, an impossible count).
    case badValue
    /// An output file could not be created where it was asked for (a folder, a device, a missing folder).
    case cannotCreate
    /// Writing an output failed part-way (a full disk); the temporary file is removed and the target left as it was.
    case writeFailed
  }

  public var code: Code
  public var message: String
  /// The file concerned, when there is one.
  public var path: String?

  public init(_ code: Code, _ message: String, path: String? = nil) {
    self.code = code
    self.message = message
    self.path = path
  }

  public var description: String { "\(code.rawValue): \(message)" + (path.map { " (\($0))" } ?? "") }

  /// The same error with `path` filled in when it was not set.
  public func at(_ path: String) -> ModelIOError {
    var copy = self
    if copy.path == nil { copy.path = path }
    return copy
  }
}
