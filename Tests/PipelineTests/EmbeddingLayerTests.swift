import Allocation
import Engine
import Foundation
import ModelIO
@testable import Pipeline
import Quantization
import Sensitivity
import Testing
import Validation
import _TestSupport

/// Issue 14: the token embedding `model.embed_tokens` as a measured, planned and validated layer, on tiny tied and
/// untied llamas (2 blocks, hidden 64, vocabulary 258).
@Suite struct EmbeddingLayerTests {
  /// The tiny model's folder: the tied fixture, or the untied one (`untiedFolder`).
  static func folder(tied: Bool) throws -> String {
    if tied { return TestModels.repositoryRoot + "/fixtures/tiny-llama" }
    return try untiedFolder.get() + "/tiny-llama"
  }

  /// A temporary folder holding the untied llama, written once per test process (the same bytes every time: seed
  /// 5) and removed when the process exits; a test only reads it.
  static let untiedFolder = Result { () throws -> String in
    let folder = temporaryFolder("untied")
    removedAtExit = folder
    atexit { if let folder = EmbeddingLayerTests.removedAtExit { try? FileManager.default.removeItem(atPath: folder) } }
    try TinyLlama.writeHFFolder(folder + "/tiny-llama", config: TinyLlama.configuration(tied: false), seed: 5)
    return folder
  }

  /// The folder `untiedFolder` made (set once, inside its initializer), for the exit handler.
  nonisolated(unsafe) static var removedAtExit: String?

  /// 24 calibration tokens (BOS 256 first); the first 12 are the Hessian window, so 2 Fisher windows.
  static let tokens: [Int] = [256] + (0..<23).map { Int(SplitMix64Sequence.value(seed: 41, index: $0) % 256) }
  static let candidates = ["f16", "int8", "int4-g32", "q4_0"].map { try! QuantFormat(parsing: $0) }
  static let embedding = "model.embed_tokens"

