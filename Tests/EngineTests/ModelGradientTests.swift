import Engine
import _TestSupport
import Testing

/// The whole backward pass against central differences of `meanNLL` on the tiny model (Double), for every tensor,
/// tied and untied; plus the activation gradient and the Float path against the Double one.
@Suite struct ModelGradientTests {
  /// Central difference of the loss in one weight, via `replaceWeight` (Double).
  static func numericGradient(_ model: LlamaModel<Double>, _ name: String) throws -> [Double] {
    let w = try model.weight(named: name)
    defer { try! model.replaceWeight(name: name, with: w) }
    return FiniteDifferences.gradient(at: w) { values in
      try! model.replaceWeight(name: name, with: values)
      return try! model.meanNLL(tokens: TinyModel.tokens)
    }
  }

  @Test(arguments: [false, true])
  func everyTensorGradientMatchesFiniteDifferences(tied: Bool) throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: tied)
    let names = TinyModel.configuration(tied: tied).expectedTensors.map(\.name)
    let (loss, grads) = try model.gradients(tokens: TinyModel.tokens, of: Set(names))
    #expect(abs(loss - (try model.meanNLL(tokens: TinyModel.tokens))) < 1e-14)
    #expect(Set(grads.keys) == Set(names))
    for name in names {
      let numeric = try Self.numericGradient(model, name)
      let bad = FiniteDifferences.mismatches(grads[name]!, numeric)
      #expect(bad.isEmpty, "\(name): \(bad.prefix(3))")
      #expect(numeric.contains { $0 != 0 } || name == "lm_head.weight", "\(name): gradient identically zero")
    }
  }

  /// ∂L/∂x₀ for a token that occurs once equals ∂L/∂E[token] in an untied model (the embedding is a row copy).
  @Test func embeddedInputGradientMatchesEmbeddingRows() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: false)
    let (_, dx) = try model.embeddedInputGradient(tokens: TinyModel.tokens)
    let numeric = try Self.numericGradient(model, "model.embed_tokens.weight")
    let d = model.configuration.hidden
    for (t, token) in TinyModel.tokens.enumerated() where TinyModel.tokens.filter({ $0 == token }).count == 1 {
      let row = Array(dx.storage[t * d..<(t + 1) * d]), want = Array(numeric[token * d..<(token + 1) * d])
      #expect(FiniteDifferences.mismatches(row, want).isEmpty, "position \(t)")
    }
  }

  /// Only the asked-for tensors come back, and their values do not depend on what else was asked for.
  @Test func subsetsAreConsistent() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let all = Set(TinyModel.configuration(tied: true).expectedTensors.map(\.name))
    let one = "model.layers.1.mlp.up_proj.weight"
    let (_, full) = try model.gradients(tokens: TinyModel.tokens, of: all)
    let (_, part) = try model.gradients(tokens: TinyModel.tokens, of: [one])
    #expect(Array(part.keys) == [one])
    #expect(part[one] == full[one])
    #expect(throws: EngineError.self) { try model.gradients(tokens: TinyModel.tokens, of: ["lm_head.weight"]) }
  }

  /// Float vs Double with identical weights: each Float op has relative error ~u = 6e-8, amplified by the depth
  /// (~40 ops) and by cancellation in the softmax/RMS Jacobians; 1e-4 relative to the largest entry bounds it
  /// with room (measured ~1e-6), while a precision-dependent bug would show as O(1).
  @Test func floatPathAgreesWithDouble() throws {
    let c = TinyModel.configuration(tied: false)
    let double = try LlamaModel<Double>(configuration: c, weights: TinyModel.weights(c))
    let float = try LlamaModel<Float>(configuration: c, weights: TinyModel.weights(c))
    let names = Set(c.expectedTensors.map(\.name))
    let (lossD, gradD) = try double.gradients(tokens: TinyModel.tokens, of: names)
    let (lossF, gradF) = try float.gradients(tokens: TinyModel.tokens, of: names)
    #expect(abs(lossD - lossF) < 1e-5)
    for name in names {
      let scale = gradD[name]!.map(abs).max()!
      let error = zip(gradD[name]!, gradF[name]!).map { abs($0 - Double($1)) }.max()!
      #expect(error <= 1e-4 * scale, "\(name): \(error) vs scale \(scale)")
    }
  }
}
