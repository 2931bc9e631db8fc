import Foundation
import ModelIO
import Testing

@Suite("LlamaConfig from HF config.json")
struct LlamaConfigTests {
  /// SmolLM2-135M-Instruct's config.json (transformers 4.42), the project's default model.
  static let smolLM2 = """
    {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1,
     "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
     "intermediate_size": 1536, "is_llama_config": true, "max_position_embeddings": 8192, "mlp_bias": false,
     "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
     "pad_token_id": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_scaling": null,
     "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.42.3",
     "use_cache": true, "vocab_size": 49152}
    """

  static func parse(_ text: String) throws(ModelIOError) -> LlamaConfig {
    try LlamaConfig(hfConfig: Array(text.utf8), path: "config.json")
  }

  /// `smolLM2` with `key` replaced by `value` (JSON text), or removed when `value` is nil.
  static func variant(_ key: String, _ value: String?) throws -> String {
    var object = try #require(try JSONSerialization.jsonObject(with: Data(smolLM2.utf8)) as? [String: Any])
    object[key] = nil
    var text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    if let value { text = "{\"\(key)\": \(value), " + text.dropFirst() }
    return text
  }

  @Test func smolLM2MatchesThePublishedArchitecture() throws {
    let c = try Self.parse(Self.smolLM2)
    #expect(
      c
        == LlamaConfig(
          hiddenSize: 576, intermediateSize: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, headDim: 64,
          vocabSize: 49152, rmsNormEpsilon: 1e-5, ropeTheta: 100000, tieWordEmbeddings: true,
          maxPositionEmbeddings: 8192, bosTokenId: 1, eosTokenId: 2))
  }

  @Test func transformers5RopeParametersAndDefaults() throws {
    let v5 = try Self.variant("rope_theta", nil).replacingOccurrences(
      of: "{", with: "{\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}, ", options: [],
      range: nil)
    #expect(try Self.parse(v5).ropeTheta == 500000)
    let minimal = """
      {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
       "num_attention_heads": 4, "vocab_size": 100, "eos_token_id": [7, 8], "bos_token_id": null}
      """
    let c = try Self.parse(minimal)
    #expect(c.kvHeadCount == 4 && c.headDim == 16 && c.ropeTheta == 10000 && c.rmsNormEpsilon == 1e-6)
    #expect(c.tieWordEmbeddings == false && c.maxPositionEmbeddings == 2048)
    #expect(c.bosTokenId == nil && c.eosTokenId == 7)
    #expect(try Self.parse(Self.variant("head_dim", "96")).headDim == 96)
    #expect(try Self.parse(Self.variant("model_type", nil)).hiddenSize == 576)  // architectures suffices
  }

  @Test(arguments: ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"])
  func missingRequiredKeyIsNamed(key: String) throws {
    let error = #expect(throws: ModelIOError.self) { _ = try Self.parse(Self.variant(key, nil)) }
    #expect(error?.code == .badConfig)
    #expect(error?.message.contains("'\(key)'") == true)
  }

  @Test(arguments: [
    ("hidden_size", "true", ModelIOError.Code.badConfig), ("hidden_size", "576.5", .badConfig),
    ("hidden_size", "\"576\"", .badConfig), ("num_hidden_layers", "0", .badConfig), ("vocab_size", "-1", .badConfig),
    ("num_key_value_heads", "4", .badConfig), ("num_attention_heads", "7", .badConfig),
    ("tie_word_embeddings", "1", .badConfig), ("rope_theta", "\"big\"", .badConfig), ("rms_norm_eps", "0", .badConfig),
    ("eos_token_id", "\"</s>\"", .badConfig), ("model_type", "\"mistral\"", .unsupported),
    ("hidden_act", "\"gelu\"", .unsupported), ("attention_bias", "true", .unsupported),
    ("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}", .unsupported),
  ])
  func badValuesGiveTypedErrors(key: String, value: String, code: ModelIOError.Code) throws {
    let text = try Self.variant(key, value)
    let error = #expect(throws: ModelIOError.self) { _ = try Self.parse(text) }
    #expect(error?.code == code, "\(key) = \(value): \(error.map { "\($0)" } ?? "accepted")")
  }

  @Test func notLlamaAtAllAndNotJSON() throws {
    let gpt2 = #"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 768}"#
    #expect((#expect(throws: ModelIOError.self) { _ = try Self.parse(gpt2) })?.code == .unsupported)
    #expect((#expect(throws: ModelIOError.self) { _ = try Self.parse("{\"hidden_size\": 5}") })?.code == .badConfig)
    #expect((#expect(throws: ModelIOError.self) { _ = try Self.parse("[1]") })?.code == .badConfig)
    #expect((#expect(throws: ModelIOError.self) { _ = try Self.parse("{") })?.code == .badConfig)
    let missing = #expect(throws: ModelIOError.self) { _ = try LlamaConfig(hfConfigPath: "/nonexistent/config.json") }
    #expect(missing?.code == .io)
  }
}
