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
/// A thin adapter over Quantization's `PackedGEMM` (which keeps its scratch between calls):
/// - `.int8`: the tokens are quantized once per call to int8 with the format's activation block (32 for GGML
///   types, one scale per token for the integer formats) and meet the packed codes in the C GEMM, several tokens
///   per weight load.
/// - `.f32`: tiles of rows are decoded to Float and multiplied by BLAS; the weights stay packed in memory.
/// Formats without integer codes (f16, bf16) always take the Float path (`PackedTensor.executionPath`'s rule); nf4
/// and ternary have no int8 kernel and are refused by name with `.int8`. The rows are split over TensorCore's
/// `Parallel` workers.
///
/// An optional per-input-channel scale s (AWQ's, for layers with no norm in front: o_proj, down_proj) makes the
/// layer compute (X ⊙ s⁻¹)·Qᵀ where the packed tensor is Q = Q(W·diag(s)): X is divided by s column by column into
/// a buffer kept between calls, then meets the packed GEMM as usual. Without a scale, X goes to the GEMM directly
/// (the same single call as before).
public final class PackedLinear: LinearOperator, @unchecked Sendable {
  /// The packed weight.
  public var tensor: PackedTensor { gemm.weights }
  /// The path `apply` takes.
  public var path: PackedExecutionPath { gemm.path }
  /// The per-input-channel scale s the input is divided by (nil: none).
  public let inputScale: [Float]?
  let gemm: PackedGEMM
  /// X ⊙ s⁻¹ of the last call, reused (the engine calls one layer at a time).
  var scaledInput: [Float] = []

  /// - Parameters:
  ///   - scratch: working memory shared by the layers of one model (they run one after another).
  ///   - inputScale: s [inFeatures], finite and non-zero: the layer computes (X ⊙ s⁻¹)·Wᵀ with W the packed
  ///     tensor (AWQ's Q(W·diag(s))); nil runs X directly.
  /// - Throws: `PlanValidationError.noPackedKernel` naming the format when it has no kernel for `activations`,
  ///   `.badSettings` for an input scale of the wrong length or with a zero or non-finite value.
  public init(
    _ tensor: PackedTensor, activations: ActivationMode, scratch: PackedGEMM.Scratch = PackedGEMM.Scratch(),
    inputScale: [Float]? = nil
  ) throws(PlanValidationError) {
    if let s = inputScale {
      guard s.count == tensor.columns else {
        throw PlanValidationError(.badSettings, "input scale has \(s.count) values for a layer of \(tensor.columns) inputs")
      }
      if let bad = s.firstIndex(where: { !$0.isFinite || $0 == 0 }) {
        throw PlanValidationError(.badSettings, "input scale \(bad) is \(s[bad]); scales must be finite and non-zero")
      }
    }
    self.inputScale = inputScale
    do {
      gemm = try PackedGEMM(tensor, activations: activations == .int8 ? .int8 : .float, scratch: scratch)
    } catch {
      throw PlanValidationError(.noPackedKernel, (error as? QuantizationError)?.message ?? "\(error)")
    }
  }

  public var outFeatures: Int { gemm.weights.rows }
  public var inFeatures: Int { gemm.weights.columns }

  public func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    guard let s = inputScale else {
      gemm.apply(x, tokens: tokens, into: y, accumulate: accumulate, threads: Parallel.workers)
      return
    }
    let n = inFeatures
    if scaledInput.count < tokens * n { scaledInput = [Float](repeating: 0, count: tokens * n) }
    scaledInput.withUnsafeMutableBufferPointer { buffer in
      s.withUnsafeBufferPointer { s in
        for t in 0..<tokens {
          let (src, dst) = (x + t * n, buffer.baseAddress! + t * n)
          for j in 0..<n { dst[j] = src[j] / s[j] }
        }
      }
      gemm.apply(UnsafePointer(buffer.baseAddress!), tokens: tokens, into: y, accumulate: accumulate, threads: Parallel.workers)
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
