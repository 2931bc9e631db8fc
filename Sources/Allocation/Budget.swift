/// A memory budget as the user states it: total bytes, or bits per weight over the problem's quantizable weights.
public enum Budget: Sendable, Equatable {
  case bytes(Int)
  case bitsPerWeight(Double)

  /// Unit suffixes and their byte multipliers; binary (KiB, MiB, GiB) and decimal (KB, MB, GB).
  static let units: [(suffix: String, multiplier: Double)] = [
    ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
    ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
  ]

  /// Reads a byte budget: `123456` (bytes), `80MiB`, `80MB`, `1.5GiB`, `512KiB`, `100B`. Units are
  /// case-sensitive (`Mb` would be megabits); a fractional size is floored to whole bytes.
  /// - Throws: `.badBudget` for anything else, negative or non-finite values, or sizes beyond Int.
  public static func parse(_ text: String) throws(AllocationError) -> Budget {
    let trimmed = text.trimmingSpaces
    var number = Substring(trimmed)
    var multiplier = 1.0
    for unit in units where trimmed.hasSuffix(unit.suffix) {
      number = trimmed.dropLast(unit.suffix.count)
      multiplier = unit.multiplier
      break
    }
    let digits = number.trimmingSpaces
    if multiplier == 1, let bytes = Int(digits), bytes >= 0 { return .bytes(bytes) }
    guard digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(digits),
      value.isFinite, value >= 0, value * multiplier < 9.2e18
    else {
      throw AllocationError(
        .badBudget, "cannot read budget '\(text)'; write bytes (123456) or a size such as 80MiB, 80MB, 1.5GiB")
    }
    return .bytes(Int((value * multiplier).rounded(.down)))
  }

  /// Reads a `--bpw` value: a finite positive number of bits per weight.
  public static func bitsPerWeight(_ text: String) throws(AllocationError) -> Budget {
    guard let value = Double(text.trimmingSpaces), value.isFinite, value > 0 else {
      throw AllocationError(.badBudget, "bits per weight '\(text)' is not a positive number")
    }
    return .bitsPerWeight(value)
  }

  /// Total bytes: the byte budget itself, or ⌊bpw · parameters / 8⌋.
  public func bytes(parameterCount: Int) throws(AllocationError) -> Int {
    switch self {
    case .bytes(let bytes): return bytes
    case .bitsPerWeight(let bpw):
      let value = (bpw * Double(parameterCount) / 8).rounded(.down)
      guard value < 9.2e18 else { throw AllocationError(.badBudget, "\(bpw) bits per weight overflows the byte count") }
      return Int(value)
    }
  }
}

extension StringProtocol {
  /// The text without leading and trailing spaces and tabs.
  var trimmingSpaces: String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
      return ""
    }
    return String(self[first...last])
  }
}
