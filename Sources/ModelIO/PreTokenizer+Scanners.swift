/// Hand-written scanners for the pre-tokenizer regexes. Each follows leftmost-first alternation exactly: at every
/// position it tries the alternatives in the regex's order and takes the first that matches, with the greedy
/// lengths and backtracking results worked out by hand (comments give the alternative each branch implements).
extension PreTokenizer {
  /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` over `range`, whose end
  /// counts as the end of the input (lookahead does not see past it).
  static func scanGPT2(
    _ s: [Unicode.Scalar], _ c: [ScalarClass], _ range: Range<Int>, into words: inout [Range<Int>]
  ) {
    let end = range.upperBound
    var i = range.lowerBound
    @inline(__always) func run(_ from: Int, _ cls: ScalarClass) -> Int {
      var j = from
      while j < end && c[j] == cls { j += 1 }
      return j
    }
    while i < end {
      // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
      let contraction = contractionLength(s, at: i, end: end, caseInsensitive: false)
      if contraction > 0 {
        words.append(i..<(i + contraction))
        i += contraction
        continue
      }
      // ' ?' prefix: only U+0020, and only when the next scalar starts the class run
      let hasSpace = s[i] == " " && i + 1 < end && c[i + 1] != .whitespace
      let first = hasSpace ? i + 1 : i
      switch c[first] {
      case .letter, .number, .other:
        // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+'
        let j = run(first, c[first])
        words.append(i..<j)
        i = j
      case .whitespace:
        // '\s+(?!\S)' backs off one scalar when a non-space follows; '\s+' takes a lone one
        let j = run(i, .whitespace)
        let stop = (j < end && j - i > 1) ? j - 1 : j
        words.append(i..<stop)
        i = stop
      }
    }
  }

  /// The llama3 regex (`maxDigits` 3) or the qwen2 regex (`maxDigits` 1):
  /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
  static func scanLlama3(
    _ s: [Unicode.Scalar], _ c: [ScalarClass], maxDigits: Int, into words: inout [Range<Int>]
  ) {
    let end = s.count
    var i = 0
    @inline(__always) func isNewline(_ k: Int) -> Bool { s[k] == "\n" || s[k] == "\r" }
    @inline(__always) func run(_ from: Int, _ cls: ScalarClass) -> Int {
      var j = from
      while j < end && c[j] == cls { j += 1 }
      return j
    }
    while i < end {
      // (?i:'s|'t|'re|'ve|'m|'ll|'d)
      let contraction = contractionLength(s, at: i, end: end, caseInsensitive: true)
      if contraction > 0 {
        words.append(i..<(i + contraction))
        i += contraction
        continue
      }
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if c[i] == .letter {
        let j = run(i, .letter)
        words.append(i..<j)
        i = j
        continue
      }
      if c[i] != .number && !isNewline(i) && i + 1 < end && c[i + 1] == .letter {
        let j = run(i + 1, .letter)
        words.append(i..<j)
        i = j
        continue
      }
      // \p{N}{1,3} (llama3) or \p{N} (qwen2)
      if c[i] == .number {
        let j = min(run(i, .number), i + maxDigits)
        words.append(i..<j)
        i = j
        continue
      }
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      let first = (s[i] == " " && i + 1 < end && c[i + 1] == .other) ? i + 1 : i
      if c[first] == .other {
        var j = run(first, .other)
        while j < end && isNewline(j) { j += 1 }
        words.append(i..<j)
        i = j
        continue
      }
      // c[i] is whitespace here. '\s*[\r\n]+' ends just after the run's last CR/LF, if it has one.
      let j = run(i, .whitespace)
      var lastNewline = -1
      for k in i..<j where isNewline(k) { lastNewline = k }
      let stop: Int
      if lastNewline >= 0 {
        stop = lastNewline + 1
      } else {
        // '\s+(?!\S)' backs off one scalar when a non-space follows; '\s+' takes a lone one
        stop = (j < end && j - i > 1) ? j - 1 : j
      }
      words.append(i..<stop)
      i = stop
    }
  }

  /// Length (2 or 3) of the English contraction `'s 't 'm 'd 're 've 'll` at `i`, or 0.
  @inline(__always)
  static func contractionLength(_ s: [Unicode.Scalar], at i: Int, end: Int, caseInsensitive: Bool) -> Int {
    guard s[i] == "'", i + 1 < end else { return 0 }
    @inline(__always) func lower(_ k: Int) -> UInt32 {
      let v = s[k].value
      return caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 0x20 : v
    }
    let a = lower(i + 1)
    if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
    guard i + 2 < end else { return 0 }
    let b = lower(i + 2)
    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
    return 0
  }
}
