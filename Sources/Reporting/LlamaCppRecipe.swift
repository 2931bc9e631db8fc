import Foundation
import Allocation
import GGML
import ModelIO

/// A `llama-quantize --tensor-type-file` recipe for a plan: one anchored rule per quantizable tensor of the model,
/// `^blk\.12\.ffn_down\.weight$=q6_K`, and the ftype to pass beside it.
///
/// How llama.cpp reads it (llama-cpp-python 0.3.36's vendored llama.cpp, `tools/quantize/quantize.cpp`
/// `parse_tensor_type_file` / `parse_tensor_type`, `src/llama-quant.cpp` `llama_tensor_get_type`):
/// - the file is whitespace-separated tokens, split at the first `=`; there is no comment syntax;
/// - the pattern is lower-cased (`tolower`), so an upper-case letter in a tensor name is written `\x41`, and `=`,
///   whitespace and control characters as `\xHH` too; non-ASCII names are refused;
/// - the type is matched case-insensitively against `ggml_type_name` (`q6_K`, `f16`);
/// - patterns are ECMAScript `std::regex`, searched anywhere in the name (`regex_search`): hence `^…$`;
/// - the first matching rule wins (`break`), and manual types are used with or without `--pure`; with exactly one
///   rule per tensor, neither matters;
/// - patterns apply only when the ftype's default type is quantized (`ggml_is_quantized(default_type)`): `fileType`
///   is always a quantized ftype;
/// - a tensor whose manual type does not divide its rows silently falls back (`tensor_type_fallback`: q4_K → q5_0,
///   q6_K → q8_0, …), so such a plan is refused here;
/// - a tensor without a manual rule goes through the ftype's heuristic, which counts tensors (`i_attention_wv`,
///   `i_ffn_down`) only when it runs: a partial recipe would shift those counters, so every quantizable tensor gets
///   a rule, the ones the plan leaves out with the type they already have (llama-quantize then copies them).
public struct LlamaCppRecipe: Sendable, Equatable {
  /// One `PATTERN=TYPE` token.
  public struct Rule: Sendable, Equatable {
    /// The tensor's GGUF name (`blk.0.attn_q.weight`).
    public var tensor: String
    /// `^blk\.0\.attn_q\.weight$`, safe to lower-case.
    public var pattern: String
    /// The type the tensor gets.
    public var type: GGMLType
    /// Whether the type comes from the plan (otherwise it is the type the model file already has).
    public var planned: Bool

    /// `PATTERN=type`, with the type as `ggml_type_name` spells it.
    public var token: String { "\(pattern)=\(type.ggmlName)" }
  }

  /// One rule per quantizable tensor, in file order.
  public var rules: [Rule]
  /// The ftype argument of `llama-quantize` (`Q4_0`, `Q6_K`): the quantized type holding most planned weights.
  /// It only names the file's `general.file_type`, since every quantizable tensor has a rule.
  public var fileType: String

  /// The file: one token per line.
  public var text: String { rules.map(\.token).joined(separator: "\n") + "\n" }

  /// The GGML types a plan may name for llama.cpp: what `llama-quantize` writes from BitPlan's grammar, the types
  /// `bitplan quantize` writes too (`GGMLRequantize.canEncode`).
  static func isStorable(_ type: GGMLType) -> Bool { GGMLRequantize.canEncode(type) }

  /// The recipe for `plan` on the GGUF model whose tensors are `tensors` (`ModelFile.tensorInfos`: `fileName` is
  /// the GGUF name, `name` the HF name, `shape` PyTorch order, `dtype` the GGML type's name).
  /// - Throws: `ExportError`: `.unsupportedFormat` for a format llama.cpp cannot store, `.unknownLayer` for a plan
  ///   layer the model lacks or llama-quantize never changes, `.unsupportedShape` for a block size that does not
  ///   divide the layer's rows, `.unsupportedModel` for a tensor name no rule can spell.
  public init(plan: PlanDocument, tensors: [TensorInfo]) throws(ExportError) {
    let planned = try Self.checkFormats(plan)
    var byHFName: [String: TensorInfo] = [:]
    for t in tensors { byHFName[t.name] = t }
    var plannedType: [String: GGMLType] = [:]  // GGUF name → type
    for (layer, type) in planned {
      guard let tensor = byHFName[layer + ".weight"] else {
        throw ExportError(
          .unknownLayer, "\(layer): the model has no tensor \(layer).weight"
            + (layer == "lm_head" ? " (tied embeddings: plan model.embed_tokens instead)" : ""))
      }
      guard Self.allowsQuantization(tensor) else {
        throw ExportError(.unknownLayer, "\(layer): llama-quantize never changes the type of \(tensor.fileName)")
      }
      let columns = tensor.shape.last ?? 1
      if columns % type.blockSize != 0 {
        throw ExportError(
          .unsupportedShape,
          "\(layer) \(tensor.shape): \(type.ggmlName) needs rows of a multiple of \(type.blockSize) values, this one has "
            + "\(columns); llama-quantize would store \(Self.fallback(type, columns: columns).ggmlName) instead")
      }
      plannedType[tensor.fileName] = type
    }
    var rules: [Rule] = []
    for tensor in tensors where Self.allowsQuantization(tensor) {
      let pattern = try Self.pattern(forTensor: tensor.fileName)
      if let type = plannedType[tensor.fileName] {
        rules.append(Rule(tensor: tensor.fileName, pattern: pattern, type: type, planned: true))
      } else {
        guard let current = GGMLType(name: tensor.dtype) else {
          throw ExportError(.unsupportedModel, "\(tensor.fileName): stored as '\(tensor.dtype)', not a GGML type")
        }
        rules.append(Rule(tensor: tensor.fileName, pattern: pattern, type: current, planned: false))
      }
    }
    self.rules = rules
    // The ftype: what `bitplan quantize` writes as general.file_type for the same result (LlamaFileType: the
    // quantized type holding the most weights of the quantizable tensors), so that both files carry the same key.
    let counts = Dictionary(tensors.map { ($0.fileName, $0.parameterCount) }, uniquingKeysWith: { a, _ in a })
    let quantizedFileType = LlamaFileType.of(weights: rules.map { ($0.type, counts[$0.tensor] ?? 0) })
    // Overrides apply only under a quantized TYPE: a file of floats alone is still written under Q8_0.
    fileType = quantizedFileType.rawValue <= 1 || quantizedFileType.name == "BF16" ? "Q8_0" : quantizedFileType.name
  }

