import Engine
import _TestSupport
import Testing
import TensorCore

/// Shape validation, token validation, input capture, weight replacement and logits on the tiny model.
@Suite struct ModelAPITests {
  @Test func shapeMismatchNamesTensorAndShapes() {
    let c = TinyModel.configuration(tied: false)
    var weights: [String: WeightTensor<Double>] = TinyModel.weights(c)
    weights["model.layers.1.self_attn.k_proj.weight"] = WeightTensor(shape: [16, 8], values: .init(repeating: 0, count: 128))
    do {
      _ = try LlamaModel(configuration: c, weights: weights)
      Issue.record("accepted a wrong shape")
    } catch {
      #expect(error.code == .shapeMismatch)
      #expect(error.message == "tensor 'model.layers.1.self_attn.k_proj.weight' has shape [16, 8], expected [8, 8]")
    }
    weights["model.layers.1.self_attn.k_proj.weight"] = nil
    #expect(throws: EngineError(.missingTensor, "tensor 'model.layers.1.self_attn.k_proj.weight' (shape [8, 8]) is missing")) {
      try LlamaModel(configuration: c, weights: weights)
    }
    var bad = c
    bad.kvHeads = 3
    #expect { try LlamaModel(configuration: bad, weights: TinyModel.weights(c) as [String: WeightTensor<Double>]) } throws: {
      ($0 as? EngineError)?.code == .badConfiguration
    }
  }

  @Test func badTokensAreRejected() throws {
    let model: LlamaModel<Double> = try TinyModel.model()
    for tokens in [[1], [1, 11], [-1, 2]] {
      #expect { try model.meanNLL(tokens: tokens) } throws: { ($0 as? EngineError)?.code == .badTokens }
    }
  }

  /// Captured inputs are what the layer multiplies: layer 0's q/k/v input is RMSNorm(E[tokens]) ⊙ g, and for every
  /// layer X Wᵀ reproduces the next op's input where that is observable (k and v share q's X).
  @Test func capturedInputsAreTheLayerInputs() throws {
    let model: LlamaModel<Double> = try TinyModel.model()
    let c = model.configuration
    var captured: [String: Matrix<Double>] = [:]
    let loss = try model.captureInputs(tokens: TinyModel.tokens) { layer, x in captured[layer.name] = x }
    #expect(abs(loss - (try model.meanNLL(tokens: TinyModel.tokens))) < 1e-14)
    #expect(captured.count == 7 * c.layers)
    for layer in model.linearLayers {
      let x = captured[layer.name]!
      #expect(x.rows == TinyModel.tokens.count && x.columns == layer.inFeatures, "\(layer.name)")
    }
    let e = try model.weight(named: "model.embed_tokens.weight"), g = try model.weight(named: "model.layers.0.input_layernorm.weight")
    let x0 = captured["model.layers.0.self_attn.q_proj"]!
    for (t, token) in TinyModel.tokens.enumerated() {
      let row = e[token * c.hidden..<(token + 1) * c.hidden]
      let r = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(c.hidden) + c.rmsEps).squareRoot()
      for (i, value) in row.enumerated() { #expect(abs(x0[t, i] - g[i] * value * r) < 1e-14) }
    }
    #expect(captured["model.layers.1.self_attn.k_proj"] == captured["model.layers.1.self_attn.q_proj"])
    var some = 0
    _ = try model.captureInputs(tokens: TinyModel.tokens, layers: ["model.layers.1.mlp.down_proj"]) { layer, x in
      some += 1
      #expect(layer.name == "model.layers.1.mlp.down_proj" && x == captured[layer.name]!)
    }
    #expect(some == 1)
    #expect(throws: EngineError.self) { try model.captureInputs(tokens: TinyModel.tokens, layers: ["model.layers.1.mlp.down_proj.weight"]) { _, _ in } }
  }

  /// Swapping a weight changes the loss, swapping it back restores the loss exactly, and a wrong size is refused.
  /// With two workers a linear layer's dX and dW run side by side (`Parallel.sideBySide`); inside a worker task
  /// every step runs serially on one thread. The loss and every gradient must be the same bits either way.
  @Test func gradientsDoNotDependOnHowTheWorkIsShared() throws {
    let model: LlamaModel<Float> = try TinyModel.model(tied: true)
    let names = Set(model.configuration.expectedTensors.map(\.name))
    let shared = try model.gradients(tokens: TinyModel.tokens, of: names)
    let serial = try Parallel.asWorker { try model.gradients(tokens: TinyModel.tokens, of: names) }
    #expect(shared.loss.bitPattern == serial.loss.bitPattern)
    #expect(Set(shared.gradients.keys) == names && Set(serial.gradients.keys) == names)
    for (name, g) in shared.gradients {
      #expect(g.map(\.bitPattern) == serial.gradients[name]?.map(\.bitPattern), "\(name)")
    }
  }

  @Test func replaceWeightSwapsAndRestores() throws {
    let model: LlamaModel<Float> = try TinyModel.model()
    let name = "model.layers.0.mlp.gate_proj.weight"
    let original = try model.weight(named: name)
    let before = try model.meanNLL(tokens: TinyModel.tokens)
    try model.replaceWeight(name: name, with: original.map { ($0 * 8).rounded() / 8 })  // a coarse "quantization"
    let quantized = try model.meanNLL(tokens: TinyModel.tokens)
    try model.replaceWeight(name: name, with: original)
    #expect(quantized != before)
    #expect(try model.meanNLL(tokens: TinyModel.tokens) == before)
    #expect(throws: EngineError.self) { try model.replaceWeight(name: name, with: [1, 2]) }
    #expect(throws: EngineError.self) { try model.replaceWeight(name: "model.layers.9.mlp.up_proj.weight", with: [1]) }
  }

  /// Logits reproduce the per-token NLL: −log softmax(z_t)[y_t] = NLL_t.
  @Test func logitsAndTokenNLLAgree() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let z = try model.logits(tokens: TinyModel.tokens), nll = try model.tokenNLL(tokens: TinyModel.tokens)
    #expect(z.rows == TinyModel.tokens.count - 1 && z.columns == model.configuration.vocab)
    for t in 0..<z.rows {
      let row = z.storage[t * z.columns..<(t + 1) * z.columns]
      let lse = Double.log(row.map { Double.exp($0) }.reduce(0, +))
      #expect(abs(lse - z[t, TinyModel.tokens[t + 1]] - nll[t]) < 1e-12)
    }
    #expect(abs(nll.reduce(0, +) / Double(nll.count) - (try model.meanNLL(tokens: TinyModel.tokens))) < 1e-14)
  }
}
