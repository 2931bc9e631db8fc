import Foundation
import Testing
@testable import ModelIO

/// Temporary until GGUFFile lands; the lead replaces this with `GGUFFile(path:).tokenizer()`.
/// Reads the GGUF tokenizer fields that `scripts/tokenizer_golden.py` dumps to JSON.
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
  let data = try Data(contentsOf: URL(fileURLWithPath: smolLM2DumpPath))
  let d = try JSONDecoder().decode(Dump.self, from: data)
  return try BPETokenizer(
    tokens: d.tokens, merges: d.merges, tokenTypes: d.token_types, pre: d.pre, bosTokenId: d.bos_token_id,
    eosTokenId: d.eos_token_id, addBOS: d.add_bos)
}

let smolLM2DumpPath = "/root/.cache/bitplan/smollm2-tokenizer.json"

@Test func smolLM2PPWindow() throws {
  let clock = ContinuousClock()
  var tok: BPETokenizer? = nil
  let tLoad = try clock.measure { tok = try loadSmolLM2Tokenizer() }
  let text = try String(contentsOfFile: "/work/shared/data/prideprejudice.txt", encoding: .utf8)
  let window = String(String.UnicodeScalarView(text.unicodeScalars.prefix(20000)))
  var ids: [Int] = []
  let tEnc = clock.measure { ids = tok!.encode(window) }
  let want = try String(contentsOfFile: "/work/shared/data/pp-window-ids.txt", encoding: .utf8)
    .split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { Int($0) }
  print("load", tLoad, "encode", tEnc, ids.count)
  #expect(Array([1] + ids.prefix(511)) == want)
}