  /// A measurement of the embedding and the linear layers, and its sensitivity model (whose caches hold the
  /// quantizations and captured inputs of the run).
  static func measure(_ loaded: LoadedModel) throws -> (MeasuredRun, EngineSensitivityModel<Float>) {
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 12, formats: candidates,
      includesTokenEmbedding: true)
    var settings = MeasureSettings()
    (settings.tokens, settings.hvpTokens, settings.probes) = (tokens.count, 12, 4)
    let provenance = settings.provenance(
      toolVersion: "test", modelSHA256: "", calibSHA256: "", candidates: model.candidates.map(\.name),
      auditSHA256: "", auditTokens: 0, created: "")
    let path = temporaryFolder("embed-run") + "/run.h5"
    defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
    return (try MeasurementRun(model: model, provenance: provenance, path: path).run(), model)
  }

  /// The same weights in Double, for finite differences.
  static func doubleTwin(_ loaded: LoadedModel) throws -> LlamaModel<Double> {
    let c = loaded.model.configuration
    var weights: LlamaModel<Double>.Weights = [:]
    for (name, _) in c.expectedTensors { weights[name] = WeightTensor<Double>(try loaded.file.tensor(named: name)) }
    return try LlamaModel(configuration: c, weights: weights)
  }

  @Test(arguments: [true, false])
  func theEmbeddingIsMeasuredLikeALayer(tied: Bool) throws {
    let loaded = try LoadedModel.load(path: try Self.folder(tied: tied))
    let (run, model) = try Self.measure(loaded)
    let i = run.layers.count - 1
    #expect(run.layers.count == 15 && run.layers[i] == MeasuredRun.Layer(name: Self.embedding, rows: 258, columns: 64))
    // Every statistic is there; the Hessian trace comes from the engine's HVP over both uses of the table.
    for v in [run.weightVariance[i], run.inputTrace[i], run.fisherTrace[i], run.hessianTrace[i]] { #expect(v.isFinite) }
    for c in run.candidates.indices {
      #expect(run.bytes[i][c] == Self.candidates[c].sizeInBytes(rows: 258, columns: 64))
      for (score, table) in run.proxies { #expect(table[i][c].isFinite, "\(score) of candidate \(c)") }
    }

    // Fisher trace: Σ g² of the mean gradient over the two calibration windows, the gradient by central
    // differences of the Double twin (h = 1e-5: truncation ~h², rounding ~u/h, both < 1e-9 of these O(1) values;
    // the tolerance covers the Float engine, ~1e-6 relative per gradient entry).
    let twin = try Self.doubleTwin(loaded)
    let name = "model.embed_tokens.weight"
    let e = try twin.weight(named: name)
    var mean = [Double](repeating: 0, count: e.count)
    let windows = MeasureSettings.calibrationWindows(tokens: Self.tokens.count, windowLength: 12)
    for range in windows {
      let window = Array(Self.tokens[range])
      for j in e.indices {
        var shifted = e
        shifted[j] = e[j] + 1e-5
        try twin.replaceWeight(name: name, with: shifted)
        let plus = try twin.meanNLL(tokens: window)
        shifted[j] = e[j] - 1e-5
        try twin.replaceWeight(name: name, with: shifted)
        let minus = try twin.meanNLL(tokens: window)
        mean[j] += (plus - minus) / 2e-5 / Double(windows.count)
      }
      try twin.replaceWeight(name: name, with: e)
    }
    let fisher = mean.reduce(0) { $0 + $1 * $1 }
    #expect(abs(run.fisherTrace[i] - fisher) <= 1e-4 * fisher, "Fisher trace \(run.fisherTrace[i]) vs \(fisher)")

    // Output error by brute force: Σ_t ‖ΔE[token_t]‖²/n, plus for the tied head Σ_t ‖ΔE x_t‖²/n over the final-norm
    // hidden states x_t (as captured; that they are the head's input is checked in the engine's tests).
    var head: [Float] = []
    if tied { _ = try loaded.model.captureInputs(tokens: Self.tokens, layers: ["lm_head"]) { _, x in head = x.storage } }
    let n = Double(Self.tokens.count)
    let w = try loaded.model.weight(named: name)
    for c in run.candidates.indices {
      let q = try #require(try model.quantize(layer: i, candidate: c)).weights
      let delta = zip(q, w).map { Double($0) - Double($1) }
      var error = 0.0
      for t in Self.tokens { for k in 0..<64 { error += delta[t * 64 + k] * delta[t * 64 + k] } }
      for row in 0..<(tied ? Self.tokens.count : 0) {
        for v in 0..<258 {
          var y = 0.0
          for k in 0..<64 { y += delta[v * 64 + k] * Double(head[row * 64 + k]) }
          error += y * y
        }
      }
      error /= n
      #expect(abs(run.outputError[i][c] - error) <= 1e-4 * error, "candidate \(c): \(run.outputError[i][c]) vs \(error)")
      #expect(run.weightError[i][c] == delta.reduce(0) { $0 + $1 * $1 } || abs(run.weightError[i][c] - delta.reduce(0) { $0 + $1 * $1 }) <= 1e-12 * run.weightError[i][c])
    }
    // Input trace: 1 for the one-hot lookup rows, plus tr(XᵀX)/n of the head's inputs when tied.
    let headTrace = head.reduce(0.0) { $0 + Double($1) * Double($1) } / n
    #expect(abs(run.inputTrace[i] - (1 + headTrace)) <= 1e-9 * (1 + headTrace))
    // Its importance matrix diag(XᵀX)/n is the head's inputs' (the lookup's one-hot rows have none): per column,
    // recomputed here; none for an untied table.
    if tied {
      var means = [Double](repeating: 0, count: 64)
      for (k, x) in head.enumerated() { means[k % 64] += Double(x) * Double(x) / n }
      #expect(run.inputSquareMeans[i].count == 64)
      #expect(zip(run.inputSquareMeans[i], means).allSatisfy { abs($0 - $1) <= 1e-12 * max($1, 1e-30) })
    } else {
      #expect(run.inputSquareMeans[i].isEmpty)
    }
    for k in 0..<i { #expect(run.inputSquareMeans[k].count == run.layers[k].columns, "\(run.layers[k].name)") }
  }

  /// The audit replaces the table in both its uses (the engine's `replaceWeight` of the tied table).
  @Test func theAuditQuantizesBothUsesOfATiedTable() throws {
    let loaded = try LoadedModel.load(path: try Self.folder(tied: true))
    let eval = Array(Self.tokens.reversed())
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: Self.tokens, hvpTokenCount: 12, evaluationTokens: eval,
      formats: Self.candidates, includesTokenEmbedding: true)
    let layer = model.linearLayers.count - 1
    let q = try #require(try model.quantize(layer: layer, candidate: 3)).weights
    let audited = try model.evaluate(replacing: layer, with: q)
    let reference = try LoadedModel.load(path: try Self.folder(tied: true))
    try reference.model.replaceWeight(name: "model.embed_tokens.weight", with: q)
    // the audit scores in Double from the logits, meanNLL in the engine's cross-entropy: equal to rounding
    let expected = try reference.model.meanNLL(tokens: eval)
    let base = try model.evaluate(replacing: nil, with: nil).meanNLL
    #expect(abs(audited.meanNLL - expected) < 1e-5 && abs(audited.meanNLL - base) > 1e-3, "\(audited.meanNLL) \(expected) \(base)")
    // and the table is restored afterwards
    #expect(try loaded.model.weight(named: "model.embed_tokens.weight") == reference.file.tensor(named: "model.embed_tokens.weight").storage)
  }

  /// A plan with `model.embed_tokens` (and `lm_head` when untied) runs packed: the logits equal the dense model's
  /// with the dequantized tables (Float activations: the same values in another order of summation).
  @Test(arguments: [true, false], ["q8_0", "int4-g32"])
  func aPlanWithTheEmbeddingValidates(tied: Bool, format: String) throws {
    let path = try Self.folder(tied: tied)
    let packed = try LoadedModel.load(path: path)
    let f = try QuantFormat(parsing: format)
    var formats = [Self.embedding: f, "model.layers.0.mlp.down_proj": f]
    if !tied { formats["lm_head"] = try QuantFormat(parsing: "q4_0") }
    let plan = PlanDocument.stub(formats)
    let checked = try PlanFile.formats(of: plan, path: "plan.json", modelSHA256: "", layers: packed.model.plannableLayers)
    #expect(checked == formats)
    try PackedModel(packed, activations: .f32).install(checked)
    #expect(packed.model.hasEmbeddingSource)
    #expect(packed.model.operatorLayers == ["model.layers.0.mlp.down_proj", "lm_head"])
    #expect(Set(packed.model.releasedWeightNames) == Set(["model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight"] + (tied ? [] : ["lm_head.weight"])))

    let dense = try LoadedModel.load(path: path)
    for layer in dense.model.plannableLayers where formats[layer.name] != nil {
      let w = try dense.file.tensor(named: layer.weightName).storage
      let format = formats[layer.name]!
      let method = try EngineSensitivityModel<Float>.chooseCalibration(w, rows: layer.outFeatures, columns: layer.inFeatures, format: format)
      try dense.model.replaceWeight(
        name: layer.weightName,
        with: quantizeDequantize(w, rows: layer.outFeatures, columns: layer.inFeatures, format: format, calibration: method ?? .minMax))
    }
    let window = Array(Self.tokens.prefix(20))
    let a = try packed.model.logits(tokens: window).storage, b = try dense.model.logits(tokens: window).storage
    let worst = zip(a, b).map { abs($0 - $1) }.max()!
    let scale = b.map(abs).max()!
    #expect(worst <= 1e-5 * scale, "max |Δlogit| \(worst) of \(scale)")
  }

  @Test func aTiedModelHasNoSeparateLMHeadLayer() throws {
    let loaded = try LoadedModel.load(path: try Self.folder(tied: true))
    #expect(loaded.model.plannableLayers.map(\.name).first == Self.embedding)
    #expect(throws: PlanValidationError.self) {
      _ = try PlanFile.formats(
        of: PlanDocument.stub(["lm_head": try QuantFormat(parsing: "q8_0")]), path: "plan.json", modelSHA256: "", layers: loaded.model.plannableLayers)
    }
  }
}

extension PlanDocument {
  /// A plan of `formats` with placeholder totals.
  static func stub(_ formats: [String: QuantFormat]) -> PlanDocument {
    let json = """
      {"format_version": 1, "model": "tiny", "budget_bytes": 0, "total_bytes": 0, "bits_per_weight": 0,
       "solver": "exact", "score": "fisher_diag", "predicted_loss_delta": 0, "layers": {\(formats.map { name, f in
         "\"\(name)\": {\"format\": \"\(f.name)\", \"bits\": 4, \"bytes\": 0, \"predicted_loss_delta\": 0}" }.joined(separator: ","))}}
      """
    return try! JSONDecoder().decode(PlanDocument.self, from: Data(json.utf8))
  }
}
