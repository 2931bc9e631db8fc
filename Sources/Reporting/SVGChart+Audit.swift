import Foundation

/// Chart (d): the proxy audit, one point per audited single-layer quantization: the score's predicted loss
/// increase against the measured mean KL divergence, both in nats/token on log axes, with y = x for reference.
/// Pairs with a value ≤ 0 cannot be drawn on log axes; the caption counts them.
extension SVGChart {
  static func auditScatter(_ audit: ReportData.AuditSummary) -> String {
    let drawn = audit.pairs.filter { $0.predicted > 0 && $0.deltaKLD > 0 }
    let left = 78.0, right = 20.0, top = 14.0, size = 340.0
    let width = left + size + right + 200  // room for the legend's ρ
    let both = drawn.map(\.predicted) + drawn.map(\.deltaKLD)
    let x = LogScale(values: both, from: left, to: left + size)
    let y = LogScale(values: both, from: top + size, to: top)
    let rho = audit.correlations.first { $0.score == audit.score }
    let items: [(marker: (Double, Double) -> String, label: String)] = [
      ({ x, y in marker(0, x: x + 4, y: y, size: 3.5, fill: colour(0)) },
       "audited layer × format (\(drawn.count) of \(audit.pairs.count))"
         + (rho.map { ", Spearman ρ \(ReportText.interval($0.kld.value, $0.kld.low, $0.kld.high, 2))" } ?? "")),
      ({ x, y in "<line x1=\"\(n(x - 2))\" x2=\"\(n(x + 10))\" y1=\"\(n(y))\" y2=\"\(n(y))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>" }, "y = x"),
    ]
    let (legendSVG, legendHeight) = legend(x: left, y: 0, width: width - left, items: items)
    let legendTop = top + size + 50
    var out = open(width: width, height: legendTop + legendHeight + 6, label: "Proxy audit: predicted against measured ΔKLD")
    out += logAxisX(x, y: top + size, gridTo: top, title: "predicted Δloss, \(audit.score) (nats/token)")
    out += logAxisY(y, x: left, gridTo: left + size, title: "measured ΔKLD (nats/token)")
    // y = x over the common range (both axes cover the same decades).
    out += "<line x1=\"\(n(left))\" y1=\"\(n(top + size))\" x2=\"\(n(left + size))\" y2=\"\(n(top))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>"
    for p in drawn {
      let title = "\(p.layer) in \(p.candidate)\npredicted \(ReportText.sig(p.predicted)), ΔKLD \(ReportText.sig(p.deltaKLD)), ΔNLL \(ReportText.sig(p.deltaNLL))"
      out += "<g class=\"mark\"><title>\(ReportText.html(title))</title>\(marker(0, x: x(p.predicted), y: y(p.deltaKLD), size: 4, fill: colour(0)))</g>"
    }
    out += "<g transform=\"translate(0,\(n(legendTop)))\">" + legendSVG + "</g>"
    return out + "</svg>"
  }
}
