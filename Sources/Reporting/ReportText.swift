import Foundation

/// Escaping and number formatting shared by the Markdown and HTML renderers. Every piece of text that comes from a
/// file (layer names, paths, labels) passes through `html(_:)` or `codeSpan(_:)` before it reaches the output.
public enum ReportText {
  /// `text` safe inside HTML/SVG element content and double- or single-quoted attribute values.
  static func html(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default:
        // Control characters other than tab/newline are not allowed in XML (SVG); show them as U+FFFD.
        if c.value < 0x20 && c != "\t" && c != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
      }
    }
    return out
  }

  /// `text` as a Markdown code span that also survives inside a GitHub table cell: `|` escaped, a backtick fence
  /// longer than any run of backticks inside, newlines flattened.
  static func codeSpan(_ text: String) -> String {
    let flat = text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "\\|")
    var longest = 0, run = 0
    for c in flat {
      run = c == "`" ? run + 1 : 0
      longest = max(longest, run)
    }
    let fence = String(repeating: "`", count: longest + 1)
    let pad = flat.hasPrefix("`") || flat.hasSuffix("`") ? " " : ""
    return fence + pad + flat + pad + fence
  }

  /// Plain Markdown text (outside code): the characters that start markup are backslash-escaped.
  static func markdown(_ text: String) -> String {
    var out = ""
    for c in text.replacingOccurrences(of: "\n", with: " ") {
      if "\\`*_[]<>|#".contains(c) { out.append("\\") }
      out.append(c)
    }
    return out
  }

  /// A POSIX shell word: unchanged when it holds only safe characters, else single-quoted.
  static func shellWord(_ word: String) -> String {
    let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !word.isEmpty && word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  /// Four significant digits (`0.001256`, `3548`, `1.2e-07`); `—` for NaN or infinity.
  static func sig(_ x: Double, _ digits: Int = 4) -> String {
    guard x.isFinite else { return "—" }
    return String(format: "%.\(digits)g", x)
  }

  /// `digits` decimals; `—` for NaN or infinity.
  static func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "—" }
    return String(format: "%.\(digits)f", x)
  }

  /// `value [low, high]` with `digits` decimals; the bracket is left out when the bounds are not known.
  static func interval(_ value: Double, _ low: Double, _ high: Double, _ digits: Int) -> String {
    if low.isFinite && high.isFinite { return "\(fixed(value, digits)) [\(fixed(low, digits)), \(fixed(high, digits))]" }
    return fixed(value, digits)
  }

  /// `1,234,567` (the command line's summaries use it too).
  public static func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
      out.append(c)
    }
    return (n < 0 ? "-" : "") + out
  }

  /// Bytes with MiB beside: `59,719,680 B (56.95 MiB)`.
  static func bytes(_ n: Int) -> String { "\(grouped(n)) B (\(fixed(Double(n) / 1_048_576, 2)) MiB)" }
}
