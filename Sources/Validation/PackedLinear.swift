import Engine
import Quantization
import TensorCore

/// How a packed layer meets its input: per-token int8 activations (llama.cpp's CPU path, and what integer
/// kernels of most runtimes do) or Float activations (MLX, GPTQ kernels, f16 weights everywhere).
public enum ActivationMode: String, Sendable, CaseIterable, Codable {
  case int8
  case f32
}

/// A linear layer run from its packed bytes: the `LinearOperator` a plan installs in the engine.
///
/// - `.int8`: the tokens are quantized once per call to int8 with the format's activation block (32 for GGML
///   types, one scale per token for the integer formats) and meet the packed codes in the C GEMM
///   (`PackedTensor.gemmInt8`), several tokens per weight load.
/// - `.f32`: tiles of rows are decoded to Float and multiplied by BLAS (`PackedTensor.gemmFloat`); the weights
///   stay packed in memory.
/// Formats without integer codes (f16, bf16, f32) always take the Float path: no runtime quantizes activations
/// for them either. A format that has integer codes but no int8 GEMM kernel is refused by name at construction.
public final class PackedLinear: LinearOperator, @unchecked Sendable {
  /// The packed weight.
  public let tensor: PackedTensor
  /// The path `apply` takes.
  public let activations: ActivationMode

  /// - Throws: `PlanValidationError.noPackedKernel` naming the format when `activations` is `.int8` and the format has
  ///   integer codes but no int8 GEMM.
  public init(_ tensor: PackedTensor, activations: ActivationMode) throws(PlanValidationError) {
    self.tensor = tensor
    if activations == .int8 && tensor.format.hasIntegerCodes && !tensor.supportsInt8GEMM {
      throw PlanValidationError(
        .noPackedKernel, "\(tensor.format.name) has no int8-activation kernel; use --activations f32 or another format")
    }
    self.activations = tensor.format.hasIntegerCodes ? activations : .f32
  }

  public var outFeatures: Int { tensor.rows }
  public var inFeatures: Int { tensor.columns }

  public func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    switch activations {
    case .int8: tensor.gemmInt8(x, tokens: tokens, into: y, accumulate: accumulate)
    case .f32: tensor.gemmFloat(x, tokens: tokens, into: y, accumulate: accumulate)
    }
  }
}

/// Token-embedding rows decoded from a packed table (e.g. a GGUF's q4_1 `token_embd`), one row per token.
public final class PackedEmbedding: EmbeddingSource, @unchecked Sendable {
  public let tensor: PackedTensor

  public init(_ tensor: PackedTensor) { self.tensor = tensor }

  public var dimension: Int { tensor.columns }

  public func rows(_ tokens: [Int], into: UnsafeMutablePointer<Float>) {
    let d = tensor.columns
    for (i, t) in tokens.enumerated() {
      tensor.dequantizeRows(t..<(t + 1), into: UnsafeMutableBufferPointer(start: into + i * d, count: d))
    }
  }
}
