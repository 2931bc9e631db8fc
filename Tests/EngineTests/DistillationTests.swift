import Engine
import Testing
import _TestSupport

/// Distillation (`LlamaModel+Distillation.swift`) on the tiny Double model: the gradient of KL(teacher ‖ model)
/// against central differences of `distillationLoss` for every tensor, a one-hot teacher giving the NLL's gradient
/// to the bit, a model's own distribution giving zero loss, and a teacher of the wrong size refused.
@Suite struct DistillationTests {
  /// A teacher: another seed's model on the same tokens.
  static func teacher(tied: Bool) throws -> [Double] {
    let c = TinyModel.configuration(tied: tied)
    let other = try LlamaModel<Double>(configuration: c, weights: TinyModel.weights(c, seed: 99))
    return try other.probabilities(tokens: TinyModel.tokens).storage
  }

  @Test(arguments: [false, true])
  func gradientMatchesFiniteDifferences(tied: Bool) throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: tied)
    let teacher = try Self.teacher(tied: tied)
    let names = TinyModel.configuration(tied: tied).expectedTensors.map(\.name)
    let (loss, grads) = try model.distillationGradients(tokens: TinyModel.tokens, teacher: teacher, of: Set(names))
    let forward = try model.distillationLoss(tokens: TinyModel.tokens, teacher: teacher)
    #expect(loss > 0 && abs(loss - forward) < 1e-14)
    for name in names {
      let w = try model.weight(named: name)
      let numeric = FiniteDifferences.gradient(at: w) { values in
        try! model.replaceWeight(name: name, with: values)
        return try! model.distillationLoss(tokens: TinyModel.tokens, teacher: teacher)
      }
      try model.replaceWeight(name: name, with: w)
      let bad = FiniteDifferences.mismatches(grads[name]!, numeric)
      #expect(bad.isEmpty, "\(name): \(bad.prefix(3))")
    }
  }

  /// KL(onehot(y) ‖ q) = −log q_y: a one-hot teacher of the targets gives the NLL's gradient exactly.
  @Test func oneHotTeacherIsTheNLL() throws {
    let model: LlamaModel<Float> = try TinyModel.model(tied: true)
    let v = model.configuration.vocab
    var teacher = [Float](repeating: 0, count: (TinyModel.tokens.count - 1) * v)
    for (t, y) in TinyModel.tokens.dropFirst().enumerated() { teacher[t * v + y] = 1 }
    let names: Set<String> = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.embed_tokens.weight"]
    let (kl, distilled) = try model.distillationGradients(tokens: TinyModel.tokens, teacher: teacher, of: names)
    let (nll, plain) = try model.gradients(tokens: TinyModel.tokens, of: names)
    #expect(distilled == plain)
    #expect(abs(kl - nll) < 1e-5 * nll)
  }

  @Test func ownDistributionHasZeroLossAndBadTeachersAreRefused() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: false)
    let own = try model.probabilities(tokens: TinyModel.tokens).storage
    let loss = try model.distillationLoss(tokens: TinyModel.tokens, teacher: own)
    #expect(abs(loss) < 1e-12)
    #expect(throws: EngineError.self) { try model.distillationLoss(tokens: TinyModel.tokens, teacher: [0.5, 0.5]) }
    #expect(throws: EngineError.self) {
      try model.distillationGradients(tokens: TinyModel.tokens, teacher: Array(own.dropLast()), of: ["model.norm.weight"])
    }
  }
}
