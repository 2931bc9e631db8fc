/// Hyper-parameters of a llama-family decoder, read from HF `config.json` or from GGUF `llama.*` metadata.
public struct LlamaConfig: Sendable, Codable, Equatable {
  public var hiddenSize: Int
  public var intermediateSize: Int
  public var layerCount: Int
  public var headCount: Int
  /// Key/value heads (GQA); equal to `headCount` for plain multi-head attention.
  public var kvHeadCount: Int
  /// Per-head dimension; `hiddenSize / headCount` unless the file says otherwise.
  public var headDim: Int
  public var vocabSize: Int
  public var rmsNormEpsilon: Float
  /// RoPE base frequency (`rope_theta`, `rope_parameters.rope_theta`, or GGUF `llama.rope.freq_base`).
  public var ropeTheta: Float
  /// The LM head reuses the token embedding.
  public var tieWordEmbeddings: Bool
  public var maxPositionEmbeddings: Int
  public var bosTokenId: Int?
  public var eosTokenId: Int?

  public init(
    hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int, headDim: Int,
    vocabSize: Int, rmsNormEpsilon: Float, ropeTheta: Float, tieWordEmbeddings: Bool, maxPositionEmbeddings: Int,
    bosTokenId: Int? = nil, eosTokenId: Int? = nil
  ) {
    self.hiddenSize = hiddenSize
    self.intermediateSize = intermediateSize
    self.layerCount = layerCount
    self.headCount = headCount
    self.kvHeadCount = kvHeadCount
    self.headDim = headDim
    self.vocabSize = vocabSize
    self.rmsNormEpsilon = rmsNormEpsilon
    self.ropeTheta = ropeTheta
    self.tieWordEmbeddings = tieWordEmbeddings
    self.maxPositionEmbeddings = maxPositionEmbeddings
    self.bosTokenId = bosTokenId
    self.eosTokenId = eosTokenId
  }
}
