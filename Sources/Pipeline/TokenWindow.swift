import Foundation
import ModelIO

/// The evaluation protocol of DESIGN.md: `[BOS]` followed by the first `count − 1` tokens of the text.
public enum TokenWindow {
  /// Characters tokenized per window token requested; the reference protocol reads the first 20,000
  /// characters for 512 tokens (≈ 39 per token), far more than a token ever spans.
  static let charactersPerToken = 40

  /// Tokenizes the start of `text` and returns `[BOS] + first (count − 1) ids` (no BOS when the tokenizer has
  /// none: then the first `count` ids).
  /// - Throws: `WindowError` when the text is too short to give `count` tokens.
  public static func make(text: String, tokenizer: BPETokenizer, count: Int) throws -> [Int] {
    precondition(count >= 2, "a window needs at least 2 tokens, got \(count)")
    let scalars = text.unicodeScalars
    let prefixLength = max(20_000, count * charactersPerToken)
    let prefix = String(String.UnicodeScalarView(scalars.prefix(prefixLength)))
    let ids = tokenizer.encode(prefix)
    var window: [Int] = []
    if let bos = tokenizer.bosTokenId { window.append(bos) }
    window += ids.prefix(count - window.count)
    guard window.count == count else {
      throw WindowError(message: "the text gives only \(window.count) tokens, \(count) were asked for")
    }
    return window
  }

  /// Reads a UTF-8 text file.
  public static func readText(_ path: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw WindowError(message: "cannot read text file '\(path)': \(error.localizedDescription)")
    }
  }
}

/// A text that cannot give the window asked for.
public struct WindowError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { "text: \(message)" }
}
