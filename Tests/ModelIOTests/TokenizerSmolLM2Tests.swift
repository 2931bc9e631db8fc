import Foundation
import Testing
import _TestSupport

@testable import ModelIO

// The real SmolLM2-135M-Instruct tokenizer: 49,152 tokens, 48,900 merges, pre-tokenizer "smollm". These tests need
// the files that `scripts/tokenizer_golden.py` writes under /root/.cache/bitplan (from the downloaded GGUF) and
// the shared text data; without them they are skipped, never passed vacuously.

let smolLM2DumpPath = "/root/.cache/bitplan/smollm2-tokenizer.json"
let smolLM2TokenizerJSONPath = "/root/.cache/bitplan/smollm2-hf-tokenizer.json"

/// Temporary until GGUFFile lands; the lead replaces this with `GGUFFile(path:).tokenizer()`.
/// Reads the GGUF `tokenizer.ggml.*` fields that `scripts/tokenizer_golden.py` dumps as JSON.
func loadSmolLM2Tokenizer() throws -> BPETokenizer {
  struct Dump: Decodable {
    var tokens: [String]
    var merges: [String]
    var token_types: [Int32]
    var pre: String
    var bos_token_id: Int
    var eos_token_id: Int
    var add_bos: Bool
  }
  let d = try JSONDecoder().decode(Dump.self, from: Data(contentsOf: URL(fileURLWithPath: smolLM2DumpPath)))
  return try BPETokenizer(
    tokens: d.tokens, merges: d.merges, tokenTypes: d.token_types, pre: d.pre, bosTokenId: d.bos_token_id,
    eosTokenId: d.eos_token_id, addBOS: d.add_bos)
}

/// The Hugging Face form of the same tokenizer (SmolLM2's tokenizer.json has no BOS in its post-processor; its
/// tokenizer_config.json names `<|im_start|>`, id 1).
func loadSmolLM2TokenizerJSON() throws -> BPETokenizer {
  let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: smolLM2TokenizerJSONPath)))
  return try BPETokenizer(tokenizerJSON: bytes, path: smolLM2TokenizerJSONPath, bosTokenId: 1, eosTokenId: 2)
}

let smolLM2Available =
  FileManager.default.fileExists(atPath: smolLM2DumpPath)
  && FileManager.default.fileExists(atPath: smolLM2TokenizerJSONPath) && TokenizerData.available

/// Tokenizing the 20,000-character window must stay well under a second in a debug (`-Onone`) build; measured
/// about 0.02 s here, so this bound only catches an accidental quadratic path.
let ppWindowEncodeSecondsLimit = 1.0

@Suite(.enabled(if: smolLM2Available, "needs the SmolLM2 tokenizer dump: run scripts/tokenizer_golden.py"))
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
