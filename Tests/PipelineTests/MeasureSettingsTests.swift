import Foundation
import Pipeline
import Quantization
import Sensitivity
import Testing
import _TestSupport

/// Settings, windows, held-out tokens and the engine-backed model's pieces (quantization, audit scores) on the
/// committed tiny model.
@Suite struct MeasureSettingsTests {
  @Test(arguments: [(512, 128, 4), (500, 128, 3), (128, 128, 1), (200, 128, 1), (9, 2, 4)])
  func calibrationWindowsPartitionTheTokens(tokens: Int, length: Int, count: Int) {
    let windows = MeasureSettings.calibrationWindows(tokens: tokens, windowLength: length)
    #expect(windows.count == count)
    #expect(windows.first?.lowerBound == 0 && windows.last?.upperBound == tokens)
    #expect(zip(windows, windows.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
    #expect(windows.dropLast().allSatisfy { $0.count == length } && windows.last!.count >= length)
  }

  @Test func badSettingsAreTypedErrors() {
    var s = MeasureSettings()
    s.hvpTokens = 600
    #expect(throws: MeasureError.self) { try s.validate() }
    s = MeasureSettings()
    s.candidates = [try! QuantFormat(parsing: "int8"), try! QuantFormat(parsing: "int8")]
    #expect { try s.validate() } throws: { ($0 as? MeasureError)?.code == .badCandidate }
    #expect(MeasureSettings().minimumProbes == 8)
    #expect(throws: Never.self) { try MeasureSettings().validate() }
  }

  @Test func heldOutTokensFollowTheCalibrationTokens() throws {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let text = try TokenWindow.readText(TestModels.sharedData + "/prideprejudice.txt")
    let calibration = try TokenWindow.make(text: text, tokenizer: loaded.tokenizer, count: 64)
    let heldOut = try Measurement.heldOutTokens(text: text, tokenizer: loaded.tokenizer, count: 64)
    let both = try TokenWindow.make(text: text, tokenizer: loaded.tokenizer, count: 127)
    #expect(heldOut.count == 64 && heldOut.first == calibration.first)
    #expect(Array(heldOut.dropFirst()) == Array(both[64...]), "the 63 ids right after the calibration window")
    #expect(throws: MeasureError.self) { try Measurement.heldOutTokens(text: "too short", tokenizer: loaded.tokenizer, count: 64) }
  }

  @Test func quantizationKeepsTheBestSampledCalibrationAndExactBytes() throws {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let formats = try ["f16", "int4-g32", "int3-g64"].map { try QuantFormat(parsing: $0) }
    let tokens = Array(0..<40).map { ($0 * 37) % 258 }
    let model = try EngineSensitivityModel(model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 20, formats: formats)
    for layer in [0, 6] {
      let l = model.linearLayers[layer]
      let w = try model.weights(of: layer)
      for (c, format) in formats.enumerated() {
        let q = try #require(try model.quantize(layer: layer, candidate: c))
        #expect(q.bytes == format.sizeInBytes(rows: l.rows, columns: l.columns))
        if format.name == "f16" {
          #expect(q.calibration == "fixed")
          continue
        }
        // The chosen method is the best of the standard ones on the sampled rows.
        let rows = (0..<16).map { $0 * l.rows / 16 }
        let sample = rows.flatMap { w[$0 * l.columns..<($0 + 1) * l.columns] }
        let ranked = try RangeCalibration.compare(sample, rows: 16, columns: l.columns, format: format)
        #expect(q.calibration == ranked[0].method.description)
        let direct = try quantizeDequantize(w, rows: l.rows, columns: l.columns, format: format, calibration: ranked[0].method)
        #expect(q.weights == direct)
        // The one-at-a-time path (a fresh model asked for this candidate first, as the audit asks) gives the same
        // bits as the all-candidates prefetch.
        let fresh = try EngineSensitivityModel(model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 20, formats: formats)
        if c != 0 { #expect(try fresh.quantize(layer: layer, candidate: c) == q) }
      }
    }
  }

  @Test func auditScoresAreZeroForTheUnchangedModelAndPositiveOtherwise() throws {
    let loaded = try LoadedModel.load(path: TestModels.repositoryRoot + "/fixtures/tiny-llama")
    let tokens = Array(0..<40).map { ($0 * 37) % 258 }
    let evaluation = [256] + Array(0..<47).map { ($0 * 11 + 5) % 256 }
    let model = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 20, evaluationTokens: evaluation,
      formats: [try QuantFormat(parsing: "int2-g32")])
    let base = try model.evaluate(replacing: nil, with: nil)
    #expect(abs(base.meanNLL - (try loaded.model.meanNLL(tokens: evaluation))) < 1e-5)
    let original = try model.weights(of: 3)
    let same = try model.evaluate(replacing: 3, with: original)
    #expect(abs(same.meanKLD) < 1e-12 && abs(same.meanNLL - base.meanNLL) < 1e-12)
    let q = try #require(try model.quantize(layer: 3, candidate: 0))
    let changed = try model.evaluate(replacing: 3, with: q.weights)
    #expect(changed.meanKLD > 0)
    #expect(try model.weights(of: 3) == original, "the weights are restored")
  }
}
