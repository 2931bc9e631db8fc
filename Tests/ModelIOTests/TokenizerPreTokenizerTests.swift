import Testing
import _TestSupport

@testable import ModelIO

// PreTokenizer: the hand-written scanners against the Swift Regex reference, names, and edge cases. The
// comparison with Hugging Face `tokenizers` splits is in TokenizerGoldenTests.

@Test func byteLevelAlphabetIsABijection() {
  let scalars = ByteLevel.scalarForByte
  #expect(scalars.count == 256)
  #expect(Set(scalars).count == 256)
  #expect((0..<256).filter { scalars[$0].value == UInt32($0) }.count == 188)  // printable Latin-1 stands for itself
  #expect(scalars[0x20] == "\u{120}")  // space -> Ġ
  #expect(scalars[0x0A] == "\u{10A}")  // newline -> Ċ
  #expect(scalars[0x00] == "\u{100}")
  #expect(scalars[0xAD] == "\u{143}")  // soft hyphen, the last shifted byte
  let all = (0...255).map(UInt8.init)
  #expect(ByteLevel.decode(ByteLevel.encode(all)) == all)
  for (byte, scalar) in scalars.enumerated() { #expect(ByteLevel.byte(for: scalar) == UInt8(byte)) }
  #expect(ByteLevel.decode("<|im_start|>") == Array("<|im_start|>".utf8))  // printable ASCII stands for itself
  #expect(ByteLevel.decode("ok\u{2028}") == nil)
  #expect(ByteLevel.byte(for: "\u{144}") == nil)
}

@Test func ggufNamesMapToCases() throws {
  #expect(try PreTokenizer(ggufName: "smollm") == .smollm)
  #expect(try PreTokenizer(ggufName: "gpt-2") == .gpt2)
  #expect(try PreTokenizer(ggufName: "llama-bpe") == .llama3)
  #expect(try PreTokenizer(ggufName: "qwen2") == .qwen2)
  #expect(try PreTokenizer(ggufName: "starcoder") == .smollm)
  for name in PreTokenizer.ggufNames.keys { #expect(throws: Never.self) { try PreTokenizer(ggufName: name) } }
}

@Test(arguments: ["xyz", "", "default", "SmolLM", "deepseek-llm", "tekken"])
func unknownPreTokenizerIsAnError(name: String) {
  do {
    _ = try PreTokenizer(ggufName: name)
    Issue.record("'\(name)' was accepted")
  } catch {
    #expect(error.code == .unsupported)
    #expect(error.message.contains("'\(name)' is not supported; supported: "))
    #expect(error.message.contains("smollm"))
  }
}

/// Every scanner equals the Regex reference on seeded random text, including arbitrary scalars, and its words
/// are non-empty and concatenate to the input.
@Test(arguments: PreTokenizer.allCases)
func scannerMatchesRegexReference(pre: PreTokenizer) throws {
  var rng = SplitMix64(seed: 2024 + UInt64(pre.rawValue.count))
  for round in 0..<400 {
    let text = randomTokenizerText(length: Int(rng.next() % 48), using: &rng, anyScalar: round % 3 == 0)
    let words = pre.split(text)
    #expect(words == (try pre.splitReference(text)), "\(pre) on \(text.debugDescription)")
    #expect(words.joined() == text)
    #expect(!words.contains(""))
  }
}

@Test func handCheckedSplits() {
  // gpt2: contractions are case-sensitive, the space joins the following word, a lone space at the end stays
  #expect(PreTokenizer.gpt2.split("I'LL say it's") == ["I", "'", "LL", " say", " it", "'s"])
  #expect(PreTokenizer.gpt2.split("a  b ") == ["a", " ", " b", " "])
  #expect(PreTokenizer.gpt2.split("x\n\ny") == ["x", "\n", "\n", "y"])
  // smollm: every digit alone, and the space before a digit is a word of its own
  #expect(PreTokenizer.smollm.split("in 1813!") == ["in", " ", "1", "8", "1", "3", "!"])
  // llama3: up to 3 digits, case-insensitive contractions, newlines kept with what precedes them
  #expect(PreTokenizer.llama3.split("I'LL pay 12345.\n\nOk") == ["I", "'LL", " pay", " ", "123", "45", ".\n\n", "Ok"])
  #expect(PreTokenizer.qwen2.split("x 12") == ["x", " ", "1", "2"])
  #expect(PreTokenizer.llama3.split("") == [])
}

/// Long inputs stay linear: 64K scalars of one class (a single word) and of alternating spaces.
@Test(arguments: PreTokenizer.allCases)
func longRunsAreFast(pre: PreTokenizer) {
  let letters = String(repeating: "a", count: 65_536)
  let spaced = String(repeating: "a ", count: 32_768)
  let elapsed = ContinuousClock().measure {
    #expect(pre.split(letters) == [letters])
    #expect(pre.split(spaced).count == 32_769)  // "a", 32,767 x " a", and the final " "
  }
  #expect(elapsed < .seconds(5), "\(pre): \(elapsed)")
}
