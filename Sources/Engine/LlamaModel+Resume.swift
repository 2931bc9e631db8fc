import TensorCore

/// The residual stream entering every decoder block for one window, recorded once from a full forward pass, so that
/// a pass in which only block `b` (or a later one) changed can start there (`logits(resumingAt:from:)`).
///
/// `states[l]` is block `l`'s input `[T, d]` (the embedded tokens for `l == 0`), and `states[layers]` the last
/// block's output, the final norm's input. Memory: `(layers + 1) · T · d` scalars (37 MB for SmolLM2 at 512 tokens
/// in Float).
public struct BlockInputs<Scalar: EngineScalar>: Sendable {
  /// The window.
  public let tokens: [Int]
  /// `layers + 1` states `[T, d]`, row-major.
  public let states: [[Scalar]]
}

/// Resuming a forward pass from a block: the measured single-layer scores change one layer at a time, and every
/// block below the changed one computes exactly what the unchanged model computed, so only the blocks from the
/// changed one upward and the head are run again.
///
/// Which block to resume at: a linear layer of block `b` (`LinearLayer.block`) → `b`; the LM head (`lm_head`, an
/// operator on the output projection) → `layers` (final norm and head only); the token embedding (or, for a tied
/// model, a change of the shared table) → no resumption: run the whole forward pass (`logits(tokens:)`), since the
/// recorded states were made with the old table.
///
/// Exactness: the resumed pass runs the same code on the same inputs in the same order as the full pass (the
/// recorded state is copied into the residual buffer the full pass would have written), so its logits equal the
/// full pass's bit for bit at the same thread count (tested in `ResumeForwardTests`).
extension LlamaModel {
  /// Runs `tokens` through the model and records every block's residual input.
  /// - Throws: `EngineError.badTokens`, `.weightReleased`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func blockInputs(tokens: [Int]) throws(EngineError) -> BlockInputs<Scalar> {
    try validate(tokens: tokens)
    let count = tokens.count * configuration.hidden
    var states = [[Scalar]](repeating: [], count: configuration.layers + 1)
    _ = runForward(tokens: tokens, keepActivations: false, blockInputObserver: { l, x in
      states[l] = Array(UnsafeBufferPointer(start: x, count: count))
    }, probabilities: false)
    return BlockInputs(tokens: tokens, states: states)
  }

  /// The logits `[T−1, V]` of `inputs.tokens` computed from block `block` upward, starting from the recorded input
  /// of that block (`block == layers`: final norm and LM head only). Equal to `logits(tokens:)` whenever nothing
  /// below `block` changed since `inputs` was recorded (see the extension's documentation).
  /// - Throws: `EngineError.badTokens`, `.weightReleased`; `.shapeMismatch` for a block outside `0...layers` or
  ///   states of another model's size.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func logits(resumingAt block: Int, from inputs: BlockInputs<Scalar>) throws(EngineError) -> Matrix<Scalar> {
    try validate(tokens: inputs.tokens)
    let (t, d, vocab) = (inputs.tokens.count, configuration.hidden, configuration.vocab)
    guard (0...configuration.layers).contains(block) else {
      throw EngineError(.shapeMismatch, "cannot resume at block \(block): the model has blocks 0..<\(configuration.layers)")
    }
    guard inputs.states.count == configuration.layers + 1, inputs.states.allSatisfy({ $0.count == t * d }) else {
      throw EngineError(
        .shapeMismatch, "recorded block inputs do not fit this model (\(configuration.layers + 1) states of \(t)×\(d) expected)")
    }
    var result: [Scalar] = []
    inputs.states[block].withUnsafeBufferPointer { state in
      _ = runForward(
        tokens: inputs.tokens, keepActivations: false,
        logitsObserver: { z in result = Array(UnsafeBufferPointer(start: z, count: (t - 1) * vocab)) },
        resume: (block, state.baseAddress!), probabilities: false)
    }
    return Matrix(rows: t - 1, columns: vocab, storage: result)
  }
}
