/// Spearman's rank correlation, with tied values given the average of the ranks they span.
///
/// `ρ` is Pearson's correlation of the rank vectors. With ties the textbook shortcut `1 − 6Σd²/(n(n²−1))` is wrong,
/// so this computes Pearson's formula on average ranks directly, as `scipy.stats.spearmanr` does.
/// Reference: Spearman (1904); Kendall & Gibbons, "Rank Correlation Methods", ch. 3.
public enum SpearmanCorrelation {
  /// Average ranks, 1-based: the `k` values tied at sorted positions `p+1 … p+k` all get `p + (k+1)/2`.
  /// - Precondition: no NaN in `values`.
  public static func ranks(_ values: [Double]) -> [Double] {
    precondition(!values.contains { $0.isNaN }, "ranks of NaN")
    let order = values.indices.sorted { (values[$0], $0) < (values[$1], $1) }
    var ranks = [Double](repeating: 0, count: values.count)
    var start = 0
    while start < order.count {
      var end = start + 1
      while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
      let average = Double(start + 1 + end) / 2  // mean of start+1 … end
      for p in start..<end { ranks[order[p]] = average }
      start = end
    }
    return ranks
  }

  /// `ρ` of the pairs `(x_i, y_i)` where both are not NaN; `nil` for fewer than two pairs or when either side is
  /// constant (the correlation is undefined).
  /// - Precondition: equal lengths.
  public static func rho(_ x: [Double], _ y: [Double]) -> Double? {
    precondition(x.count == y.count, "length mismatch \(x.count) != \(y.count)")
    let pairs = zip(x, y).filter { !$0.0.isNaN && !$0.1.isNaN }
    if pairs.count < 2 { return nil }
    return pearson(ranks(pairs.map(\.0)), ranks(pairs.map(\.1)))
  }

  /// Pearson's correlation in Double, two passes; `nil` when either side has zero variance.
  static func pearson(_ a: [Double], _ b: [Double]) -> Double? {
    let n = Double(a.count)
    var (sa, sb) = (0.0, 0.0)
    for i in a.indices {
      sa += a[i]
      sb += b[i]
    }
    let (ma, mb) = (sa / n, sb / n)
    var (cab, caa, cbb) = (0.0, 0.0, 0.0)
    for i in a.indices {
      let (da, db) = (a[i] - ma, b[i] - mb)
      cab += da * db
      caa += da * da
      cbb += db * db
    }
    if caa == 0 || cbb == 0 { return nil }
    return cab / (caa * cbb).squareRoot()
  }
}
