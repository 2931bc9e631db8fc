import TensorCore

/// Distillation: the model's next-token distributions against a teacher's (the unquantized model's), for tuning a
/// quantized model toward the one it approximates rather than toward the text.
///
/// Loss of a window: the mean over its T − 1 predictions of KL(teacher ‖ model) = Σ_j p_j (log p_j − log q_j), in
/// nats, summed in Double (terms with p_j = 0 contribute 0; q_j is floored at 1e-30 in the log). Its gradient with
/// respect to the logits is (q − p)/(T − 1), the same form as the NLL's with the one-hot target replaced by p.
extension LlamaModel {
  /// Softmax probabilities [T−1, V] of the next-token predictions (row t − 1 predicts tokens[t]): a teacher for
  /// `distillationGradients`.
  /// - Throws: `EngineError.badTokens`.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func probabilities(tokens: [Int]) throws(EngineError) -> Matrix<Scalar> {
    try validate(tokens: tokens)
    let cache = runForward(tokens: tokens, keepActivations: false)
    let count = (tokens.count - 1) * configuration.vocab
    return Matrix(
      rows: tokens.count - 1, columns: configuration.vocab,
      storage: Array(UnsafeBufferPointer(start: cache.probabilities.constant, count: count)))
  }

  /// The mean KL(teacher ‖ model) of a window, forward only.
  /// - Parameter teacher: probabilities [T−1, V] (`probabilities(tokens:)` of the teacher), row-major.
  /// - Throws: `EngineError.badTokens`, or `.shapeMismatch` for a teacher of the wrong size.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func distillationLoss(tokens: [Int], teacher: [Scalar]) throws(EngineError) -> Double {
    try validate(tokens: tokens)
    try checkTeacher(teacher, tokens: tokens)
    let cache = runForward(tokens: tokens, keepActivations: false)
    return Self.meanKL(teacher: teacher, model: cache.probabilities.constant, rows: tokens.count - 1, vocab: configuration.vocab)
  }

  /// The mean KL(teacher ‖ model) of a window and its gradient with respect to the named tensors (as
  /// `gradients(tokens:of:)` gives the mean NLL's).
  /// - Throws: as `gradients(tokens:of:)`, and `.shapeMismatch` for a teacher of the wrong size.
  @specialized(where Scalar == Float)
  @specialized(where Scalar == Double)
  public func distillationGradients(
    tokens: [Int], teacher: [Scalar], of names: Set<String>
  ) throws(EngineError) -> (loss: Double, gradients: [String: [Scalar]]) {
    try requireBackward("distillationGradients(tokens:teacher:of:)")
    try validate(tokens: tokens)
    try validate(names: names)
    try checkTeacher(teacher, tokens: tokens)
    let (rows, vocab) = (tokens.count - 1, configuration.vocab)
    let cache = runForward(tokens: tokens, keepActivations: true)
    let loss = Self.meanKL(teacher: teacher, model: cache.probabilities.constant, rows: rows, vocab: vocab)
    let sink = GradientSink<Scalar>(wanted: names)
    runBackward(cache: cache, sink: sink) { q in
      let scale = 1 / Scalar(rows)
      teacher.withUnsafeBufferPointer { p in
        for i in 0..<(rows * vocab) { q[i] = (q[i] - p[i]) * scale }
      }
    }
    return (loss, sink.gradients)
  }

  func checkTeacher(_ teacher: [Scalar], tokens: [Int]) throws(EngineError) {
    guard teacher.count == (tokens.count - 1) * configuration.vocab else {
      throw EngineError(
        .shapeMismatch,
        "a teacher of \(teacher.count) probabilities for \(tokens.count - 1) predictions × \(configuration.vocab) tokens")
    }
  }

  /// (1/rows) Σ_t Σ_j p_tj (log p_tj − log max(q_tj, 1e-30)), in Double.
  static func meanKL(teacher p: [Scalar], model q: UnsafePointer<Scalar>, rows: Int, vocab: Int) -> Double {
    var total = 0.0
    p.withUnsafeBufferPointer { p in
      for i in 0..<(rows * vocab) where p[i] > 0 {
        let pi = Double(p[i])
        total += pi * (Double.log(pi) - Double.log(max(Double(q[i]), 1e-30)))
      }
    }
    return total / Double(max(rows, 1))
  }
}
