import Engine
import TensorCore
import _TestSupport
import Testing

/// A linear operator holding a dense copy of W and doing its own GEMM (the same product the engine's forward
/// makes: on packed weights where the CPU has the packed kernel, which for the LM head gives the bits of the
/// engine's panel-at-a-time product; else `Float.gemm`), recording how it was called.
final class DenseOperator: LinearOperator, @unchecked Sendable {
  let outFeatures: Int
  let inFeatures: Int
  let weight: [Float]
  let packed: PackedWeights?
  /// (tokens, accumulate) per call.
  var calls: [(tokens: Int, accumulate: Bool)] = []

  init(_ weight: [Float], out: Int, in inFeatures: Int) {
    precondition(weight.count == out * inFeatures)
    self.weight = weight
    outFeatures = out
    self.inFeatures = inFeatures
    packed = PackedWeights(weight, rows: out, columns: inFeatures)
  }

  func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    calls.append((tokens, accumulate))
    if let packed {
      BLAS.sgemm(m: tokens, a: x, lda: inFeatures, packed: packed, accumulate: accumulate, c: y, ldc: outFeatures)
      return
    }
    weight.withUnsafeBufferPointer { w in
      Float.gemm(
        transposeA: false, transposeB: true, m: tokens, n: outFeatures, k: inFeatures, alpha: 1, a: x,
        lda: inFeatures, b: w.baseAddress!, ldb: inFeatures, beta: accumulate ? 1 : 0, c: y, ldc: outFeatures)
    }
  }
}

/// Embedding rows copied from a dense table.
final class DenseEmbedding: EmbeddingSource, @unchecked Sendable {
  let dimension: Int
  let table: [Float]
  var calls = 0

  init(_ table: [Float], dimension: Int) {
    self.table = table
    self.dimension = dimension
  }

  func rows(_ tokens: [Int], into: UnsafeMutablePointer<Float>) {
    calls += 1
    for (i, token) in tokens.enumerated() {
      for j in 0..<dimension { into[i * dimension + j] = table[token * dimension + j] }
    }
  }
}

/// The operator seam on the tiny model in Float: dense operators reproduce the dense model bit for bit,
/// accumulation reaches o/down, the LM head and embedding slots work, backward passes refuse while anything is
/// installed, released weights and bad shapes are typed errors.
@Suite struct OperatorSeamTests {
  typealias Model = LlamaModel<Float>

  /// Installs a `DenseOperator` copy of every linear layer (and the LM head) and a dense embedding source.
  @discardableResult
  static func installDense(
    _ model: Model, release: Bool = false, lmHead: Bool = true, embedding: Bool = true
  ) throws -> (operators: [String: DenseOperator], embedding: DenseEmbedding?) {
    let c = model.configuration
    var operators: [String: DenseOperator] = [:]
    for layer in model.linearLayers {
      let op = DenseOperator(try model.weight(named: layer.weightName), out: layer.outFeatures, in: layer.inFeatures)
      try model.installOperator(op, forLayer: layer.name, releaseDenseWeight: release)
      operators[layer.name] = op
    }
    var source: DenseEmbedding?
    let table = try model.weight(named: "model.embed_tokens.weight")
    if lmHead {
      let head = try model.weight(named: c.tied ? "model.embed_tokens.weight" : "lm_head.weight")
      let op = DenseOperator(head, out: c.vocab, in: c.hidden)
      // a tied table can be released only once the embedding lookup no longer reads it
      try model.installOperator(op, forLayer: "lm_head", releaseDenseWeight: release && !c.tied)
      operators["lm_head"] = op
    }
    if embedding {
      source = DenseEmbedding(table, dimension: c.hidden)
      try model.installEmbedding(source!, releaseDenseWeight: release && (!c.tied || lmHead))
    }
    return (operators, source)
  }

