/// The algorithm that chooses a layer's codes in a format, given its weights (and, for some, its inputs).
public enum QuantizerMethod: String, Sendable, CaseIterable, Codable {
  /// Every method's name, comma-separated, for error messages (`rtn, gptq, awq, imatrix`).
  public static let names = allCases.map(\.rawValue).joined(separator: ", ")

  /// Round to nearest with the layer's range calibration (`quantize(_:rows:columns:format:calibration:)`).
  case rtn
  /// GPTQ: codes chosen column by column with error feedback through the inverse of the layer's input Gram matrix
  /// (`GPTQ`).
  case gptq
  /// AWQ: per-input-channel scales from the inputs' magnitudes, searched on the layer group's output error, then
  /// round to nearest (`AWQ`).
  case awq
  /// ggml's importance-matrix quantization (`ImportanceQuantizer`): GGML block types only, each row weighted by the
  /// layer's calibration inputs' `diag(XᵀX)/n`, as `llama-quantize --imatrix` does with the file `bitplan export
  /// --imatrix` writes.
  case imatrix
}

/// What `--quantizer` asks for: one method, or `best` — every method that applies to a (layer, format), keeping the
/// one with the least output error `tr(ΔW G ΔWᵀ)`.
public enum QuantizerChoice: Sendable, Equatable, CustomStringConvertible {
  case method(QuantizerMethod)
  case best

  /// `rtn`, `gptq`, `awq` or `best`; `nil` for anything else.
  public init?(_ name: String) {
    if name == "best" {
      self = .best
    } else if let m = QuantizerMethod(rawValue: name) {
      self = .method(m)
    } else {
      return nil
    }
  }

  /// The names `init` accepts, for help and error messages.
  public static let names = "rtn, gptq, awq, imatrix or best"

  public var description: String {
    switch self {
    case .method(let m): m.rawValue
    case .best: "best"
    }
  }

  /// The methods tried, round to nearest first (so that ties keep it). `best` tries round to nearest, GPTQ and AWQ;
  /// `imatrix` is asked for by name (it is llama.cpp's own quantizer, and a plan that uses it needs the importance
  /// file at quantization time).
  public var methods: [QuantizerMethod] {
    switch self {
    case .method(let m): [m]
    case .best: [.rtn, .gptq, .awq]
    }
  }
}
