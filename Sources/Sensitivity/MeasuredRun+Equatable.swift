/// Bitwise equality for runs: NaN marks missing numbers throughout, and `NaN == NaN` is false, so the synthesized
/// `==` would call a run unequal to itself. Numbers compare by their bits instead (so `0.0` and `−0.0` differ too),
/// which is what "the same numbers" means for a resumed or repeated run.
extension MeasuredRun {
  /// Whether every number has the same bits and everything else is equal.
  public static func == (a: MeasuredRun, b: MeasuredRun) -> Bool {
    a.provenance == b.provenance && a.layers == b.layers && a.candidates == b.candidates
      && same(a.weightVariance, b.weightVariance) && same(a.weightAbsmax, b.weightAbsmax)
      && same(a.weightKurtosis, b.weightKurtosis) && same(a.hessianTrace, b.hessianTrace)
      && same(a.hessianTraceStandardError, b.hessianTraceStandardError) && a.probesUsed == b.probesUsed
      && same(a.probeValues, b.probeValues) && same(a.topEigenvalue, b.topEigenvalue)
      && same(a.inputTrace, b.inputTrace) && same(a.inputSquareMeans, b.inputSquareMeans)
      && same(a.fisherTrace, b.fisherTrace)
      && same(a.weightError, b.weightError) && same(a.outputError, b.outputError) && a.bytes == b.bytes
      && a.calibrationMethod == b.calibrationMethod && a.quantizer == b.quantizer && same(a.proxies, b.proxies)
      && same(a.audit, b.audit) && same(a.measured, b.measured)
  }

  static func same(_ x: MeasuredScores?, _ y: MeasuredScores?) -> Bool {
    guard let x, let y else { return x == nil && y == nil }
    return same(x.kld, y.kld) && same(x.deltaNLL, y.deltaNLL) && x.baselineNLL.bitPattern == y.baselineNLL.bitPattern
      && x.tokens == y.tokens
  }

  static func same(_ x: [Double], _ y: [Double]) -> Bool { x.map(\.bitPattern) == y.map(\.bitPattern) }

  static func same(_ x: [[Double]], _ y: [[Double]]) -> Bool {
    x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
  }

  static func same(_ x: [String: [[Double]]], _ y: [String: [[Double]]]) -> Bool {
    x.keys.sorted() == y.keys.sorted() && x.allSatisfy { same($0.value, y[$0.key]!) }
  }

  static func same(_ x: [String: Double], _ y: [String: Double]) -> Bool {
    x.keys.sorted() == y.keys.sorted() && x.allSatisfy { $0.value.bitPattern == y[$0.key]!.bitPattern }
  }

  static func same(_ x: Audit?, _ y: Audit?) -> Bool {
    guard let x, let y else { return x == nil && y == nil }
    return x.layer == y.layer && x.candidate == y.candidate && same(x.deltaNLL, y.deltaNLL)
      && same(x.deltaKLD, y.deltaKLD) && x.baselineNLL.bitPattern == y.baselineNLL.bitPattern
      && same(x.spearmanNLL, y.spearmanNLL) && same(x.spearmanKLD, y.spearmanKLD)
  }
}
