/// How the calibration tokens read an embedding table that is measured as a layer (`SensitivityModel.tableLookup`).
///
/// A lookup `x_t = E[token_t]` is the linear map of a one-hot row, so its output error for a change `ΔE` is
/// `Σ_t ‖ΔE[token_t]‖² / n = Σ_r c_r ‖ΔE_r‖² / n` with `c_r` the number of calibration tokens equal to `r`, and its
/// input trace `tr(XᵀX)/n` is 1 (every one-hot row has unit norm). A tied table is also the LM head, a projection of
/// the final-norm hidden states: its output error and input trace are then the sums over both uses
/// (`Documentation/RunFormat.md`, "The token embedding").
public struct TableLookup: Sendable, Equatable {
  /// `c_r`: how many calibration tokens read row `r` (one entry per row of the table).
  public var rowCounts: [Int]
  /// `n`, the number of calibration tokens (the denominator of the output error).
  public var tokens: Int
  /// Whether the table is also a projection (a tied LM head): `layerInputs` then gives that projection's inputs.
  public var isAlsoProjection: Bool

  /// The lookups of `tokens` into a table of `rows` rows.
  /// - Throws: `.invalidArgument` for no tokens or a token outside `0..<rows`.
  public init(tokens: [Int], rows: Int, isAlsoProjection: Bool) throws(SensitivityError) {
    if tokens.isEmpty { throw SensitivityError(.invalidArgument, "a table lookup of no tokens") }
    var counts = [Int](repeating: 0, count: rows)
    for t in tokens {
      guard t >= 0 && t < rows else {
        throw SensitivityError(.invalidArgument, "token \(t) outside the table's \(rows) rows")
      }
      counts[t] += 1
    }
    rowCounts = counts
    self.tokens = tokens.count
    self.isAlsoProjection = isAlsoProjection
  }

  /// `Σ_r c_r ‖ΔE_r‖² / n` for `ΔE` `[rows, columns]` row-major, in Double; only the rows some token reads are
  /// visited (at most `n` of them).
  /// - Throws: `.invalidArgument` when `delta.count` is not `rowCounts.count · columns`.
  public func outputError(delta: [Float], columns: Int) throws(SensitivityError) -> Double {
    guard delta.count == rowCounts.count * columns else {
      throw SensitivityError(
        .invalidArgument,
        "ΔE has \(delta.count) values; \(rowCounts.count) rows of \(columns) need \(rowCounts.count * columns)")
    }
    var sum = 0.0
    delta.withUnsafeBufferPointer { d in
      for (r, c) in rowCounts.enumerated() where c > 0 {
        var row = 0.0
        for j in r * columns..<(r + 1) * columns { row += Double(d[j]) * Double(d[j]) }
        sum += Double(c) * row
      }
    }
    return sum / Double(tokens)
  }

  /// `tr(XᵀX)/n` of the one-hot lookup rows: 1.
  public var inputTrace: Double { 1 }
}
