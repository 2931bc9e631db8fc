import Engine
import Foundation
import Pipeline
import Quantization
import Sensitivity
import Testing
import Validation
import _TestSupport

/// Single-layer scores with activation reuse and the packed layer (`EngineSensitivityModel+Scores.swift`) against
/// the whole forward pass of the same model.
@Suite struct SingleLayerScoreTests {
  static let calibration = Array(0..<40).map { ($0 * 37) % 258 }
  static let evaluation = [256] + Array(0..<47).map { ($0 * 11 + 5) % 256 }

  func model(_ formats: [String]) throws -> (LoadedModel, EngineSensitivityModel<Float>) {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: Self.calibration, hvpTokenCount: 20, evaluationTokens: Self.evaluation,
      formats: try formats.map { try QuantFormat(parsing: $0) })
    return (loaded, model)
  }

  /// A packed pair equals the full forward with the same `PackedLinear` installed; bit for bit on both texts.
  @Test func packedPairEqualsTheFullPassWithTheOperator() throws {
    let (loaded, model) = try model(["int4-g32"])
    for (text, tokens) in [(ScoredText.heldOut, Self.evaluation), (.calibration(tokens: 24), Array(Self.calibration.prefix(24)))] {
      let baseLogits = try loaded.model.logits(tokens: tokens)
      let reference = ReferenceDistribution(logits: baseLogits, precision: .exact)
      for layer in [0, 5, model.linearLayers.count - 1] {
        let got = try #require(try model.score(layer: layer, candidate: 0, on: text))
        let q = try #require(try model.quantize(layer: layer, candidate: 0))
        let l = model.linearLayers[layer]
        let packed = try quantize(
          try loaded.model.weight(named: loaded.model.linearWeightNames[layer]), rows: l.rows, columns: l.columns,
          format: model.formats[0], calibration: RangeCalibration(recorded: q.calibration) ?? .minMax)
        try loaded.model.installOperator(try PackedLinear(packed, activations: .int8), forLayer: l.name)
        let logits = try loaded.model.logits(tokens: tokens)
        loaded.model.removeOperators()
        let want = try TokenScoring.score(logits: logits, targets: Array(tokens.dropFirst()), reference: reference)
        #expect(got.meanNLL == want.meanNLL && got.meanKLD == want.meanKLD, "layer \(layer) on \(text)")
        #expect(got.meanKLD > 0)
      }
      #expect(try model.baselineNLL(on: text) == TokenScoring.nll(
        logits: baseLogits.storage, rows: baseLogits.rows, vocabulary: baseLogits.columns,
        targets: Array(tokens.dropFirst())).reduce(0, +) / Double(tokens.count - 1))
    }
    #expect(model.scoring.packedPairs == 6 && model.scoring.densePairs == 0)
    #expect(loaded.model.installedOperatorCount == 0)
  }

  /// A format without an int8 kernel (nf4) runs dense, resumed: equal to the dense full pass of `evaluate`.
  @Test func formatWithoutAnInt8KernelFallsBackToDense() throws {
    let (_, model) = try model(["nf4"])
    for layer in [2, 9] {
      let got = try #require(try model.score(layer: layer, candidate: 0, on: .heldOut))
      let q = try #require(try model.quantize(layer: layer, candidate: 0))
      let want = try model.evaluate(replacing: layer, with: q.weights)
      #expect(got.meanNLL == want.meanNLL && got.meanKLD == want.meanKLD)
    }
    #expect(model.scoring.densePairs == 2 && model.scoring.packedPairs == 0)
  }

  @Test func allLayerAuditCountIsTheLayersThatOfferTheFormat() throws {
    let (_, model) = try model(["int8", "int4-g32"])
    #expect(try model.allLayerAuditCount(try QuantFormat(parsing: "int4-g32")) == model.linearLayers.count)
    #expect(throws: MeasureError.self) { try model.allLayerAuditCount(try QuantFormat(parsing: "int2-g64")) }
  }
}
