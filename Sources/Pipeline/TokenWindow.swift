import Foundation
import ModelIO
import TensorCore

/// The evaluation protocol of DESIGN.md: `[BOS]` followed by the first `count − 1` tokens of the text.
public enum TokenWindow {
  /// Characters tokenized per window token requested; the reference protocol reads the first 20,000
  /// characters for 512 tokens (≈ 39 per token), far more than a token ever spans.
  static let charactersPerToken = 40

  /// Tokenizes the start of `text` and returns `[BOS] + first (count − 1) ids` (no BOS when the tokenizer has
  /// none: then the first `count` ids).
  /// - Throws: `WindowError` when the text is too short to give `count` tokens.
  /// - Parameter source: the option and file the text came from (`--text 'pp.txt'`), for the message.
  public static func make(text: String, tokenizer: BPETokenizer, count: Int, source: String? = nil) throws -> [Int] {
    precondition(count >= 2, "a window needs at least 2 tokens, got \(count)")
    let scalars = text.unicodeScalars
    // Saturating: a count near Int.max must give an error below, not an overflow trap here.
    let (scaled, overflow) = count.multipliedReportingOverflow(by: charactersPerToken)
    let prefixLength = max(20_000, overflow ? Int.max : scaled)
    let prefix = String(String.UnicodeScalarView(scalars.prefix(prefixLength)))
    let ids = tokenizer.encode(prefix)
    var window: [Int] = []
    if let bos = tokenizer.bosTokenId { window.append(bos) }
    window += ids.prefix(count - window.count)
    guard window.count == count else {
      throw WindowError(
        message: "\(source ?? "text"): the text gives only \(window.count) tokens (BOS included), "
          + "--tokens asks for \(count); use a longer text or fewer tokens")
    }
    return window
  }

  /// Reads a UTF-8 text file.
  /// - Parameter option: the option that named it (`--text`, `--calib`), for messages.
  /// - Throws: `FileCheckError` when it is missing, a folder or a device; `WindowError` when it is not UTF-8.
  public static func readText(_ path: String, option: String = "--text") throws -> String {
    try FileChecks.checkInput(option: option, path: path)
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FileCheckError(.missingInput, option: option, path: path, "cannot be read")
    }
    guard let text = String(validating: data, as: UTF8.self) else {
      throw WindowError(message: "\(option) '\(path)': not UTF-8 text")
    }
    return text
  }
}

/// A text that cannot give the window asked for.
public struct WindowError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { message }
}
