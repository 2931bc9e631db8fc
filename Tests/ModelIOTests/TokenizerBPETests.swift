import Foundation
import Testing
import _TestSupport

@testable import ModelIO

// BPETokenizer on small vocabularies: the hand-written tokenizer.json fixture (ids checked against Hugging Face
// `tokenizers` when it was written), merges fast vs reference, round trip, BOS, and one test per validation rule.

func tinyTokenizerBytes() throws -> [UInt8] {
  let url = try #require(
    Bundle.module.url(forResource: "tiny-tokenizer", withExtension: "json", subdirectory: "Fixtures/tokenizer"))
  return try [UInt8](Data(contentsOf: url))
}

/// The 256 one-scalar tokens of the byte-level alphabet, in byte order.
let byteAlphabet = ByteLevel.scalarForByte.map { String($0) }

/// The error code `body` throws, or `nil` if it does not throw; another error type is a test failure.
func modelIOErrorCode(
  sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> ModelIOError.Code? {
  do {
    try body()
    return nil
  } catch let error as ModelIOError {
    return error.code
  } catch {
    Issue.record("not a ModelIOError: \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

@Test func tinyFixtureMatchesHuggingFace() throws {
  let tok = try BPETokenizer(tokenizerJSON: try tinyTokenizerBytes(), path: "tiny-tokenizer.json")
  #expect(tok.vocabularySize == 27)
  #expect(tok.preTokenizer == .gpt2)
  #expect(tok.bosTokenId == nil && !tok.addBOS)
  // ids printed by `tokenizers` 0.23.3 for the same file, add_special_tokens=False
  let cases: [(String, [Int])] = [
    ("hello world!", [13, 18, 9]), ("he's", [10, 21]), ("12", [22, 23]), ("Hello", [2, 12]),
    ("h\u{04}e", [1, 2]), ("hé", [1, 26]), ("hello hello", [13, 5, 13]), ("wor", [6, 15]),
    (" world world", [18, 18]),
  ]
  for (text, ids) in cases { #expect(tok.encode(text) == ids, "\(text.debugDescription)") }
  #expect(tok.encode("hello<|endoftext|>", parseSpecial: true) == [13, 0])
  #expect(!tok.encode("hello<|endoftext|>").contains(0))
  #expect(try tok.decode([13, 18, 9, 0, 26]) == "hello world!<|endoftext|>é")
  #expect(throws: ModelIOError.self) { try tok.encodeWithBOS("hi") }
  #expect(modelIOErrorCode { _ = try tok.decode([27]) } == .outOfBounds)
  #expect(modelIOErrorCode { _ = try tok.decode([-1]) } == .outOfBounds)
}

/// The heap merge equals the naive loop on random merge tables over a 4-letter alphabet, where ties and
/// repeated pairs ("aaaa") are common; words run past `heapThreshold` so `merge` takes both paths.
@Test func heapMergeMatchesReference() {
  var rng = SplitMix64(seed: 11)
  for _ in 0..<40 {
    var tokens = ["a", "b", "c", "d"]
    var merges = BPEMerges()
    for rank in 0..<60 {
      let l = Int(rng.next() % UInt64(tokens.count)), r = Int(rng.next() % UInt64(tokens.count))
      let merged = tokens[l] + tokens[r]
      let m = tokens.firstIndex(of: merged) ?? { tokens.append(merged); return tokens.count - 1 }()
      merges.append(left: Int32(l), right: Int32(r), merged: Int32(m), rank: Int32(rank))
    }
    for _ in 0..<50 {
      let word = (0..<Int(rng.next() % 160)).map { _ in Int32(rng.next() % 4) }
      let fast = merges.mergeHeap(word), slow = merges.mergeReference(word)
      #expect(fast == slow, "\(word)")
      #expect(merges.merge(word) == slow)
      #expect(fast.map { tokens[Int($0)] }.joined() == word.map { tokens[Int($0)] }.joined())
    }
  }
}

/// With every byte in the vocabulary, decode(encode(x)) == x for arbitrary scalars (seeded).
@Test(arguments: PreTokenizer.allCases)
func roundTripWithFullAlphabet(pre: PreTokenizer) throws {
  let merges = ["Ġ t", "h e", "Ġt he", "Ã ©", "i n", "Ġ Ġ"]
  let tokens = byteAlphabet + ["Ġt", "he", "Ġthe", "Ã©", "in"]
  let tok = try BPETokenizer(
    tokens: tokens + ["ĠĠ"], merges: merges, tokenTypes: nil, pre: pre.rawValue, bosTokenId: 0, eosTokenId: nil,
    addBOS: true)
  #expect(tok.bytesWithoutToken.isEmpty)
  #expect(tok.encode(" the") == [258])
  #expect(try tok.encodeWithBOS("in") == [0, 260])
  var rng = SplitMix64(seed: 99)
  for _ in 0..<200 {
    let text = randomTokenizerText(length: Int(rng.next() % 60), using: &rng, anyScalar: true)
    #expect(try tok.decode(tok.encode(text)) == text, "\(text.debugDescription)")
  }
}

/// llama3 looks a whole word up before merging (`ignore_merges`); gpt2 does not.
@Test func ignoreMergesUsesWholeWordTokens() throws {
  let tokens = byteAlphabet + ["ab", "abc"]  // no merge makes "abc"
  let llama = try BPETokenizer(
    tokens: tokens, merges: ["a b"], tokenTypes: nil, pre: "llama-bpe", bosTokenId: nil, eosTokenId: nil,
    addBOS: false)
  let gpt2 = try BPETokenizer(
    tokens: tokens, merges: ["a b"], tokenTypes: nil, pre: "gpt-2", bosTokenId: nil, eosTokenId: nil, addBOS: false)
  #expect(llama.ignoreMerges && !gpt2.ignoreMerges)
  #expect(llama.encode("abc") == [257])
  #expect(gpt2.encode("abc") == [256, Int(UInt8(ascii: "c"))])  // "c" stands for itself, id = its byte
}

@Test func ggufModelMustBeGPT2() {
  #expect(modelIOErrorCode { try BPETokenizer.checkGGUFModel("gpt2") } == nil)
  #expect(modelIOErrorCode { try BPETokenizer.checkGGUFModel("llama") } == .unsupported)
  #expect(modelIOErrorCode { try BPETokenizer.checkGGUFModel("") } == .unsupported)
}

@Test func ggufValidationRules() {
  let ok = byteAlphabet + ["ab"]
  func make(
    tokens: [String] = ok, merges: [String] = ["a b"], types: [Int32]? = nil, pre: String = "gpt-2",
    bos: Int? = nil, addBOS: Bool = false
  ) -> ModelIOError.Code? {
    modelIOErrorCode {
      _ = try BPETokenizer(
        tokens: tokens, merges: merges, tokenTypes: types, pre: pre, bosTokenId: bos, eosTokenId: nil, addBOS: addBOS)
    }
  }
  #expect(make() == nil)
  #expect(make(pre: "xyz") == .unsupported)
  #expect(make(merges: ["ab"]) == .badTokenizer)  // no space
  #expect(make(merges: ["a  b"]) == .badTokenizer)  // two spaces
  #expect(make(merges: ["a b c"]) == .badTokenizer)
  #expect(make(merges: [" b"]) == .badTokenizer)  // empty part
  #expect(make(merges: ["b a"]) == .badTokenizer)  // result "ba" is not a token
  #expect(make(merges: ["a zz"]) == .badTokenizer)  // part is not a token
  #expect(make(tokens: ok + ["a"]) == .badTokenizer)  // duplicate token
  #expect(make(tokens: []) == .badTokenizer)
  #expect(make(types: [1, 1]) == .badTokenizer)  // count mismatch
  #expect(make(types: Array(repeating: 9, count: ok.count)) == .badTokenizer)  // unknown token type
  #expect(make(bos: ok.count) == .badTokenizer)  // BOS out of range
  #expect(make(bos: -1) == .badTokenizer)
  #expect(make(addBOS: true) == .badTokenizer)  // add_bos without a BOS id
}

@Test func specialTokenMatcherPrefersTheLongestMatch() {
  let m = BPESpecialTokenMatcher([(Array("<a>".utf8), 1), (Array("<a><b>".utf8), 2), (Array("é".utf8), 3)])
  let bytes = { (s: String) in Array(s.utf8) }
  #expect(
    m.split(bytes("x<a><b>y<a>éz")) == [
      .text(bytes("x")), .special(2), .text(bytes("y")), .special(1), .special(3), .text(bytes("z")),
    ])
  #expect(m.split([]) == [])
  #expect(m.split(bytes("<a")) == [.text(bytes("<a"))])
  #expect(BPESpecialTokenMatcher([]).isEmpty)
}
