/// The slow, obvious twin of `PreTokenizer.split`: the same regular expressions, run by Swift `Regex` with
/// Unicode-scalar semantics. Only the tests call it (it is about 100 times slower than the scanners).
extension PreTokenizer {
  /// Splits `text` as `split` does, by matching `pattern` with Swift `Regex` (after isolating every `\p{N}`
  /// scalar for `smollm`). Text between matches, which these patterns never leave, would be kept as words too,
  /// as Hugging Face's `Split(behavior: isolated)` keeps it.
  public func splitReference(_ text: String) throws(ModelIOError) -> [String] {
    let regex: Regex<AnyRegexOutput>
    do {
      regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
    } catch {
      throw ModelIOError(.unsupported, "Swift Regex rejects the \(rawValue) pattern: \(error)")
    }
    var pieces: [String] = []
    for segment in segments(text) {
      if segment.isDigit {
        pieces.append(segment.text)
        continue
      }
      let scalars = segment.text.unicodeScalars
      var last = scalars.startIndex
      for match in segment.text.matches(of: regex) {
        if match.range.isEmpty { continue }
        if last < match.range.lowerBound { pieces.append(String(scalars[last..<match.range.lowerBound])) }
        pieces.append(String(scalars[match.range]))
        last = match.range.upperBound
      }
      if last < scalars.endIndex { pieces.append(String(scalars[last..<scalars.endIndex])) }
    }
    return pieces
  }

  /// `text` cut before and after every `\p{N}` scalar for `smollm` (Hugging Face `Digits(individual_digits)`);
  /// the whole text as one segment for the other cases.
  private func segments(_ text: String) -> [(text: String, isDigit: Bool)] {
    guard self == .smollm else { return [(text, false)] }
    var result: [(text: String, isDigit: Bool)] = []
    var current = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      let isNumber: Bool
      switch scalar.properties.generalCategory {
      case .decimalNumber, .letterNumber, .otherNumber: isNumber = true
      default: isNumber = false
      }
      if isNumber {
        if !current.isEmpty { result.append((String(current), false)) }
        current = String.UnicodeScalarView()
        result.append((String(scalar), true))
      } else {
        current.append(scalar)
      }
    }
    if !current.isEmpty { result.append((String(current), false)) }
    return result
  }
}
