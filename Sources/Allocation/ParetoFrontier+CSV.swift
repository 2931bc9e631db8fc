/// The frontier as CSV, one row per Pareto-optimal plan, smallest first.
extension ParetoFrontier {
  /// Header `bytes,mib,bits_per_weight,predicted_loss_delta`; bits per weight are 8 · bytes / Σ parameters of the
  /// problem (0 when it has none). Losses are printed with full round-trip precision.
  public func csv() -> String {
    let parameters = Double(reduced.problem.parameterCount)
    var text = "bytes,mib,bits_per_weight,predicted_loss_delta\n"
    text.reserveCapacity(48 * points.count)
    for point in points {
      let bpw = parameters > 0 ? 8 * Double(point.bytes) / parameters : 0
      text += "\(point.bytes),\(Double(point.bytes) / 1_048_576),\(bpw),\(point.loss)\n"
    }
    return text
  }
}
