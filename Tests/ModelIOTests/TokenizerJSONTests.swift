import Testing
import _TestSupport

@testable import ModelIO

// tokenizer.json: the JSON parser, the mapping of pre_tokenizer / post_processor, and one test per validation rule
// (each a hand edit of the tiny fixture), asserting the exact ModelIOError code.

/// The tiny fixture with `edit` applied to its text; the edit must change something.
func editedTiny(_ old: String, _ new: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
  let text = String(decoding: try tinyTokenizerBytes(), as: UTF8.self)
  try #require(text.contains(old), "fixture has no \(old.debugDescription)", sourceLocation: sourceLocation)
  return Array(text.replacingOccurrences(of: old, with: new).utf8)
}

/// `s` as a JSON string literal.
func jsonLiteral(_ s: String) -> String {
  "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

extension String {
  /// Plain substring replacement (Foundation-free).
  func replacingOccurrences(of old: String, with new: String) -> String {
    var parts = self.split(separator: old, omittingEmptySubsequences: false).map(String.init)
    if parts.count <= 1 { return self }
    let first = parts.removeFirst()
    return parts.reduce(first) { $0 + new + $1 }
  }
}

@Test func jsonParserReadsEscapesAndNesting() throws {
  let doc = #"{"a": [1, -2.5e1, true, false, null], "s": "x\n\t\"\\\/\u00e9\ud83d\ude00", "o": {"k": []}}"#
  let v = try TokenizerJSON.parse(Array(doc.utf8))
  #expect(v["a"] == .array([.number(1), .number(-25), .bool(true), .bool(false), .null]))
  #expect(v["s"]?.string == "x\n\t\"\\/é😀")
  #expect(v["o"]?["k"] == .array([]))
  #expect(v["a"]?.array?.first?.int == 1)
  #expect(TokenizerJSON.number(1.5).int == nil && TokenizerJSON.number(-1).int == nil)
}

@Test(arguments: [
  "", "{", "[1,", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "tru", "nul", "\"abc", "\"\\x\"", "\"\\ud800\"",
  "\"\\ud800\\u0041\"", "\"\\u12\"", "\"a\u{01}b\"", "{\"a\":1,\"a\":2}", "[1] x", "-", "1e999", "{1:2}",
])
func jsonParserRejects(doc: String) {
  #expect(modelIOErrorCode { _ = try TokenizerJSON.parse(Array(doc.utf8)) } == .badTokenizer, "\(doc.debugDescription)")
}

@Test func jsonParserRejectsInvalidUTF8AndDeepNesting() {
  #expect(modelIOErrorCode { _ = try TokenizerJSON.parse([0x22, 0xFF, 0x22]) } == .badTokenizer)
  let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
  #expect(modelIOErrorCode { _ = try TokenizerJSON.parse(Array(deep.utf8)) } == .badTokenizer)
  let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
  #expect(modelIOErrorCode { _ = try TokenizerJSON.parse(Array(ok.utf8)) } == nil)
}

@Test func tokenizerJSONValidationRules() throws {
  func code(_ old: String, _ new: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ModelIOError.Code? {
    let bytes = try editedTiny(old, new, sourceLocation: sourceLocation)
    return modelIOErrorCode(sourceLocation: sourceLocation) { _ = try BPETokenizer(tokenizerJSON: bytes, path: "t.json") }
  }
  #expect(try code(#""type": "BPE""#, #""type": "WordPiece""#) == .unsupported)
  #expect(try code(#""normalizer": null"#, #""normalizer": {"type": "NFC"}"#) == .unsupported)
  #expect(try code(#""byte_fallback": false"#, #""byte_fallback": true"#) == .unsupported)
  #expect(try code(#""continuing_subword_prefix": null"#, #""continuing_subword_prefix": "@@""#) == .unsupported)
  #expect(try code(#"{"type": "ByteLevel", "add_prefix_space": false"#, #"{"type": "ByteLevel", "add_prefix_space": true"#) == .unsupported)
  #expect(try code(#""pre_tokenizer": {"type": "ByteLevel""#, #""pre_tokenizer": {"type": "Metaspace""#) == .unsupported)
  #expect(try code(#""pre_tokenizer": {"#, #""pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]}, "unused": {"#) == .unsupported)
  #expect(try code(#""llo": 12"#, #""llo": 40"#) == .badTokenizer)  // ids not contiguous
  #expect(try code(#""id": 0, "content": "<|endoftext|>""#, #""id": 1, "content": "<x>""#) == .badTokenizer)  // id clash
  #expect(try code(#"["h", "e"]"#, "5") == .badTokenizer)  // merge of the wrong kind
  #expect(try code(#"["h", "e"]"#, #"["h", "q"]"#) == .badTokenizer)  // merge part not a token
  #expect(try code(#""unk_token": null"#, #""unk_token": "<unk>""#) == .badTokenizer)
  #expect(try code(#""model": {"#, #""modell": {"#) == .badTokenizer)
  #expect(try code(#""vocab": {"#, #""vocab": 3, "v": {"#) == .badTokenizer)
  #expect(try code("\n}\n", "\n") == .badTokenizer)  // truncated
  do {
    _ = try BPETokenizer(tokenizerJSON: Array("{".utf8), path: "broken.json")
    Issue.record("accepted a broken file")
  } catch {
    #expect(error.path == "broken.json")
    #expect(error.description.contains("broken.json"))
  }
}

@Test func unknownTokenReplacesBytesWithoutToken() throws {
  let bytes = try editedTiny(#""unk_token": null"#, #""unk_token": "<|endoftext|>""#)
  let tok = try BPETokenizer(tokenizerJSON: bytes, path: nil)
  #expect(tok.unknownTokenId == 0)
  #expect(tok.encode("h\u{04}e") == [1, 0, 2])
}

/// Llama 3 style: Split(regex) + ByteLevel(use_regex: false), ignore_merges, BOS from TemplateProcessing inside
/// a Sequence post-processor; and SmolLM2 style Digits + ByteLevel.
@Test(arguments: [PreTokenizer.llama3, .qwen2, .gpt2])
func splitSequenceMapsToCase(pre: PreTokenizer) throws {
  let preJSON = """
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": \(jsonLiteral(pre.pattern))}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}}]},
    """
  var bytes = try editedTiny(#""pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},"#, preJSON)
  bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: #""post_processor": null,"#, with: "").utf8)
  bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: #""fuse_unk": false,"#, with: #""fuse_unk": false, "ignore_merges": true,"#).utf8)
  let tok = try BPETokenizer(tokenizerJSON: bytes, path: nil)
  #expect(tok.preTokenizer == pre)
  #expect(tok.ignoreMerges)
  #expect(tok.bosTokenId == 0 && tok.addBOS)
  #expect(try tok.encodeWithBOS("hello world!") == [0, 13, 18, 9])
}

@Test func digitsSequenceMapsToSmolLM() throws {
  let bytes = try editedTiny(
    #""pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#,
    #""pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}"#)
  let tok = try BPETokenizer(tokenizerJSON: bytes, path: nil, bosTokenId: 0)
  #expect(tok.preTokenizer == .smollm)
  #expect(tok.bosTokenId == 0 && !tok.addBOS)
  #expect(tok.encode("12") == [22, 23])
}
