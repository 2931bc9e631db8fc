import Quantization
import Sensitivity

/// GPTQ kept only where it beats round to nearest on the layer's own calibration inputs.
///
/// GPTQ minimises the output error `tr(ΔW G ΔWᵀ)` greedily, column by column, against scales it fixes as it goes;
/// for the integer formats it is below round to nearest's on every SmolLM2 layer we tried (`GPTQRealLayerTests`),
/// but for GGML's K-quants (super-block scales found before the error feedback moves the weights) it lost on 8 of
/// the 30 `down_proj` layers at q4_K. So `--quantizer gptq` quantizes each layer both ways, compares the two output
/// errors on the same Gram matrix, and keeps GPTQ's codes only when they are strictly better; the run file, the
/// plan and the GGUF summary then say `rtn` for that layer. Every path that applies GPTQ (measure, the packed model,
/// the GGUF writer) goes through here, so they keep the same codes.
enum GuardedGPTQ {
  /// Layer `values` `[rows, columns]` in `format`: GPTQ's codes with `gram` (`G = XᵀX/n`) when their output error
  /// is below round to nearest's, else round to nearest's (same calibration).
  /// - Returns: the packed tensor and the quantizer whose codes it holds.
  /// - Throws: `QuantizationError` from either quantizer, `SensitivityError` from the output error.
  static func quantize(
    _ values: [Float], rows: Int, columns: Int, format: QuantFormat, gram: GramMatrix, calibration: RangeCalibration,
    options: GPTQ.Options
  ) throws -> (packed: PackedTensor, method: QuantizerMethod) {
    let rtn = try Quantization.quantize(values, rows: rows, columns: columns, format: format, calibration: calibration)
    guard GPTQ.supports(format) else { return (rtn, .rtn) }
    let gptq = try GPTQ.quantize(
      values, rows: rows, columns: columns, format: format, hessian: gram.values, calibration: calibration,
      options: options)
    let rtnError = try gram.outputError(delta: delta(rtn, values), rows: rows)
    let gptqError = try gram.outputError(delta: delta(gptq, values), rows: rows)
    return gptqError < rtnError ? (gptq, .gptq) : (rtn, .rtn)
  }

  /// `dequant(packed) − values`.
  static func delta(_ packed: PackedTensor, _ values: [Float]) -> [Float] {
    var d = packed.dequantize()
    for i in d.indices { d[i] -= values[i] }
    return d
  }
}
