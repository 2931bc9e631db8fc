import Foundation
import Testing
import _TestSupport

@testable import ModelIO

/// Golden data written by `scripts/tokenizer_golden.py` from Hugging Face `tokenizers` (Rust), and helpers shared
/// by the tokenizer tests.
struct TokenizerGolden: Decodable {
  static let magic = "bitplan-tokenizer-golden"
  static let version = 1

  struct Case: Decodable {
    var name: String
    /// The text, or `nil` for a window of a shared data file (`source`, first `characters` scalars).
    var text: String?
    var source: String?
    var characters: Int?
    var ids: [Int]
  }

  struct Split: Decodable {
    var text: String
    var gpt2: [String]
    var smollm: [String]
    var llama3: [String]
    var qwen2: [String]

    func words(_ pre: PreTokenizer) -> [String] {
      switch pre {
      case .gpt2: return gpt2
      case .smollm: return smollm
      case .llama3: return llama3
      case .qwen2: return qwen2
      }
    }
  }

  var magic: String
  var version: Int
  var cases: [Case]
  var splits: [Split]

  /// The committed golden file; fails the calling test with "re-run scripts/tokenizer_golden.py" on a mismatch.
  static func load() throws -> TokenizerGolden {
    let url = try #require(
      Bundle.module.url(forResource: "smollm2-golden", withExtension: "json", subdirectory: "Fixtures/tokenizer"))
    let golden = try JSONDecoder().decode(TokenizerGolden.self, from: Data(contentsOf: url))
    try #require(
      golden.magic == magic && golden.version == version,
      "golden file is \(golden.magic) v\(golden.version), expected v\(version): re-run scripts/tokenizer_golden.py")
    return golden
  }
}

/// The shared text data (`shared/data` beside the repository, as in DESIGN.md).
enum TokenizerData {
  static let directory = TestModels.sharedData

  static var available: Bool { FileManager.default.fileExists(atPath: directory + "/prideprejudice.txt") }

  /// The first `count` Unicode scalars (Python "characters") of a data file.
  static func prefix(_ file: String, _ count: Int) throws -> String {
    let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
    return String(String.UnicodeScalarView(text.unicodeScalars.prefix(count)))
  }
}

/// Seeded random strings over scalars that stress the pre-tokenizers: ASCII letters, digits and punctuation,
/// apostrophes and contraction letters, every kind of whitespace, accented and non-Latin letters, combining marks,
/// other numbers, emoji, controls, and (with `anyScalar`) any valid scalar; scalars failing `allowed` are skipped.
func randomTokenizerText(
  length: Int, using rng: inout SplitMix64, anyScalar: Bool = false,
  allowed: (Unicode.Scalar) -> Bool = { _ in true }
) -> String {
  let pool: [Unicode.Scalar] = Array(
    "aAzZsStTdDmMlLrReEvV'  \n\n\r\t\u{0B}\u{0C}\u{85}\u{A0}\u{2003}\u{3000}0123456789.,!?-(\")éßİΩж漢字ー한ไ\u{301}\u{200B}²½Ⅻ٣４👍🏽\u{1F1EB}\u{7F}\u{01}"
      .unicodeScalars)
  var view = String.UnicodeScalarView()
  while view.count < length {
    let scalar: Unicode.Scalar
    if anyScalar && rng.next() % 4 == 0 {
      let value = UInt32(rng.next() % 0x11_0000)
      guard let s = Unicode.Scalar(value) else { continue }  // surrogates are not scalars
      scalar = s
    } else {
      scalar = pool[Int(rng.next() % UInt64(pool.count))]
    }
    if allowed(scalar) { view.append(scalar) }
  }
  return String(view)
}

@Test func goldenFileHasTheExpectedShape() throws {
  let golden = try TokenizerGolden.load()
  #expect(golden.cases.count >= 10)
  #expect(golden.splits.count >= 10)
  // every golden split covers its text exactly, so a pre-tokenizer that passes cannot lose or invent text
  for split in golden.splits {
    for pre in PreTokenizer.allCases { #expect(split.words(pre).joined() == split.text) }
  }
}

@Test(arguments: PreTokenizer.allCases)
func preTokenizerMatchesHuggingFaceSplits(pre: PreTokenizer) throws {
  for split in try TokenizerGolden.load().splits {
    #expect(pre.split(split.text) == split.words(pre), "\(pre) on \(split.text.debugDescription)")
  }
}

@Test(arguments: PreTokenizer.allCases)
func regexReferenceMatchesHuggingFaceSplits(pre: PreTokenizer) throws {
  for split in try TokenizerGolden.load().splits {
    #expect(try pre.splitReference(split.text) == split.words(pre), "\(pre) on \(split.text.debugDescription)")
  }
}