  @Test(arguments: [false, true])
  func denseOperatorsReproduceTheDenseModelBitForBit(tied: Bool) throws {
    let model: Model = try TinyModel.model(tied: tied)
    let tokens = TinyModel.tokens
    let want = try model.logits(tokens: tokens)
    let wantNLL = try model.tokenNLL(tokens: tokens)
    let (operators, source) = try Self.installDense(model)
    #expect(model.installedOperatorCount == 7 * model.configuration.layers + 1 && model.hasEmbeddingSource)
    #expect(model.operatorLayers == model.linearLayers.map(\.name) + ["lm_head"])
    #expect(try model.logits(tokens: tokens) == want)
    #expect(try model.tokenNLL(tokens: tokens) == wantNLL)
    #expect(try model.meanNLL(tokens: tokens) == wantNLL.reduce(0, +) / Double(wantNLL.count))
    // one call per layer and pass (3 passes), with the residual layers accumulating; the LM head sees T − 1 rows
    for layer in model.linearLayers {
      let calls = operators[layer.name]!.calls
      let accumulates = layer.name.hasSuffix("o_proj") || layer.name.hasSuffix("down_proj")
      #expect(calls.count == 3 && calls.allSatisfy { $0.tokens == tokens.count && $0.accumulate == accumulates }, "\(layer.name)")
    }
    #expect(operators["lm_head"]!.calls.allSatisfy { $0.tokens == tokens.count - 1 && !$0.accumulate })
    #expect(source?.calls == 3)
    // captured inputs are those of the dense model
    var captured = 0
    _ = try model.captureInputs(tokens: tokens, layers: ["model.layers.1.mlp.down_proj"]) { _, x in
      captured += 1
      #expect(x.rows == tokens.count && x.columns == model.configuration.intermediate)
    }
    #expect(captured == 1)
    model.removeOperators()
    #expect(model.installedOperatorCount == 0 && !model.hasEmbeddingSource)
    #expect(try model.logits(tokens: tokens) == want)
  }

  /// An operator is what runs: W/2 behind the operator gives the dense model with W/2 (same GEMM, so equal), and
  /// an operator that ignored `accumulate` would drop the residual.
  @Test func theOperatorIsWhatRuns() throws {
    let model: Model = try TinyModel.model()
    let tokens = TinyModel.tokens
    for name in ["model.layers.0.self_attn.o_proj", "model.layers.1.mlp.down_proj", "model.layers.0.mlp.up_proj"] {
      let layer = model.linearLayers.first { $0.name == name }!
      let w = try model.weight(named: layer.weightName)
      let half = w.map { $0 / 2 }
      try model.replaceWeight(name: layer.weightName, with: half)
      let want = try model.logits(tokens: tokens)
      try model.replaceWeight(name: layer.weightName, with: w)
      let dense = try model.logits(tokens: tokens)
      try model.installOperator(DenseOperator(half, out: layer.outFeatures, in: layer.inFeatures), forLayer: name)
      let got = try model.logits(tokens: tokens)
      #expect(got == want && got != dense, "\(name)")
      model.removeOperators()
      #expect(try model.logits(tokens: tokens) == dense)
    }
  }

