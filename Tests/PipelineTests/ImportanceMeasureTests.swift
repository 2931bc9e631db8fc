import Foundation
import Quantization
import Sensitivity
import Testing
import _TestSupport

@testable import Pipeline

/// `--quantizer imatrix` in `measure`: every GGML candidate of every layer, the tied token embedding included, is
/// `ImportanceQuantizer`'s encoding with the weights the run's own `/hessian/input_diagonal` gives (the importance
/// file `bitplan export --imatrix` writes from it), and the float candidates stay round to nearest.
@Suite struct ImportanceMeasureTests {
  @Test func ggmlCandidatesAreQuantizedWithTheRunsOwnImportance() throws {
    let loaded = try LoadedModel.load(path: try EmbeddingLayerTests.folder(tied: true))
    let tokens = EmbeddingLayerTests.tokens
    let formats = ["f16", "q8_0", "q5_1", "q4_0"].map { try! QuantFormat(parsing: $0) }
    func measure(_ quantizer: QuantizerChoice) throws -> MeasuredRun {
      let model = try EngineSensitivityModel(
        model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 12, formats: formats, includesTokenEmbedding: true)
      model.quantizer = quantizer
      var settings = MeasureSettings()
      (settings.tokens, settings.hvpTokens, settings.probes, settings.quantizer) = (tokens.count, 12, 2, quantizer)
      let provenance = settings.provenance(
        toolVersion: "test", modelSHA256: "", calibSHA256: "", candidates: model.candidates.map(\.name),
        auditSHA256: "", auditTokens: 0, created: "")
      let path = temporaryFolder("imatrix-run") + "/run.h5"
      defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
      return try MeasurementRun(model: model, provenance: provenance, path: path).run()
    }
    let run = try measure(.method(.imatrix))
    let rtn = try measure(.method(.rtn))
    let reference = try EngineSensitivityModel(
      model: loaded.model, calibrationTokens: tokens, hvpTokenCount: 12, formats: formats, includesTokenEmbedding: true)
    #expect(run.layers.last?.name == EmbeddingLayerTests.embedding)
    var sums = (imatrix: 0.0, rtn: 0.0)
    for (i, layer) in run.layers.enumerated() {
      let w = try reference.weights(of: i)
      let weights = ImportanceQuantizer.weights(squareMeans: run.inputSquareMeans[i], count: tokens.count)
      #expect(weights.count == layer.columns)
      for (c, format) in formats.enumerated() {
        let isFloat = !ImportanceQuantizer.supports(format)
        #expect(run.quantizer[i][c] == (isFloat ? "rtn" : "imatrix"), "\(layer.name) \(format.name)")
        guard !isFloat else {
          #expect(run.weightError[i][c].bitPattern == rtn.weightError[i][c].bitPattern)
          continue
        }
        let q = try ImportanceQuantizer.quantize(w, rows: layer.rows, columns: layer.columns, format: format, weights: weights)
          .dequantize()
        let error = zip(q, w).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        #expect(abs(run.weightError[i][c] - error) <= 1e-9 * error, "\(layer.name) \(format.name)")
        if format.name == "q4_0" { (sums.imatrix, sums.rtn) = (sums.imatrix + run.outputError[i][c], sums.rtn + rtn.outputError[i][c]) }
      }
    }
    // Weighting each column by its inputs' mean square lowers the output error the runs measure, summed over layers.
    #expect(sums.imatrix < sums.rtn, "q4_0 output error: imatrix \(sums.imatrix), rtn \(sums.rtn)")
  }

  @Test func imatrixIsAskedForByName() {
    #expect(QuantizerChoice("imatrix") == .method(.imatrix))
    #expect(!QuantizerChoice.best.methods.contains(.imatrix))
  }
}
