import Engine
import TensorCore
import Testing
import _TestSupport

/// The Float forward on packed weights (`LlamaModel+PackedWeights.swift`): it agrees with the OpenBLAS forward to
/// rounding, and a change of a weight never leaves a stale packed copy in use.
@Suite struct PackedWeightTests {
  static let packs = PackedWeights.kernel != .none

  @Test func packedForwardAgreesWithOpenBLAS() throws {
    let packed = try TinyModel.model(as: Float.self), plain = try TinyModel.model(as: Float.self)
    plain.packsWeights = false
    let (a, b) = (try packed.logits(tokens: TinyModel.tokens), try plain.logits(tokens: TinyModel.tokens))
    for i in a.storage.indices { #expect(abs(a.storage[i] - b.storage[i]) <= 1e-5 * max(1, abs(b.storage[i]))) }
    // 2 blocks × 7 layers, each rounded up to whole panels
    #expect((packed.packedWeightBytes > 0) == Self.packs)
    #expect(plain.packedWeightBytes == 0)
    let (ga, gb) = (try packed.gradients(tokens: TinyModel.tokens, of: []), try plain.gradients(tokens: TinyModel.tokens, of: []))
    #expect(abs(ga.loss - gb.loss) <= 1e-5 * abs(gb.loss))
  }

  @Test func turningPackingOffDropsTheCopies() throws {
    let model = try TinyModel.model(as: Float.self)
    _ = try model.meanNLL(tokens: TinyModel.tokens)
    model.packsWeights = false
    #expect(model.packedWeightBytes == 0)
    model.packsWeights = true
    _ = try model.meanNLL(tokens: TinyModel.tokens)
    #expect((model.packedWeightBytes > 0) == Self.packs)
    model.releaseWorkspace()
    #expect(model.packedWeightBytes == 0)
  }

  /// After `replaceWeight` the forward equals, bit for bit, a model loaded with the new values: the packed copy of
  /// the old values is not used.
  @Test(arguments: ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"])
  func replacingAWeightDropsItsPackedCopy(name: String) throws {
    let c = TinyModel.configuration(tied: false)
    var weights: [String: WeightTensor<Float>] = TinyModel.weights(c)
    let model = try LlamaModel(configuration: c, weights: weights)
    let before = try model.meanNLL(tokens: TinyModel.tokens)
    let replacement = weights[name]!.values.map { $0 * 0.5 + 0.01 }
    try model.replaceWeight(name: name, with: replacement)
    let after = try model.meanNLL(tokens: TinyModel.tokens)
    weights[name]!.values = replacement
    let fresh = try LlamaModel(configuration: c, weights: weights).meanNLL(tokens: TinyModel.tokens)
    #expect(after.bitPattern == fresh.bitPattern)
    #expect(after != before)
  }

  @Test func doubleModelsNeverPack() throws {
    let model = try TinyModel.model(as: Double.self)
    _ = try model.meanNLL(tokens: TinyModel.tokens)
    #expect(model.packedWeightBytes == 0)
  }
}