  @Test func backwardPassesRefuseWhileInstalledAndWorkAfterRemoval() throws {
    let model: Model = try TinyModel.model()
    let tokens = TinyModel.tokens
    let names = Set(model.linearWeightNames)
    let want = try model.gradients(tokens: tokens, of: names)
    let layer = model.linearLayers[3]
    try model.installOperator(
      DenseOperator(try model.weight(named: layer.weightName), out: layer.outFeatures, in: layer.inFeatures),
      forLayer: layer.name)
    let v = [layer.weightName: randomFloats(layer.parameterCount, seed: 3)]
    let refusals: [(String, () throws -> Void)] = [
      ("gradients", { _ = try model.gradients(tokens: tokens, of: names) }),
      ("embeddedInputGradient", { _ = try model.embeddedInputGradient(tokens: tokens) }),
      ("HVP central", { _ = try model.hessianVectorProduct(tokens: tokens, vector: v) }),
      ("HVP one-sided", { _ = try model.hessianVectorProduct(tokens: tokens, vector: v, baseGradient: want.gradients) }),
      ("HVP consume", { try model.hessianVectorProduct(tokens: tokens, vector: v, baseGradient: want.gradients) { _, _ in } }),
      ("quadratic forms", { _ = try model.hessianQuadraticForms(tokens: tokens, vector: v) }),
    ]
    for (what, call) in refusals {
      #expect(throws: EngineError.self, "\(what)") { try call() }
      do { try call() } catch let error as EngineError {
        #expect(error.code == .forwardOnly, "\(what)")
        #expect(error.message.contains("1 linear operator is installed"), "\(error.message)")
      }
    }
    #expect(try model.meanNLL(tokens: tokens) == want.loss, "forward entry points still run")
    model.removeOperators()
    let again = try model.gradients(tokens: tokens, of: names)
    #expect(again.loss == want.loss && again.gradients == want.gradients)
    // an embedding source alone also makes the model forward-only
    try model.installEmbedding(DenseEmbedding(try model.weight(named: "model.embed_tokens.weight"), dimension: 8))
    #expect { try model.gradients(tokens: tokens, of: names) } throws: {
      ($0 as? EngineError)?.code == .forwardOnly && ($0 as! EngineError).message.contains("an embedding source is installed")
    }
    model.removeOperators()
    #expect(try model.gradients(tokens: tokens, of: names).loss == want.loss)
  }

  /// A model built with its weight matrices deferred never holds them: it refuses to run until every deferred
  /// matrix has an operator in its place, then gives the dense model's logits bit for bit; norms stay dense, a
  /// deferred name that is not a matrix is refused, and `plannableLayers(of:)` equals the instance's list.
  @Test(arguments: [false, true])
  func deferredWeightsStartReleasedAndRunThroughOperators(tied: Bool) throws {
    let dense: Model = try TinyModel.model(tied: tied)
    let tokens = TinyModel.tokens
    let want = try dense.logits(tokens: tokens)
    let c = dense.configuration
    #expect(Model.plannableLayers(of: c) == [dense.embeddingLayer] + dense.linearLayers + (tied ? [] : [dense.lmHeadLayer]))
    var weights: [String: WeightTensor<Float>] = TinyModel.weights(c)
    let deferred = Set(Model.plannableLayers(of: c).map(\.weightName))
    for name in deferred { weights[name] = nil }
    let model = try Model(configuration: c, weights: weights, deferred: deferred)
    #expect(Set(model.releasedWeightNames) == deferred)
    #expect { try model.logits(tokens: tokens) } throws: { ($0 as? EngineError)?.code == .weightReleased }
    #expect { try model.weight(named: "model.layers.0.mlp.up_proj.weight") } throws: { ($0 as? EngineError)?.code == .weightReleased }
    #expect(try model.weight(named: "model.norm.weight") == dense.weight(named: "model.norm.weight"))
    for layer in model.linearLayers {
      try model.installOperator(
        DenseOperator(try dense.weight(named: layer.weightName), out: layer.outFeatures, in: layer.inFeatures), forLayer: layer.name)
    }
    #expect { try model.logits(tokens: tokens) } throws: { ($0 as? EngineError)?.code == .weightReleased }
    let table = try dense.weight(named: "model.embed_tokens.weight")
    let head = try dense.weight(named: tied ? "model.embed_tokens.weight" : "lm_head.weight")
    try model.installOperator(DenseOperator(head, out: c.vocab, in: c.hidden), forLayer: "lm_head")
    try model.installEmbedding(DenseEmbedding(table, dimension: c.hidden))
    #expect(try model.logits(tokens: tokens) == want)
    #expect { try model.gradients(tokens: tokens, of: []) } throws: { ($0 as? EngineError)?.code == .forwardOnly }
    #expect {
      try Model(configuration: c, weights: TinyModel.weights(c), deferred: ["model.norm.weight"])
    } throws: { ($0 as? EngineError)?.code == .unknownTensor }
  }

  @Test func releasedWeightsAreTypedErrors() throws {
    let model: Model = try TinyModel.model()
    let tokens = TinyModel.tokens
    let want = try model.logits(tokens: tokens)
    try Self.installDense(model, release: true)
    #expect(model.releasedWeightNames.count == 7 * 2 + 2)
    #expect(try model.logits(tokens: tokens) == want, "operators run without the dense weights")
    for name in ["model.layers.0.self_attn.q_proj.weight", "lm_head.weight", "model.embed_tokens.weight"] {
      #expect { try model.weight(named: name) } throws: { ($0 as? EngineError)?.code == .weightReleased }
      #expect { try model.replaceWeight(name: name, with: []) } throws: { ($0 as? EngineError)?.code == .weightReleased }
    }
    #expect(try model.weight(named: "model.norm.weight").count == 8, "norms are kept")
    #expect { try model.gradients(tokens: tokens, of: []) } throws: { ($0 as? EngineError)?.code == .forwardOnly }
    model.removeOperators()
    #expect { try model.meanNLL(tokens: tokens) } throws: {
      let e = $0 as? EngineError
      return e?.code == .weightReleased && e!.message.contains("'model.layers.0.self_attn.q_proj.weight'")
    }
    #expect { try model.gradients(tokens: tokens, of: []) } throws: { ($0 as? EngineError)?.code == .weightReleased }
    // putting operators back makes it run again
    for layer in model.linearLayers {
      #expect(throws: Never.self) {
        try model.installOperator(DenseOperator(.init(repeating: 0, count: layer.parameterCount), out: layer.outFeatures, in: layer.inFeatures), forLayer: layer.name)
      }
    }
    #expect { try model.meanNLL(tokens: tokens) } throws: { ($0 as? EngineError)?.code == .weightReleased }
  }

  @Test func tiedTableIsReleasedOnlyWhenBothReadersAreReplaced() throws {
    let model: Model = try TinyModel.model(tied: true)
    let c = model.configuration
    let tokens = TinyModel.tokens
    let want = try model.logits(tokens: tokens)
    let table = try model.weight(named: "model.embed_tokens.weight")
    #expect { try model.installOperator(DenseOperator(table, out: c.vocab, in: c.hidden), forLayer: "lm_head", releaseDenseWeight: true) } throws: {
      ($0 as? EngineError)?.code == .weightReleased
    }
    #expect { try model.installEmbedding(DenseEmbedding(table, dimension: c.hidden), releaseDenseWeight: true) } throws: {
      ($0 as? EngineError)?.code == .weightReleased
    }
    #expect(model.releasedWeightNames.isEmpty)
    // the LM head operator replaces only the output projection: the lookup still reads the table
    model.removeOperators()
    try model.installOperator(DenseOperator(table, out: c.vocab, in: c.hidden), forLayer: "lm_head")
    #expect(try model.logits(tokens: tokens) == want)
    try model.installEmbedding(DenseEmbedding(table, dimension: c.hidden), releaseDenseWeight: true)
    #expect(model.releasedWeightNames == ["model.embed_tokens.weight"])
    #expect(try model.logits(tokens: tokens) == want)
    model.removeOperators()
    #expect { try model.logits(tokens: tokens) } throws: { ($0 as? EngineError)?.code == .weightReleased }
  }

  @Test func shapesAndNamesAreChecked() throws {
    let model: Model = try TinyModel.model()
    #expect(throws: EngineError(.shapeMismatch, "operator for 'model.layers.0.self_attn.k_proj' is [8, 9], the layer is [8, 8]")) {
      try model.installOperator(DenseOperator(.init(repeating: 0, count: 72), out: 8, in: 9), forLayer: "model.layers.0.self_attn.k_proj")
    }
    #expect { try model.installOperator(DenseOperator([0], out: 1, in: 1), forLayer: "model.layers.0.self_attn.k_proj.weight") } throws: {
      ($0 as? EngineError)?.code == .unknownTensor
    }
    #expect { try model.installOperator(DenseOperator(.init(repeating: 0, count: 88), out: 8, in: 11), forLayer: "lm_head") } throws: {
      ($0 as? EngineError)?.code == .shapeMismatch
    }
    #expect { try model.installEmbedding(DenseEmbedding([], dimension: 7)) } throws: { ($0 as? EngineError)?.code == .shapeMismatch }
    #expect(model.installedOperatorCount == 0 && !model.hasEmbeddingSource)
  }
}
