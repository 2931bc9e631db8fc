import Engine
import Testing
import _TestSupport

/// Issue 18: weight matrices read from a `WeightReader` whenever a pass reaches them (`LlamaModel(…streamed:)`)
/// give the dense model's numbers bit for bit, in every entry point, tied and untied, Float and Double.
@Suite struct StreamedWeightTests {
  /// The tiny model dense, and the same weights with every matrix (embedding and head included) streamed; `reads`
  /// counts the reader calls.
  static func twins<S: EngineScalar>(tied: Bool, as _: S.Type) throws -> (dense: LlamaModel<S>, streamed: LlamaModel<S>, reads: Counter) {
    let c = TinyModel.configuration(tied: tied)
    let weights: [String: WeightTensor<S>] = TinyModel.weights(c)
    let dense = try LlamaModel(configuration: c, weights: weights)
    let matrices = Set(LlamaModel<S>.plannableLayers(of: c).map(\.weightName))
    let reads = Counter()
    var readers: [String: WeightReader] = [:]
    for name in matrices {
      let values = weights[name]!.values.map { Float($0) }
      readers[name] = WeightReader(values: {
        reads.count += 1
        return values
      })
    }
    let streamed = try LlamaModel(configuration: c, weights: weights.filter { !matrices.contains($0.key) }, streamed: readers)
    return (dense, streamed, reads)
  }

  final class Counter { var count = 0 }

  @Test(arguments: [true, false])
  func streamedWeightsGiveTheDenseNumbers(tied: Bool) throws {
    // Float: the tiny model's weights are Float values, so both twins hold the same values
    let (dense, streamed, reads) = try Self.twins(tied: tied, as: Float.self)
    let tokens = TinyModel.tokens
    #expect(streamed.streamedWeightNames.count == dense.plannableLayers.count)
    #expect(try streamed.meanNLL(tokens: tokens) == (try dense.meanNLL(tokens: tokens)))
    #expect(try streamed.logits(tokens: tokens) == (try dense.logits(tokens: tokens)))
    let names = Set(dense.linearWeightNames + ["model.embed_tokens.weight"])
    let g = try dense.gradients(tokens: tokens, of: names)
    let h = try streamed.gradients(tokens: tokens, of: names)
    #expect(g.loss == h.loss && g.gradients == h.gradients)
    // a forward + backward reads each linear weight at most twice and the tables once
    #expect(reads.count > 0)
    var vector: [String: [Float]] = [:]
    for (k, name) in names.sorted().enumerated() {
      vector[name] = randomDoubles(try dense.weight(named: name).count, seed: UInt64(70 + k)).map { $0 < 0 ? -1 : 1 }
    }
    #expect(try streamed.hessianVectorProduct(tokens: tokens, vector: vector, of: names) == (try dense.hessianVectorProduct(tokens: tokens, vector: vector, of: names)))
    #expect(
      try streamed.hessianVectorProduct(tokens: tokens, vector: vector, baseGradient: g.gradients, of: names)
        == (try dense.hessianVectorProduct(tokens: tokens, vector: vector, baseGradient: g.gradients, of: names)))
    let projections = Dictionary(uniqueKeysWithValues: names.map { name in
      (name, zip(vector[name]!, g.gradients[name]!).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
    })
    let probe = StreamedVector<Float>(names: names.sorted(), squaredNorm: Double(vector.values.reduce(0) { $0 + $1.count })) { name, out in
      for i in out.indices { out[i] = vector[name]![i] }
    }
    #expect(
      try streamed.hessianQuadraticForms(tokens: tokens, probe: probe, baseProjections: projections)
        == (try dense.hessianQuadraticForms(tokens: tokens, probe: probe, baseProjections: projections)))
    for name in names { #expect(try streamed.weight(named: name) == (try dense.weight(named: name))) }
  }

  /// The Double engine converts the Float reader's values exactly, so it too agrees bit for bit.
  @Test func doubleStreamedWeightsGiveTheDenseNumbers() throws {
    let (dense, streamed, _) = try Self.twins(tied: true, as: Double.self)
    let names = Set(dense.linearWeightNames)
    // the dense twin holds the Double values; the reader gives them rounded to Float, so compare with a dense
    // model of the rounded values
    var rounded: [String: WeightTensor<Double>] = [:]
    let matrices = Set(dense.plannableLayers.map(\.weightName))
    for (name, shape) in dense.configuration.expectedTensors {
      let values = try dense.weight(named: name)
      rounded[name] = WeightTensor(shape: shape, values: matrices.contains(name) ? values.map { Double(Float($0)) } : values)
    }
    let reference = try LlamaModel(configuration: dense.configuration, weights: rounded)
    let g = try reference.gradients(tokens: TinyModel.tokens, of: names)
    let h = try streamed.gradients(tokens: TinyModel.tokens, of: names)
    #expect(g.loss == h.loss && g.gradients == h.gradients)
  }

  /// `replaceWeight` gives a streamed weight dense values; its file's values make it streamed again; a reader that
  /// fails gives NaN, which the loss shows.
  @Test func replacedStreamedWeightsAndFailingReaders() throws {
    let (dense, streamed, _) = try Self.twins(tied: false, as: Float.self)
    let name = dense.linearWeightNames[4]
    let original = try dense.weight(named: name)
    let changed = original.map { $0 * 0.5 }
    try dense.replaceWeight(name: name, with: changed)
    try streamed.replaceWeight(name: name, with: changed)
    #expect(try streamed.weight(named: name) == changed)
    #expect(try streamed.meanNLL(tokens: TinyModel.tokens) == (try dense.meanNLL(tokens: TinyModel.tokens)))
    try dense.replaceWeight(name: name, with: original)
    try streamed.replaceWeight(name: name, with: original)
    #expect(try streamed.meanNLL(tokens: TinyModel.tokens) == (try dense.meanNLL(tokens: TinyModel.tokens)))
    #expect(throws: EngineError.self) { try streamed.replaceWeight(name: name, with: [1, 2]) }

    let c = TinyModel.configuration(tied: true)
    let weights: [String: WeightTensor<Float>] = TinyModel.weights(c)
    let broken = "model.layers.1.mlp.up_proj.weight"
    let model = try LlamaModel(
      configuration: c, weights: weights.filter { $0.key != broken }, streamed: [broken: WeightReader(values: { nil })])
    #expect(try model.meanNLL(tokens: TinyModel.tokens).isNaN)
    #expect(throws: EngineError.self) {
      _ = try LlamaModel(configuration: c, weights: weights, deferred: [broken], streamed: [broken: WeightReader(values: { nil })])
    }
  }
}
