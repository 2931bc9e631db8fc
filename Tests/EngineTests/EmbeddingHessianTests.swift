import Engine
import _TestSupport
import Testing

/// The token embedding as a Hessian variable (issue 14): HVPs with a block for `model.embed_tokens.weight` (for a
/// tied model both the lookup and the LM head move), and the LM head's captured inputs.
@Suite struct EmbeddingHessianTests {
  static let embedding = "model.embed_tokens.weight"

  /// A seeded direction over every linear weight and the embedding.
  static func direction(_ model: LlamaModel<Double>) -> [String: [Double]] {
    var v: [String: [Double]] = [:]
    for (k, name) in (model.linearWeightNames + [embedding]).enumerated() {
      v[name] = randomDoubles(try! model.weight(named: name).count, seed: 300 + UInt64(k))
    }
    return v
  }

  /// H·v against central differences of the gradient formed by moving the weights themselves (`replaceWeight`,
  /// not the engine's perturbation buffers): step h = 1e-5 on O(1) directions, truncation h²/6·|∇³L| and
  /// rounding u/h both below 1e-9 relative.
  @Test(arguments: [true, false])
  func hessianVectorProductCoversTheEmbedding(tied: Bool) throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: tied)
    let v = Self.direction(model)
    let names = Set(v.keys)
    let hv = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: v, of: names)
    let original = try names.reduce(into: [String: [Double]]()) { $0[$1] = try model.weight(named: $1) }
    func gradient(_ step: Double) throws -> [String: [Double]] {
      for name in names { try model.replaceWeight(name: name, with: zip(original[name]!, v[name]!).map { $0 + step * $1 }) }
      defer { for name in names { try! model.replaceWeight(name: name, with: original[name]!) } }
      return try model.gradients(tokens: TinyModel.tokens, of: names).gradients
    }
    let (plus, minus) = (try gradient(1e-5), try gradient(-1e-5))
    for name in names.sorted() {
      let reference = zip(plus[name]!, minus[name]!).map { ($0 - $1) / 2e-5 }
      let error = HessianTests.relativeError(hv[name]!, reference)
      #expect(error < 1e-6, "\(name): relative error \(error)")
    }
    // the streamed one-sided form hands the embedding over too, and agrees with the returned one
    let base = try model.gradients(tokens: TinyModel.tokens, of: names).gradients
    let returned = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: v, baseGradient: base, of: names)
    var streamed: [String: [Double]] = [:]
    try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: v, baseGradient: base, includingEmbedding: true) {
      streamed[$0] = Array($1)
    }
    #expect(Set(streamed.keys) == names)
    for name in names { #expect(streamed[name]! == returned[name]!, "\(name)") }
    // a direction without an embedding block gives the same linear blocks whether or not the embedding's block of
    // Hv is asked for
    var linearOnly = v
    linearOnly[Self.embedding] = nil
    let a = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: linearOnly)
    let b = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: linearOnly, of: names)
    for name in model.linearWeightNames { #expect(a[name]! == b[name]!) }
  }

  /// The LM head's captured input is the final-norm hidden state: x_t · Wᵀ gives the logits of position t.
  @Test(arguments: [true, false])
  func lmHeadInputsReproduceTheLogits(tied: Bool) throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: tied)
    var captured: (layer: LinearLayer, x: Matrix<Double>)?
    _ = try model.captureInputs(tokens: TinyModel.tokens, layers: ["lm_head"]) { captured = ($0, $1) }
    let (layer, x) = try #require(captured)
    #expect(layer == model.lmHeadLayer && x.rows == TinyModel.tokens.count && x.columns == 8)
    let head = try model.weight(named: tied ? Self.embedding : "lm_head.weight")
    let logits = try model.logits(tokens: TinyModel.tokens)
    var worst = 0.0
    for t in 0..<logits.rows {
      for v in 0..<11 {
        var z = 0.0
        for k in 0..<8 { z += x.storage[t * 8 + k] * head[v * 8 + k] }
        worst = max(worst, abs(z - logits.storage[t * 11 + v]))
      }
    }
    #expect(worst < 1e-12)
    // without asking, the capture is the linear layers only, as before
    var names: [String] = []
    _ = try model.captureInputs(tokens: TinyModel.tokens) { layer, _ in names.append(layer.name) }
    #expect(names == model.linearLayers.map(\.name))
  }
}
