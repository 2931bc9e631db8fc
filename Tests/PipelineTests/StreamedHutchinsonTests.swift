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

  @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
  func streamedSamplesEqualWholeVectorSamples(tied: Bool, embedding: Bool) throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: tied))
    func check<S: EngineScalar>(_ engine: LlamaModel<S>, tolerance: Double) throws {
      let model = try EngineSensitivityModel(
        model: engine, calibrationTokens: Self.tokens, hvpTokenCount: 12, formats: Self.formats,
        includesTokenEmbedding: embedding)
      let blocks = model.linearLayers.map { HutchinsonTrace.Block(name: $0.name, count: $0.parameterCount) }
      let settings = HutchinsonTrace.Settings(relativeTolerance: 0, minimumProbes: 1, maximumProbes: 5, keepsDiagonal: false)
      let trace = try HutchinsonTrace(blocks: blocks, settings: settings, seed: 3)
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
}
