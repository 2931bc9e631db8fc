import Allocation
import Foundation
import Sensitivity
import GGML
import ModelIO
import Quantization
import TensorCore
import Validation

/// What `bitplan quantize` wrote.
public struct QuantizeSummary: Sendable, Codable {
  /// One planned tensor.
  public struct Tensor: Sendable, Codable, Equatable {
    /// The plan's layer name (`model.layers.3.mlp.down_proj`).
    public var layer: String
    /// The GGUF tensor (`blk.3.ffn_down.weight`).
    public var tensor: String
    /// Its stored type in the source, ggml spelling (`q4_1`).
    public var from: String
    /// Its type in the output (`q6_K`).
    public var to: String
    /// Whether its bytes were copied (`from == to`) rather than re-encoded.
    public var copied: Bool
    /// Bytes in the output.
    public var bytes: Int
    /// The quantizer that chose its codes (`rtn`: ggml's own encoder, as llama-quantize; `gptq`).
    public var quantizer = "rtn"
    /// Whether its encoder was given its importance-matrix entry (re-encoded by ggml's encoder to a type that reads
    /// it: not q8_0, not a float type).
    public var importance = false
  }

  public var model: String
  public var plan: String
  public var output: String
  /// Tensors in the file (all of them written, in the source's order).
  public var tensorCount: Int
  /// The planned tensors, in file order.
  public var planned: [Tensor]
  /// Bytes of tensor data in the source and in the output.
  public var sourceTensorBytes: Int
  public var outputTensorBytes: Int
  /// The output's `general.file_type` (`llama_ftype`) and the type it names.
  public var fileType: Int
  public var fileTypeName: String
  public var elapsedSeconds: Double
  /// The importance matrix given (`--imatrix`), as given, and its number of entries.
  public var importanceMatrix: String? = nil
  public var importanceEntries: Int? = nil
}

/// `bitplan quantize MODEL PLAN.json -o OUT.gguf`: the model's GGUF with every planned tensor stored in its planned
/// GGML type, byte-identical (tensor by tensor, and in its metadata) to what `llama-quantize --allow-requantize
/// --tensor-type-file RECIPE SRC OUT TYPE` writes for the same plan (`scripts/quantize_vs_llamacpp.sh`).
///
/// What llama.cpp does, and so what this does (llama.cpp b0.3.36, `src/llama-quant.cpp`):
/// - a tensor whose planned type is its stored type is copied byte for byte (`quantize = cur_type != new_type`);
/// - any other is dequantized to f32 (`llama_tensor_dequantize_impl`) and re-encoded by `ggml_quantize_chunk`
///   (`GGMLRequantize`), rows in the file's own order: without an importance matrix by `quantize_row_*_ref`; with
///   one (`llama-quantize --imatrix FILE`, `ImportanceMatrix`) each tensor that has an entry is weighed by it, row
///   by row (`GGMLEncode.weighted`), a tensor without one is encoded as without the matrix, and an entry of the
///   wrong size is refused (`token_embd.weight`'s is ignored instead, as llama.cpp ignores it);
/// - unplanned tensors keep their bytes; the metadata is copied in order, then `general.quantization_version` (2)
///   and `general.file_type` are set as `gguf_set_val_u32` sets them: removed and appended at the end; with an
///   importance matrix, then `quantize.imatrix.file`, `.dataset`, `.entries_count` and `.chunks_count`
///   (`ImportanceMatrix.quantizeMetadata`).
///
/// GPTQ layers (not a llama.cpp feature) get no weights from the importance matrix: their codes come from their
/// inputs; where `GuardedGPTQ` keeps round to nearest instead, the rewriter's encoding (weighed) is written.
///
/// Differences, on purpose: the tensors stay in the source's order (llama-quantize sorts them by block number,
/// then name); the source's `general.alignment` is kept; a plan format a row cannot hold is refused, where
/// llama-quantize silently falls back (q6_K on 576 columns becomes q8_0).
public enum GGUFQuantize {
  /// `GGML_QNT_VERSION`, written as `general.quantization_version`.
  public static let quantizationVersion: UInt32 = 2

