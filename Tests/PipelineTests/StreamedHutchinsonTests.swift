import Engine
import Foundation
import ModelIO
import Pipeline
import Quantization
import Sensitivity
import Testing
import _TestSupport

/// Issue 18: Hutchinson probes without a model-sized vector. `EngineSensitivityModel.hutchinsonSample` regenerates
/// each layer's block of the probe inside the engine's passes and takes the base gradient only through its
/// projections onto the probes; it must give the per-layer values of the whole-vector path (the probe drawn whole,
/// the one-sided product's blocks dotted with it) on the tiny llamas, tied and untied, with and without the
/// embedding as a layer.
@Suite struct StreamedHutchinsonTests {
  static let tokens = EmbeddingLayerTests.tokens
  static let formats = ["int8"].map { try! QuantFormat(parsing: $0) }

  /// The whole-vector path's values for probe `k` (what `SensitivityModel`'s default `hutchinsonSample` does).
  /// Also ‖v_i‖·‖(Hv)_i‖ per block, the scale an HVP's relative error applies to (Cauchy–Schwarz).
  static func wholeVector<S: EngineScalar>(_ model: EngineSensitivityModel<S>, _ trace: HutchinsonTrace, _ k: Int) throws -> (values: [Double], scales: [Double]) {
    let v = trace.probe(k)
    var values = [Double](repeating: .nan, count: v.count), scales = values
    try model.hessianVectorProduct(v) { i, hv in
      values[i] = v[i].withUnsafeBufferPointer { HutchinsonTrace.accumulate($0, hv, into: nil) }
      scales[i] = (Double(v[i].count) * hv.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
    }
    return (values, scales)
  }

  /// The engine-backed model of the tiny llama over `tokens`, and a 5-probe trace laid out like its layers.
  static func setUp<S: EngineScalar>(
    _ engine: LlamaModel<S>, embedding: Bool, diagonal: Bool, seed: UInt64
  ) throws -> (EngineSensitivityModel<S>, HutchinsonTrace) {
    let model = try EngineSensitivityModel(
      model: engine, calibrationTokens: tokens, hvpTokenCount: 12, formats: formats, includesTokenEmbedding: embedding)
    let blocks = model.linearLayers.map { HutchinsonTrace.Block(name: $0.name, count: $0.parameterCount) }
    let settings = HutchinsonTrace.Settings(relativeTolerance: 0, minimumProbes: 1, maximumProbes: 5, keepsDiagonal: diagonal)
    return (model, try HutchinsonTrace(blocks: blocks, settings: settings, seed: seed))
  }

  @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
  func streamedSamplesEqualWholeVectorSamples(tied: Bool, embedding: Bool) throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: tied))
    func check<S: EngineScalar>(_ engine: LlamaModel<S>, tolerance: Double) throws {
      let (model, trace) = try Self.setUp(engine, embedding: embedding, diagonal: false, seed: 3)
      let blocks = trace.blocks
      for k in [0, 1, 4] {
        let got = try model.hutchinsonSample(of: trace, probe: k)
        let (want, scales) = try Self.wholeVector(model, trace, k)
        #expect(got.count == blocks.count)
        for i in blocks.indices {
          // the difference is taken in Double sums instead of element by element: equal to the HVP's accuracy
          #expect(abs(got[i] - want[i]) <= tolerance * scales[i], "\(S.self) probe \(k) \(blocks[i].name): \(got[i]) vs \(want[i])")
        }
      }
    }
    try check(loaded.model, tolerance: 1e-2)
    try check(try EmbeddingLayerTests.doubleTwin(loaded), tolerance: 1e-6)
  }

  /// The product with v's blocks beside it (the Hessian diagonal's path): the engine-backed model regenerates each
  /// block of the probe in its passes, and hands over the very bits of the default's whole-probe product (probe and
  /// product), each block once, without touching the workspace; with the embedding as a layer it takes the default.
  @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
  func regeneratedProbeProductEqualsWholeProbeProduct(tied: Bool, embedding: Bool) throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: tied))
    func check<S: EngineScalar>(_ engine: LlamaModel<S>) throws {
      let (model, trace) = try Self.setUp(engine, embedding: embedding, diagonal: true, seed: 5)
      let blocks = trace.blocks
      for k in [0, 3] {
        let probe = trace.streamedProbe(k)
        func collect(_ product: (inout [[Float]], (Int, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void) throws -> Void) throws -> (pairs: [[[UInt32]]?], workspace: Int) {
          var pairs = [[[UInt32]]?](repeating: nil, count: blocks.count), workspace: [[Float]] = []
          try product(&workspace) { i, v, hv in
            #expect(pairs[i] == nil, "block \(i) handed over twice")
            pairs[i] = [v.map(\.bitPattern), hv.map(\.bitPattern)]
          }
          return (pairs, workspace.count)
        }
        let got = try collect { try model.hessianVectorProduct(probe: probe, workspace: &$0, consume: $1) }
        let want = try collect { try model.denseHessianVectorProduct(probe: probe, workspace: &$0, consume: $1) }
        #expect(got.pairs.allSatisfy { $0 != nil })
        #expect(got.workspace == (embedding ? blocks.count : 0))
        for i in blocks.indices {
          #expect(got.pairs[i] == want.pairs[i], "\(S.self) probe \(k) \(blocks[i].name)")
          #expect(want.pairs[i]?[0] == trace.probe(k)[i].map(\.bitPattern))
        }
      }
    }
    try check(loaded.model)
    try check(try EmbeddingLayerTests.doubleTwin(loaded))
  }

  /// A measurement of the model read from its file a weight at a time (`LoadedModel.load(…streaming: true)`, what
  /// `measure` does when the Float weights would not fit) is the same run as the dense model's, every number bit
  /// for bit, the embedding included.
  @Test(arguments: [true, false])
  func streamedWeightsMeasureTheSameRun(tied: Bool) throws {
    let folder = try EmbeddingLayerTests.folder(tied: tied)
    let (dense, _) = try EmbeddingLayerTests.measure(try LoadedModel.load(path: folder))
    let loaded = try LoadedModel.load(path: folder, deferring: { _ in [] }, streaming: true)
    #expect(loaded.model.streamedWeightNames.count == loaded.model.plannableLayers.count)
    let (streamed, _) = try EmbeddingLayerTests.measure(loaded)
    // bit patterns: unmeasured figures (eigenvalues, the audit baseline) are NaN in both
    func bits(_ x: [Double]) -> [UInt64] { x.map(\.bitPattern) }
    func bits(_ x: [[Double]]) -> [[UInt64]] { x.map(bits) }
    #expect(bits(streamed.weightVariance) == bits(dense.weightVariance))
    #expect(bits(streamed.hessianTrace) == bits(dense.hessianTrace))
    #expect(bits(streamed.probeValues) == bits(dense.probeValues))
    #expect(bits(streamed.fisherTrace) == bits(dense.fisherTrace))
    #expect(bits(streamed.inputTrace) == bits(dense.inputTrace))
    #expect(bits(streamed.weightError) == bits(dense.weightError))
    #expect(bits(streamed.outputError) == bits(dense.outputError))
    #expect(streamed.proxies.mapValues(bits) == dense.proxies.mapValues(bits))
    #expect(streamed.bytes == dense.bytes)
  }
}
