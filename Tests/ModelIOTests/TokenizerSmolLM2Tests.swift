import Foundation
import Testing
import _TestSupport

@testable import ModelIO

// The real SmolLM2-135M-Instruct tokenizer: 49,152 tokens, 48,900 merges, pre-tokenizer "smollm", read from the
// GGUF that `make test` downloads, and the same vocabulary as a Hugging Face tokenizer.json (committed fixture, made
// by scripts/tokenizer_golden.py with the `tokenizers` library). A missing model fails the suite: it is never
// passed vacuously.

let smolLM2TokenizerJSONPath = TestModels.repositoryRoot + "/Tests/ModelIOTests/Fixtures/tokenizer/smollm2-tokenizer.json"

/// The tokenizer from the GGUF's `tokenizer.ggml.*` metadata.
func loadSmolLM2Tokenizer() throws -> BPETokenizer {
  guard TestModels.exists(TestModels.smolLM2Path) else { throw TestModelMissing(path: TestModels.smolLM2Path) }
  return try GGUFFile(path: TestModels.smolLM2Path).tokenizer()
}

struct TestModelMissing: Error, CustomStringConvertible {
  var path: String
  var description: String { TestModels.missing(path) }
}

/// The Hugging Face form of the same tokenizer (SmolLM2's tokenizer.json has no BOS in its post-processor; its
/// tokenizer_config.json names `<|im_start|>`, id 1).
func loadSmolLM2TokenizerJSON() throws -> BPETokenizer {
  let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: smolLM2TokenizerJSONPath)))
  return try BPETokenizer(tokenizerJSON: bytes, path: smolLM2TokenizerJSONPath, bosTokenId: 1, eosTokenId: 2)
}

/// Tokenizing the 20,000-character window must stay well under a second in a debug (`-Onone`) build; measured
/// about 0.02 s here, so this bound only catches an accidental quadratic path.
let ppWindowEncodeSecondsLimit = 1.0

@Suite
struct TokenizerSmolLM2Tests {
  let gguf: BPETokenizer
  let json: BPETokenizer

  /// Loaded once for the whole suite (Swift Testing makes one instance per test).
  static let loaded = Result { (try loadSmolLM2Tokenizer(), try loadSmolLM2TokenizerJSON()) }

  init() throws {
    (gguf, json) = try TokenizerSmolLM2Tests.loaded.get()
  }

  @Test func metadata() {
    #expect(gguf.vocabularySize == 49_152)
    #expect(gguf.preTokenizer == .smollm)
    #expect(gguf.bosTokenId == 1 && gguf.eosTokenId == 2)
    #expect(gguf.tokens[1] == "<|im_start|>")
    #expect(gguf.bytesWithoutToken.count == 21)
    #expect(json.preTokenizer == .smollm)
    #expect(json.tokens == gguf.tokens)
  }

  /// DESIGN.md's reference window: [BOS=1] + the first 511 ids of the first 20,000 characters of P&P.
  @Test func prideAndPrejudiceWindow() throws {
    let text = try TokenizerData.prefix("prideprejudice.txt", 20_000)
    let want = try String(contentsOfFile: TokenizerData.directory + "/pp-window-ids.txt", encoding: .utf8)
      .split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { Int($0) }
    try #require(want.count == 512)
    var ids: [Int] = []
    let elapsed = ContinuousClock().measure { ids = gguf.encode(text) }
    #expect(Array(try gguf.encodeWithBOS(text).prefix(512)) == want)
    #expect(Array(try json.encodeWithBOS(text).prefix(512)) == want)
    #expect(elapsed < .seconds(ppWindowEncodeSecondsLimit), "encode took \(elapsed)")
    #expect(try gguf.decode(ids) == text)
  }

  /// Every golden case from Hugging Face `tokenizers`, through both loaders. The golden ids were made with special
  /// tokens parsed (`transformers` always splits them out).
  @Test func huggingFaceGoldenCases() throws {
    for c in try TokenizerGolden.load().cases {
      let text = try c.text ?? TokenizerData.prefix(try #require(c.source), try #require(c.characters))
      #expect(gguf.encode(text, parseSpecial: true) == c.ids, "\(c.name)")
      #expect(json.encode(text, parseSpecial: true) == c.ids, "\(c.name) via tokenizer.json")
    }
  }

  /// Without `parseSpecial`, special-token text is ordinary text (llama.cpp's perplexity default).
  @Test func specialTokenTextIsPlainByDefault() throws {
    let text = "<|im_start|>user\nhi<|im_end|>"
    let plain = gguf.encode(text)
    #expect(!plain.contains(1) && !plain.contains(2))
    #expect(try gguf.decode(plain) == text)
    #expect(gguf.encode(text, parseSpecial: true) == [1, 4093, 198, 6004, 2])
    #expect(try gguf.decode([1, 4093, 198, 6004, 2]) == text)
  }

  /// The fast path (cache, heap merges, scanner) against the reference (naive merges, Swift Regex split).
  @Test func encodeMatchesReference() throws {
    let emma = try TokenizerData.prefix("emma.txt", 3_000)
    #expect(gguf.encode(emma) == (try gguf.encodeReference(emma, referenceSplit: true)))
    var rng = SplitMix64(seed: 7)
    for _ in 0..<200 {
      let text = randomTokenizerText(length: Int(rng.next() % 60), using: &rng, anyScalar: true)
      #expect(gguf.encode(text) == (try gguf.encodeReference(text, referenceSplit: true)), "\(text.debugDescription)")
    }
  }

  /// decode(encode(x)) == x for seeded random text whose UTF-8 avoids the 21 bytes the vocabulary has no token
  /// for (ASCII controls 0x04 0x06 0x13 0x14 0x16 0x1D, and lead bytes 0xF1 0xF2 of planes 4-11, among others);
  /// those are dropped, as `tokenizers` drops them.
  @Test func roundTrip() throws {
    let missing = Set(gguf.bytesWithoutToken)
    let allowed = { (s: Unicode.Scalar) in !String(s).utf8.contains(where: missing.contains) }
    var rng = SplitMix64(seed: 42)
    for _ in 0..<300 {
      let text = randomTokenizerText(length: Int(rng.next() % 80), using: &rng, anyScalar: true, allowed: allowed)
      #expect(try gguf.decode(gguf.encode(text)) == text, "\(text.debugDescription)")
      #expect(try json.decode(json.encode(text)) == text, "\(text.debugDescription)")
    }
    #expect(try gguf.decode(gguf.encode("a\u{04}b")) == "ab")
  }
}
