import Engine
import Foundation
import ModelIO
@testable import Pipeline
import Quantization
import Testing
import _TestSupport

/// `EngineSensitivityModel.reusesFirstWindowGradient`: the Fisher stage's first calibration window is the Hessian
/// window, so its gradient is kept as the base of the whole-vector Hessian products instead of computed again.
@Suite struct BaseGradientReuseTests {
  static let formats = ["int8"].map { try! QuantFormat(parsing: $0) }

  /// Kept from window 0 only when asked, bit for bit the gradient a fresh model computes for its products, and the
  /// products themselves equal bit for bit: tied and untied, with and without the embedding measured.
  @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
  func firstWindowGradientIsTheBaseGradient(tied: Bool, embedding: Bool) throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: tied))
    func model(reusing: Bool) throws -> EngineSensitivityModel<Float> {
      let m = try EngineSensitivityModel(
        model: loaded.model, calibrationTokens: EmbeddingLayerTests.tokens, hvpTokenCount: 12, formats: Self.formats,
        includesTokenEmbedding: embedding)
      m.reusesFirstWindowGradient = reusing
      return m
    }
    let (fresh, reused) = (try model(reusing: false), try model(reusing: true))
    #expect(reused.windows.count == 2 && reused.windows[0] == 0..<12)
    // window 1 first: only the Hessian window's gradient is kept
    for m in [fresh, reused] {
      for w in [1, 0] { try m.gradient(window: w) { _, _ in } }
    }
    #expect(fresh.baseGradient == nil)
    let kept = try #require(reused.baseGradient)
    #expect(kept == (try fresh.hessianBaseGradient()), "bit for bit")
    let v = reused.linearLayers.enumerated().map { i, layer in
      randomDoubles(layer.parameterCount, seed: 900 + UInt64(i)).map { Float($0) }
    }
    #expect(try reused.hessianVectorProduct(v) == fresh.hessianVectorProduct(v))
  }

  /// A gradient handed over only in part (the consumer throws) keeps nothing, and the base is then computed afresh.
  @Test func aFailedWindowKeepsNothing() throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: true))
    let m = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: EmbeddingLayerTests.tokens, hvpTokenCount: 12, formats: Self.formats)
    m.reusesFirstWindowGradient = true
    struct Stop: Error {}
    #expect(throws: Stop.self) { try m.gradient(window: 0) { i, _ in if i == 3 { throw Stop() } } }
    #expect(m.baseGradient == nil)
    try m.gradient(window: 0) { _, _ in }
    #expect(m.baseGradient != nil)
  }
}