  /// Quantizes `model` by `plan` into `output`.
  /// - Parameters:
  ///   - importanceMatrix: llama.cpp's importance matrix (`--imatrix`), or nil to quantize without one.
  ///   - progress: called after each tensor with (done, total, tensor name).
  /// - Throws: `FileCheckError` (a missing input; `-o` naming the model, the plan or the importance matrix);
  ///   `ModelIOError` (a malformed GGUF or importance matrix; `.sizeMismatch` for an importance entry whose size is
  ///   not the tensor's row length; `.unsupported` for a Hugging Face folder, which must be converted to GGUF
  ///   first; a write failure);
  ///   `PlanValidationError` (`.modelMismatch`, `.unknownLayer`, `.unknownFormat` for a format that is not a
  ///   llama.cpp type or that the layer's rows cannot hold, `.badSettings` for an empty or malformed plan).
  ///   Nothing is written when it throws.
  public static func run(
    model: String, plan planPath: String, output: String, importanceMatrix: String? = nil,
    quantizer: QuantizerChoice? = nil, calibrationText: String? = nil, calibrationTokens: Int = 512,
    status: (String) -> Void = { _ in }, progress: (Int, Int, String) -> Void = { _, _, _ in }
  ) throws -> QuantizeSummary {
    let start = Date()
    try FileChecks.check(
      inputs: [InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "PLAN.json", path: planPath)]
        + (importanceMatrix.map { [InputPath(option: "--imatrix", path: $0)] } ?? [])
        // the text only where it exists: a run's recorded path may be gone, and is read only for GPTQ layers
        + (calibrationText.flatMap { FileManager.default.fileExists(atPath: $0) ? [InputPath(option: "the calibration text", path: $0)] : nil } ?? []),
      outputs: [OutputPath(option: "-o", path: output)])
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: model, isDirectory: &isFolder), isFolder.boolValue {
      throw ModelIOError(
        .unsupported,
        "MODEL is a Hugging Face folder; bitplan quantize rewrites a GGUF file: convert it first with llama.cpp's "
          + "convert_hf_to_gguf.py (which writes the tokenizer metadata llama.cpp needs)", path: model)
    }
    let plan = try PlanFile.read(planPath)
    let file = try GGUFFile(path: model)
    let sha = try Measurement.modelSHA256(path: model)
    let types = try plannedTypes(plan, path: planPath, modelSHA256: sha, file: file)

    var rewriter = GGUFRewriter(source: file)
    for (_, entry) in types { try rewriter.setType(entry.type, ofTensor: entry.tensor) }
    // llama-quantize looks an entry up (and checks its size) for every tensor it re-encodes, whatever the type.
    let matrix = try importanceMatrix.map { path throws(ModelIOError) in try ImportanceMatrix(path: path) }
    if let matrix {
      for (_, entry) in types.sorted(by: { $0.value.tensor < $1.value.tensor }) {
        let info = file.info(named: entry.tensor)!
        guard entry.type != info.type, let weights = try matrix.importance(for: info) else { continue }
        try rewriter.setImportance(weights, ofTensor: entry.tensor)
      }
    }
    let gptqLayers = try inputAwareLayers(plan, path: planPath, types: types, quantizer: quantizer)
    var quantizerOf = Dictionary(uniqueKeysWithValues: types.keys.map { ($0, QuantizerMethod.rtn) })
    // Layers measured (or asked) with `imatrix` are weighed by the importance matrix, which must cover them.
    for name in importanceLayers(plan, types: types, quantizer: quantizer).sorted() {
      let entry = types[name]!
      guard matrix != nil, let importanceMatrix else {
        throw PlanValidationError(
          .badSettings,
          "'\(planPath)': \(name) is quantized by imatrix: give --imatrix FILE (`bitplan export --format llama-cpp "
            + "--imatrix FILE --run RUN.h5` writes the run's)")
      }
      guard entry.type == file.info(named: entry.tensor)!.type || rewriter.importance[entry.tensor] != nil else {
        throw PlanValidationError(
          .badSettings,
          "--imatrix '\(importanceMatrix)': no entry for \(entry.tensor), which the plan quantizes by imatrix; "
            + "write the run's own with bitplan export --imatrix")
      }
      quantizerOf[name] = .imatrix
    }
    if !gptqLayers.isEmpty {
      guard let calibrationText else {
        throw PlanValidationError(
          .badSettings, "GPTQ layers need the calibration text their inputs come from: give --calib FILE")
      }
      status("quantize: capturing the layer inputs on \(calibrationText)…")
      let loaded = try LoadedModel.load(path: model)
      let windows = try PackedQuantizer.calibrationWindows(
        path: calibrationText, tokenizer: loaded.tokenizer, count: calibrationTokens)
      let inputs = try PackedQuantizer.capture(loaded.model, windows: windows, layers: gptqLayers)
      for (n, name) in gptqLayers.enumerated() {
        let entry = types[name]!
        let info = file.info(named: entry.tensor)!
        status("quantize: GPTQ \(n + 1)/\(gptqLayers.count) \(name)…")
        // Rows in the file's order (Q/K stay RoPE-permuted): GPTQ treats rows independently, and the columns
        // (the inputs' order) are the same in both orders.
        let values = try file.tensor(named: entry.tensor).storage
        let x = inputs[name]!
        let gram = try GramMatrix(inputs: x.values, rows: x.rows, columns: info.rowLength)
        let (packed, used) = try GuardedGPTQ.quantize(
          values, rows: info.elementCount / info.rowLength, columns: info.rowLength, format: .ggml(entry.type),
          gram: gram, calibration: .minMax, options: GPTQ.Options())
        guard used == .gptq else { continue }  // round to nearest won: the rewriter's own encoding stays
        try rewriter.setBytes(packed.bytes, type: entry.type, ofTensor: entry.tensor)
        quantizerOf[name] = .gptq
      }
    }
    let outputs = try rewriter.outputTensors()
    let fileType = LlamaFileType.of(outputs)
    try rewriter.setValue(.uint32(quantizationVersion), forKey: "general.quantization_version")
    try rewriter.setValue(.uint32(fileType.rawValue), forKey: "general.file_type")
    if let matrix, let importanceMatrix {
      for (key, value) in try matrix.quantizeMetadata(file: importanceMatrix) { try rewriter.setValue(value, forKey: key) }
    }
    try rewriter.write(to: output, option: "-o", progress: progress)

    let byTensor = Dictionary(uniqueKeysWithValues: types.map { ($0.value.tensor, $0.key) })
    var planned: [QuantizeSummary.Tensor] = []
    for (info, out) in zip(file.tensors, outputs) {
      guard let layer = byTensor[info.name] else { continue }
      var tensor =
        QuantizeSummary.Tensor(
          layer: layer, tensor: info.name, from: info.type.ggmlName, to: out.type.ggmlName,
          copied: info.type == out.type && rewriter.givenBytes[info.name] == nil, bytes: out.sizeInBytes)
      tensor.quantizer = quantizerOf[layer]?.rawValue ?? "rtn"
      tensor.importance =
        !tensor.copied && rewriter.givenBytes[info.name] == nil && rewriter.importance[info.name] != nil
        && GGMLRequantize.usesImportance(out.type)
      planned.append(tensor)
    }
    return QuantizeSummary(
      model: model, plan: planPath, output: output, tensorCount: outputs.count, planned: planned,
      sourceTensorBytes: file.tensors.reduce(0) { $0 + $1.sizeInBytes },
      outputTensorBytes: outputs.reduce(0) { $0 + $1.sizeInBytes }, fileType: Int(fileType.rawValue),
      fileTypeName: fileType.name, elapsedSeconds: Date().timeIntervalSince(start),
      importanceMatrix: importanceMatrix, importanceEntries: matrix?.weights.count)
  }

  /// The quantizer that writes planned layer `name`: `quantizer` for all, else the plan layer's own (`rtn` when the
  /// plan records none); nil for `best`, whose winners only a run records.
  static func method(of name: String, _ plan: PlanDocument, _ quantizer: QuantizerChoice?) -> String? {
    switch quantizer {
    case .method(let m)?: m.rawValue
    case .best?: nil
    case nil: plan.layers[name]?.quantizer ?? "rtn"
    }
  }

  /// The planned layers quantized by `imatrix` whose type reads the importance (`GGMLRequantize.usesImportance`:
  /// q8_0 and the float types take none).
  static func importanceLayers(
    _ plan: PlanDocument, types: [String: (tensor: String, type: GGMLType)], quantizer: QuantizerChoice?
  ) -> [String] {
    types.keys.filter {
      method(of: $0, plan, quantizer) == "imatrix" && GGMLRequantize.usesImportance(types[$0]!.type)
    }
  }

  /// The planned layers GPTQ chooses the codes of (`method(of:_:_:)`), in name order: those whose type GPTQ takes
  /// (`GPTQ.supports`); the others keep round to nearest or the importance matrix.
  /// - Throws: `PlanValidationError.badSettings` for AWQ or `best`, which a GGUF cannot carry yet (AWQ's input scales
  ///   would have to be folded into the norms and the preceding projections).
  static func inputAwareLayers(
    _ plan: PlanDocument, path: String, types: [String: (tensor: String, type: GGMLType)], quantizer: QuantizerChoice?
  ) throws(PlanValidationError) -> [String] {
    var out: [String] = []
    for name in types.keys.sorted() {
      guard let method = method(of: name, plan, quantizer) else {
        throw PlanValidationError(.badSettings, "--quantizer best: the plan already says each layer's quantizer; omit --quantizer")
      }
      switch method {
      case "rtn", "imatrix": continue
      case "gptq" where name == "model.embed_tokens":
        // GPTQ fits a linear layer to its inputs; a lookup table has none. --quantizer gptq means the linear
        // layers (the table keeps ggml's encoder, as llama-quantize's); a plan that names GPTQ for it is wrong.
        guard quantizer == nil else { continue }
        throw PlanValidationError(
          .badSettings,
          "'\(path)': model.embed_tokens is quantized by gptq, but GPTQ needs a linear layer's inputs and a token "
            + "embedding has none; give it rtn or imatrix")
      case "gptq": if GPTQ.supports(.ggml(types[name]!.type)) { out.append(name) }
      default:
        throw PlanValidationError(
          .badSettings,
          "'\(path)': \(name) is quantized by \(method), which a GGUF cannot carry yet (AWQ's input scales would have "
            + "to be folded into the norms and projections); quantize it with rtn or gptq")
      }
    }
    return out
  }

  /// The GGML type of each planned layer, keyed by layer name, with its GGUF tensor name.
  ///
  /// A layer is a 2-D `….weight` tensor that llama-quantize would quantize (not a norm), named by its HF module
  /// path through `NameMapping` (`model.layers.12.mlp.down_proj` → `blk.12.ffn_down.weight`, `model.embed_tokens`
  /// → `token_embd.weight`, `lm_head` → `output.weight`).
  /// - Throws: `PlanValidationError` `.modelMismatch`, `.badSettings` (no layers), `.unknownLayer`,
  ///   `.unknownFormat` (unparsable; not a llama.cpp type; rows not whole blocks; a stored type that cannot be
  ///   decoded).
  public static func plannedTypes(
    _ plan: PlanDocument, path: String, modelSHA256: String, file: GGUFFile
  ) throws(PlanValidationError) -> [String: (tensor: String, type: GGMLType)] {
    if let sha = plan.modelSHA256, !sha.isEmpty, sha.lowercased() != modelSHA256 {
      throw PlanValidationError(
        .modelMismatch,
        "'\(path)' was made for the model with sha256 \(sha.prefix(12))…, this model's is \(modelSHA256.prefix(12))…")
    }
    guard !plan.layers.isEmpty else { throw PlanValidationError(.badSettings, "'\(path)' plans no layers") }
    let plannable = file.tensors.filter(isPlannable).count
    var out: [String: (tensor: String, type: GGMLType)] = [:]
    for (name, layer) in plan.layers.sorted(by: { $0.key < $1.key }) {
      guard let gguf = NameMapping.ggufName(forHF: name + ".weight"), let info = file.info(named: gguf), isPlannable(info)
      else {
        throw PlanValidationError(
          .unknownLayer, "'\(path)' names '\(name)', which the model lacks (it has \(plannable) weight matrices)")
      }
      let format: QuantFormat
      do { format = try QuantFormat(parsing: layer.format) } catch {
        throw PlanValidationError(.unknownFormat, "'\(path)': \(name): \(error)")
      }
      guard let type = ggmlType(format) else {
        throw PlanValidationError(
          .unknownFormat,
          "'\(path)': \(name): \(format.name) is not a llama.cpp type; a GGUF stores q2_k, q3_k, q4_k, q5_k, q6_k, "
            + "q4_0, q4_1, q5_0, q5_1, q8_0, f16, bf16 or f32 (allocate with --target llama-cpp)")
      }
      guard type.rowSizeInBytes(info.rowLength) != nil else {
        throw PlanValidationError(
          .unknownFormat,
          "'\(path)': \(name) \(info.shape) cannot be stored as \(format.name): rows of \(info.rowLength) values are "
            + "not whole blocks of \(type.blockSize) (llama-quantize would silently fall back to another type)")
      }
      guard type == info.type || info.type.canDequantize else {
        throw PlanValidationError(
          .unknownFormat, "'\(path)': \(name) is stored as \(info.type.name), which cannot be decoded to re-encode it as \(format.name)")
      }
      out[name] = (gguf, type)
    }
    return out
  }

  /// The GGML type a plan format is written as, or nil for formats a GGUF cannot hold.
  public static func ggmlType(_ format: QuantFormat) -> GGMLType? {
    switch format.scheme {
    case .ggml(let t) where GGMLRequantize.canEncode(t): t
    case .f16: .f16
    case .bf16: .bf16
    case .f32: .f32
    default: nil
    }
  }

  /// Whether llama-quantize would quantize this tensor (`LlamaFileType.isQuantizable`) and it has a plan name.
  static func isPlannable(_ info: GGUFTensorInfo) -> Bool {
    LlamaFileType.isQuantizable(info) && NameMapping.hfName(forGGUF: info.name) != nil
  }
}
