/// A forward-only replacement for one linear layer of a `LlamaModel<Float>`: Y[T, out] (+)= X[T, in] · Wᵀ, with W
/// held however the implementer likes (packed blocks, int8 codes, a dense copy in a test).
///
/// The engine knows nothing of packing; a caller (Validation) builds an operator per layer and installs it with
/// `LlamaModel.installOperator(_:forLayer:releaseDenseWeight:)`. Its reference twin is the dense layer holding the
/// operator's W (e.g. `dequantize(quantize(W))`): the two must agree to rounding.
///
/// Threading: the engine calls `apply` from the thread running the forward pass only, one call at a time per model.
/// An operator may split the work itself with TensorCore's `Parallel` (which runs serially when the caller is
/// already a worker), so it must be safe to use from those workers: hence `Sendable`.
public protocol LinearOperator: AnyObject, Sendable {
  /// Rows of W: the width of Y.
  var outFeatures: Int { get }
  /// Columns of W: the width of X.
  var inFeatures: Int { get }
  /// Y = X · Wᵀ, or Y += X · Wᵀ when `accumulate` (o_proj and down_proj add into the residual stream, and the
  /// engine relies on it: Y then already holds the residual).
  /// - Parameters:
  ///   - x: X [tokens, inFeatures], row-major, leading dimension `inFeatures`.
  ///   - tokens: rows of X and Y (≥ 1).
  ///   - y: Y [tokens, outFeatures], row-major, leading dimension `outFeatures`; does not alias `x`.
  ///   - accumulate: add into Y instead of overwriting it.
  func apply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool)
}

/// A forward-only source of token-embedding rows for a `LlamaModel<Float>`, in place of the dense table (e.g. a
/// GGML q4_1 table dequantized row by row, without a Float copy of the whole table).
///
/// Installed with `LlamaModel.installEmbedding(_:releaseDenseWeight:)`; called from the forward pass thread only.
public protocol EmbeddingSource: AnyObject, Sendable {
  /// Width of a row; must equal the model's hidden size.
  var dimension: Int { get }
  /// Writes row `tokens[i]` of the table to `into + i · dimension` for every i. The ids are already checked to be
  /// in `0..<vocab`.
  func rows(_ tokens: [Int], into: UnsafeMutablePointer<Float>)
}
