/// The token windows a plan is scored on, and which of their predictions count.
///
/// Two protocols:
/// - `bitplan` (default): `count` windows of `length` tokens spread evenly over the text. Window k is `[BOS]`
///   followed by `length − 1` consecutive ids starting at `⌊k · (n − (length − 1)) / (count − 1)⌋` of the
///   tokenized text (n ids; one window starts at 0, the last ends at the end of the text). Every prediction is
///   scored (positions 0…length−2 predict tokens 1…length−1). The windows may not overlap: the text must give
///   at least `count · (length − 1)` ids.
/// - `llamaPerplexity`: the chunking of llama.cpp's `llama-perplexity` (tools/perplexity/perplexity.cpp,
///   `perplexity()` and `kl_divergence()`): the whole text is tokenized (with BOS first when the model's tokenizer
///   adds one; pass `bos: nil` otherwise), cut into consecutive chunks of `length` tokens from the start
///   (`n_chunk = ⌊n / length⌋`, the first `count` of them are used), the first token of every chunk is replaced by
///   BOS (when there is one), and only the second half of each chunk is scored: the predictions made
///   at positions `length/2 … length − 2` (of tokens `length/2 + 1 … length − 1`), so every scored token has at
///   least half a window of context.
public struct EvaluationWindows: Sendable, Equatable {
  /// How windows are cut and scored.
  public enum ScoringProtocol: String, Sendable, CaseIterable, Codable {
    case bitplan
    case llamaPerplexity = "llama-perplexity"
  }

  /// The protocol these windows follow.
  public let scoringProtocol: ScoringProtocol
  /// Token ids of each window, `length` each, BOS first.
  public let windows: [[Int]]
  /// Index of the first scored prediction in each window: 0 for `bitplan`, `length / 2` for `llamaPerplexity`.
  /// Prediction p (at position p) is of token p + 1; predictions `firstScored ..< length − 1` are scored.
  public let firstScored: Int
  /// Where each window starts in the tokenized text (ids after the BOS the tokenizer would add).
  public let starts: [Int]

  /// Tokens per window.
  public var length: Int { windows.first?.count ?? 0 }
  /// Scored predictions per window.
  public var scoredPerWindow: Int { length - 1 - firstScored }

  /// Cuts `ids` (the text's token ids, no BOS) into windows.
  /// - Parameters:
  ///   - ids: the tokenized text.
  ///   - bos: the BOS id, or nil for a tokenizer without one (then windows are plain slices of `length` ids).
  ///   - length: tokens per window, BOS included (≥ 4).
  ///   - count: windows wanted (≥ 1). For `llamaPerplexity`, at most this many chunks from the start.
  ///   - source: the option and file the text came from, for messages.
  /// - Throws: `PlanValidationError.badSettings` for a length or count out of range, `.textTooShort` when the text
  ///   cannot give `count` windows of `length` tokens.
  public init(
    ids: [Int], bos: Int?, length: Int, count: Int, protocol scoringProtocol: ScoringProtocol, source: String = "text"
  ) throws(PlanValidationError) {
    guard length >= 4 else { throw PlanValidationError(.badSettings, "--tokens must be at least 4, got \(length)") }
    guard count >= 1 else { throw PlanValidationError(.badSettings, "--windows must be at least 1, got \(count)") }
    self.scoringProtocol = scoringProtocol
    switch scoringProtocol {
    case .bitplan:
      let body = bos == nil ? length : length - 1
      let (needed, overflow) = body.multipliedReportingOverflow(by: count)
      guard !overflow, ids.count >= needed else {
        throw PlanValidationError(
          .textTooShort,
          "\(source) gives \(ids.count) tokens; \(count) windows of \(length) tokens need at least \(overflow ? Int.max : needed)"
            + " (use a longer text, fewer --windows or fewer --tokens)")
      }
      let spare = ids.count - body
      let starts = (0..<count).map { k in count == 1 ? 0 : k * spare / (count - 1) }
      self.starts = starts
      windows = starts.map { s in (bos.map { [$0] } ?? []) + ids[s..<(s + body)] }
      firstScored = 0
    case .llamaPerplexity:
      let all = (bos.map { [$0] } ?? []) + ids
      let chunks = min(count, all.count / length)
      guard chunks >= 1, chunks == count || count == Int.max else {
        throw PlanValidationError(
          .textTooShort,
          "\(source) gives \(all.count) tokens (BOS included): \(all.count / length) chunks of \(length), \(count) asked for"
            + " (use a longer text, fewer --windows or fewer --tokens)")
      }
      starts = (0..<chunks).map { $0 * length }
      windows = starts.map { s in
        var w = Array(all[s..<(s + length)])
        if let bos { w[0] = bos }
        return w
      }
      firstScored = length / 2
    }
  }

  /// The scored target ids of window `w` (tokens `firstScored + 1 … length − 1`).
  public func targets(window w: Int) -> [Int] { Array(windows[w][(firstScored + 1)...]) }
}