  /// Parses every planned format and keeps only what llama.cpp can store; needs no model, so a plan in another
  /// runtime's formats is refused before the model is read.
  /// - Returns: the plan's layers with their GGML types, sorted by name.
  /// - Throws: `.unsupportedFormat` naming the first layer (by name) whose format is not a llama.cpp type.
  public static func checkFormats(_ plan: PlanDocument) throws(ExportError) -> [(layer: String, type: GGMLType)] {
    try PlannedLayer.all(in: plan).map { (layer) throws(ExportError) in
      switch layer.format {
      case .ggml(let type) where isStorable(type): return (layer.name, type)
      case .float(let type) where isStorable(type): return (layer.name, type)
      default:
        throw ExportError(
          .unsupportedFormat,
          "\(layer.name): \(layer.formatName) is not a llama.cpp tensor type; llama-quantize stores q2_k…q6_k, q4_0, "
            + "q4_1, q5_0, q5_1, q8_0, f16, bf16, f32 (make the plan with --target llama-cpp)")
      }
    }
  }

  /// Whether llama-quantize may change this tensor's type: `LlamaFileType.isQuantizable`, the one rule `bitplan
  /// quantize` also uses.
  public static func allowsQuantization(_ tensor: TensorInfo) -> Bool {
    LlamaFileType.isQuantizable(name: tensor.fileName, dimensions: tensor.shape.count)
  }

  /// `^` + the name with every regex metacharacter escaped + `$`, unchanged by lower-casing: `A`–`Z`, `=`, spaces
  /// and control characters become `\xHH` (lower-case hex).
  /// - Throws: `.unsupportedModel` for a non-ASCII name (std::regex on bytes cannot be trusted with it).
  public static func pattern(forTensor name: String) throws(ExportError) -> String {
    var out = "^"
    for byte in name.utf8 {
      guard byte < 0x80 else {
        throw ExportError(.unsupportedModel, "tensor '\(name)': a non-ASCII name cannot be written as a llama-quantize rule")
      }
      let c = Character(Unicode.Scalar(byte))
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"),
        UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "@"):
        out.append(c)
      case _ where "\\^$.|?*+()[]{}".utf8.contains(byte):
        out += "\\" + String(c)
      default:
        let hex = String(byte, radix: 16)
        out += "\\x" + (hex.count == 1 ? "0" : "") + hex
      }
    }
    return out + "$"
  }

  /// The type `tensor_type_fallback` substitutes when `type`'s block does not divide `columns`.
  static func fallback(_ type: GGMLType, columns: Int) -> GGMLType {
    let substitute: GGMLType
    switch type {
    case .q2_K, .q3_K: substitute = .q4_0
    case .q4_K: substitute = .q5_0
    case .q5_K: substitute = .q5_1
    case .q6_K: substitute = .q8_0
    default: substitute = type
    }
    return columns % substitute.blockSize == 0 ? substitute : .f16
  }

  /// `llama-quantize --allow-requantize --tensor-type-file RECIPE MODEL OUT TYPE`, each path shell-quoted.
  /// `--allow-requantize` because the source GGUF is usually quantized already; tensors whose rule keeps their
  /// type are copied, not requantized (`quantize = cur_type != new_type`).
  /// - Parameter imatrixPath: an importance matrix for `--imatrix` (`LlamaCppImatrix`), or nil.
  public func command(recipePath: String, modelPath: String, outputPath: String, imatrixPath: String? = nil) -> String {
    (["llama-quantize", "--allow-requantize"] + (imatrixPath.map { ["--imatrix", Self.shellQuoted($0)] } ?? [])
      + ["--tensor-type-file", Self.shellQuoted(recipePath), Self.shellQuoted(modelPath), Self.shellQuoted(outputPath),
        fileType]).joined(separator: " ")
  }

  /// `path` as is when it holds only safe characters, else in single quotes.
  static func shellQuoted(_ path: String) -> String {
    let safe = path.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "/._-+,:@%".unicodeScalars.contains($0)
    }
    return safe && !path.isEmpty ? path : "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }
}
