/// The split of raw text into words that a byte-level BPE model declares (GGUF `tokenizer.ggml.pre`, or the
/// `pre_tokenizer` of a Hugging Face `tokenizer.json`). BPE merges never cross a word boundary, so a wrong split
/// gives wrong ids even with the right vocabulary; an unknown name is an error, never a silent fallback.
///
/// Each case is one regular expression (plus, for `smollm`, a digit split before it), written here as a
/// hand-written scanner over Unicode scalars. `splitReference` runs the same expressions through Swift `Regex`;
/// the tests compare the two and check both against Hugging Face `tokenizers` output.
///
/// | case | regex (Hugging Face spelling) | llama.cpp `pre` names |
/// | --- | --- | --- |
/// | `gpt2` | `'s\|'t\|'re\|'ve\|'m\|'ll\|'d\| ?\p{L}+\| ?\p{N}+\| ?[^\s\p{L}\p{N}]+\|\s+(?!\S)\|\s+` | gpt-2 (and our alias gpt2), phi-2, mpt, olmo |
/// | `smollm` | every `\p{N}` isolated (HF `Digits(individual_digits: true)`), then `gpt2` on the rest | smollm, starcoder, refact, command-r, codeshell |
/// | `llama3` | `(?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d)\|[^\r\n\p{L}\p{N}]?\p{L}+\|\p{N}{1,3}\| ?[^\s\p{L}\p{N}]+[\r\n]*\|\s*[\r\n]+\|\s+(?!\S)\|\s+` | llama3, llama-v3, llama-bpe, falcon3, dbrx, smaug-bpe |
/// | `qwen2` | as `llama3` with `\p{N}` (one digit) instead of `\p{N}{1,3}` | qwen2, deepseek-r1-qwen, stablelm2, megrez |
///
/// Character classes: `\p{L}` is general category L*, `\p{N}` is Nd/Nl/No, `\s` is the Unicode `White_Space`
/// property. A scalar that is none of these (punctuation, symbols, marks, controls, unassigned) is "other", as in
/// the regex; llama.cpp instead cuts unassigned code points into single-scalar words, which no text we test hits.
public enum PreTokenizer: String, Sendable, CaseIterable, Codable {
  case gpt2
  case smollm
  case llama3
  case qwen2

  /// The GGUF `tokenizer.ggml.pre` values accepted for each case, as llama.cpp (`llama-vocab.cpp`) maps them.
  public static let ggufNames: [String: PreTokenizer] = [
    "gpt-2": .gpt2, "gpt2": .gpt2, "phi-2": .gpt2, "mpt": .gpt2, "olmo": .gpt2,
    "smollm": .smollm, "starcoder": .smollm, "refact": .smollm, "command-r": .smollm, "codeshell": .smollm,
    "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3, "falcon3": .llama3, "dbrx": .llama3,
    "smaug-bpe": .llama3,
    "qwen2": .qwen2, "deepseek-r1-qwen": .qwen2, "stablelm2": .qwen2, "megrez": .qwen2,
  ]

  /// The case for a GGUF `tokenizer.ggml.pre` value. Throws `.unsupported`, naming the supported values, for
  /// anything else (including "default" and a missing value, where llama.cpp guesses).
  public init(ggufName name: String) throws(ModelIOError) {
    guard let known = PreTokenizer.ggufNames[name] else {
      let supported = PreTokenizer.ggufNames.keys.sorted().joined(separator: ", ")
      throw ModelIOError(.unsupported, "pre-tokenizer '\(name)' is not supported; supported: \(supported)")
    }
    self = known
  }

  /// Whether llama.cpp looks a whole word up in the vocabulary before merging (`ignore_merges`), as it does for
  /// the llama3 family; for every other case the merges alone decide.
  public var ignoresMergesByDefault: Bool { self == .llama3 }

  /// The main regular expression, in the Hugging Face spelling (`(?i:...)` for case-insensitive contractions).
  public var pattern: String {
    switch self {
    case .gpt2, .smollm: return PreTokenizer.gpt2Pattern
    case .llama3: return PreTokenizer.llama3Pattern
    case .qwen2: return PreTokenizer.qwen2Pattern
    }
  }

  static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
  static let llama3Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
  static let qwen2Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

  /// Splits `scalars` into words: consecutive, non-empty ranges that cover `scalars` exactly.
  public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
    var words: [Range<Int>] = []
    words.reserveCapacity(scalars.count / 3 + 1)
    let classes = scalars.map(ScalarClass.init)
    switch self {
    case .gpt2:
      PreTokenizer.scanGPT2(scalars, classes, 0..<scalars.count, into: &words)
    case .smollm:
      var start = 0
      for i in scalars.indices where classes[i] == .number {
        if start < i { PreTokenizer.scanGPT2(scalars, classes, start..<i, into: &words) }
        words.append(i..<(i + 1))
        start = i + 1
      }
      if start < scalars.count { PreTokenizer.scanGPT2(scalars, classes, start..<scalars.count, into: &words) }
    case .llama3:
      PreTokenizer.scanLlama3(scalars, classes, maxDigits: 3, into: &words)
    case .qwen2:
      PreTokenizer.scanLlama3(scalars, classes, maxDigits: 1, into: &words)
    }
    return words
  }

  /// Splits `text` into words (substrings that concatenate to `text`).
  public func split(_ text: String) -> [String] {
    let scalars = Array(text.unicodeScalars)
    return split(scalars).map { range in
      var view = String.UnicodeScalarView()
      view.append(contentsOf: scalars[range])
      return String(view)
    }
  }
}

/// The regex character class of one scalar: `\p{L}`, `\p{N}`, `\s`, or none of them.
enum ScalarClass: UInt8, Sendable {
  case letter, number, whitespace, other

  init(_ scalar: Unicode.Scalar) {
    if scalar.value < 128 {
      self = ScalarClass.ascii[Int(scalar.value)]
      return
    }
    if scalar.properties.isWhitespace {
      self = .whitespace
      return
    }
    switch scalar.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
    case .decimalNumber, .letterNumber, .otherNumber: self = .number
    default: self = .other
    }
  }

  /// The classes of the 128 ASCII scalars (tab, LF, VT, FF, CR and space are `White_Space`).
  static let ascii: [ScalarClass] = (0..<128).map { value -> ScalarClass in
    switch UInt8(value) {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
    case 0x09...0x0D, 0x20: return .whitespace
    default: return .other
    }
  }
}
