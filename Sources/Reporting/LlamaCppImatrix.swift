import Foundation
import GGML
import ModelIO
import Sensitivity

/// A measured run's activation statistics as llama.cpp's importance matrix: the GGUF file `llama-imatrix` writes and
/// `llama-quantize --imatrix FILE` reads (common/imatrix-loader.cpp `common_imatrix_load`, tools/quantize/quantize.cpp
/// `load_imatrix`).
///
/// Layout, as the loader parses it: metadata `general.type = "imatrix"`, `imatrix.datasets` (array of strings),
/// `imatrix.chunk_count` and `imatrix.chunk_size` (u32; without all three the loader refuses the file), and per weight
/// tensor two F32 tensors, `<gguf name>.in_sum2` `[in]` (`Σ_t x_t[j]²` over the calibration tokens) and
/// `<gguf name>.counts` `[1]` (the token count). llama-quantize quantizes that tensor with the weights
/// `in_sum2[j] / counts`, i.e. the run's `/hessian/input_diagonal` `diag(XᵀX)/n`; so `in_sum2 = n · mean` and
/// `counts = n`, with `n` the run's calibration tokens.
///
/// One difference from llama-imatrix, on purpose: it records only `blk.*` tensors (and `output.weight` with
/// `--process-output`), so a tied embedding (`token_embd.weight`, which is also the LM head) never gets an entry
/// and is quantized without one. The run measures the table as a layer, and its input statistics are the LM head's
/// (the final-norm hidden states), so the entry is written here and llama-quantize uses it.
public struct LlamaCppImatrix: Sendable, Equatable {
  /// One weight tensor's entry.
  public struct Entry: Sendable, Equatable {
    /// The GGUF tensor name (`blk.0.attn_q.weight`, `token_embd.weight`).
    public var name: String
    /// `diag(XᵀX)/n`, one value per input column.
    public var squareMeans: [Double]
  }

  /// In the run's layer order; layers without input statistics (an untied embedding) are left out.
  public var entries: [Entry]
  /// `n`, the calibration tokens the statistics are over (`counts`).
  public var tokens: Int
  /// `imatrix.datasets`: the calibration text as the run names it.
  public var dataset: String

  /// The importance matrix of `run`.
  /// - Parameters:
  ///   - tensors: the GGUF model's tensors (`ModelFile.tensorInfos`), whose file names spell each layer's tensor;
  ///     empty: llama's GGUF names (`NameMapping`).
  /// - Throws: `.unsupportedModel` for a run without `/hessian/input_diagonal` (measured before it existed) or a
  ///   layer whose GGUF name cannot be found; `.unknownLayer` when the model lacks a layer or its width differs.
  public init(run: MeasuredRun, tensors: [TensorInfo] = []) throws(ExportError) {
    let byHF = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    var entries: [Entry] = []
    for (layer, means) in zip(run.layers, run.inputSquareMeans) where !means.isEmpty {
      let hf = layer.name + ".weight"
      let gguf: String
      if tensors.isEmpty {
        guard let name = NameMapping.ggufName(forHF: hf) else {
          throw ExportError(.unsupportedModel, "\(layer.name): no GGUF tensor name; give the model (--model)")
        }
        gguf = name
      } else {
        guard let t = byHF[hf] else { throw ExportError(.unknownLayer, "\(layer.name): the model has no tensor \(hf)") }
        guard t.shape.last == means.count else {
          throw ExportError(.unknownLayer, "\(layer.name): \(means.count) input columns in the run, the model's \(hf) is \(t.shape)")
        }
        gguf = t.fileName == hf ? (NameMapping.ggufName(forHF: hf) ?? hf) : t.fileName
      }
      entries.append(Entry(name: gguf, squareMeans: means))
    }
    if entries.isEmpty {
      throw ExportError(
        .unsupportedModel,
        "the run has no /hessian/input_diagonal (measured by an older bitplan); measure again to get an importance matrix")
    }
    self.entries = entries
    tokens = run.provenance.tokens
    dataset = run.provenance.calibrationPath.isEmpty ? run.provenance.calibSHA256 : run.provenance.calibrationPath
  }

  /// The GGUF file's bytes.
  /// - Throws: `.unsupportedModel` for a name GGUF cannot hold (64 bytes or more).
  public func serialized() throws(ExportError) -> [UInt8] {
    var writer = GGUFWriter()
    let n = max(tokens, 1)
    do {
      try writer.add("general.type", .string("imatrix"))
      try writer.add("imatrix.datasets", .array(.string, [.string(dataset)]))
      try writer.add("imatrix.chunk_count", .uint32(1))
      try writer.add("imatrix.chunk_size", .uint32(UInt32(clamping: n)))
      for e in entries {
        let sums = e.squareMeans.map { Float($0 * Double(n)) }
        try writer.addTensor(e.name + ".in_sum2", shape: [sums.count], type: .f32, data: Self.bytes(sums))
        try writer.addTensor(e.name + ".counts", shape: [1], type: .f32, data: Self.bytes([Float(n)]))
      }
    } catch {
      throw ExportError(.unsupportedModel, "importance matrix: \(error.message)")
    }
    return writer.serialized()
  }

  /// Little-endian F32 bytes.
  static func bytes(_ values: [Float]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(4 * values.count)
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
    return out
  }
}
