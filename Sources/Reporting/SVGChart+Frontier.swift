import Allocation
import Foundation

/// Chart (c): the exact Pareto frontier of the run under the plan's score (bytes vs the sum of per-layer predicted
/// losses), with the plan and every validated baseline whose assignment could be rebuilt placed on it; the legend
/// gives each one's measured KLD with its interval. A baseline whose predicted loss is unknown is a dashed
/// vertical line at its size.
extension SVGChart {
  /// At most this many frontier points are drawn (evenly spaced in bytes; the ends are kept).
  static let frontierPointLimit = 600

  static func thinned(_ points: [ParetoFrontier.Point]) -> [ParetoFrontier.Point] {
    guard points.count > frontierPointLimit, let first = points.first, let last = points.last else { return points }
    let step = Double(last.bytes - first.bytes) / Double(frontierPointLimit)
    var kept = [first]
    var next = Double(first.bytes) + step
    for p in points.dropFirst().dropLast() where Double(p.bytes) >= next {
      kept.append(p)
      next = Double(p.bytes) + step
    }
    kept.append(last)
    return kept
  }

  /// The whole frontier, or with `zoom` the stretch within ±10% of the marked sizes, where the plan and baselines
  /// of (nearly) one size are told apart by their predicted loss.
  static func frontier(_ data: ReportData, zoom: Bool = false, width: Double = 900) -> String {
    var all = data.frontier.filter { $0.loss > 0 }
    let models = data.validation?.models ?? []
    var marks: [(label: String, bytes: Int, loss: Double?)] = []
    if let plan = data.plan, !models.contains(where: { $0.name == "plan" }) {
      marks.append(("plan (not validated)", plan.totalBytes, plan.predictedLossDelta))
    }
    for m in models {
      let kld = "KLD \(ReportText.interval(m.kld.value, m.kld.low, m.kld.high, 4))"
      let loss = m.name == "plan" ? (data.plan?.predictedLossDelta ?? m.predictedLoss) : m.predictedLoss
      marks.append(("\(m.label): \(kld)\(loss == nil ? " (predicted loss not rebuilt)" : "")", m.bytes, loss))
    }
    if zoom, let low = marks.map(\.bytes).min(), let high = marks.map(\.bytes).max() {
      let window = Int(Double(low) * 0.9)...Int(Double(high) * 1.1)
      all = all.filter { window.contains($0.bytes) }
    }
    let points = thinned(all)
    let mib = 1_048_576.0
    let allBytes = points.map { Double($0.bytes) / mib } + marks.map { Double($0.bytes) / mib }
    let left = 78.0, right = 20.0, plotTop = 20.0, plotHeight = 300.0
    let x = LinearScale(low: allBytes.min() ?? 0, high: allBytes.max() ?? 1, from: left, to: width - right)
    let y = LogScale(values: points.map(\.loss) + marks.compactMap(\.loss), from: plotTop + plotHeight, to: plotTop)
    let items: [(marker: (Double, Double) -> String, label: String)] =
      [({ x, y in "<line x1=\"\(n(x - 2))\" x2=\"\(n(x + 10))\" y1=\"\(n(y))\" y2=\"\(n(y))\" stroke=\"#555\" stroke-width=\"2\"/>" },
        zoom ? "exact frontier near the plan (±10% in size)" : "exact frontier (\(ReportText.grouped(data.frontier.count)) plans), score \(data.frontierScore)")]
      + marks.enumerated().map { i, m in
        ({ x, y in
          m.loss == nil
            ? "<line x1=\"\(n(x + 4))\" x2=\"\(n(x + 4))\" y1=\"\(n(y - 7))\" y2=\"\(n(y + 7))\" stroke=\"\(colour(i))\" stroke-width=\"2\" stroke-dasharray=\"3 2\"/>"
            : marker(i, x: x + 4, y: y, size: 4.5, fill: colour(i))
        }, m.label)
      }
    let (legendSVG, legendHeight) = legend(x: left, y: 0, width: width - left - right, items: items)
    let legendTop = plotTop + plotHeight + 50
    let height = legendTop + legendHeight + 6
    var out = open(width: width, height: height, label: zoom ? "Pareto frontier near the plan" : "Pareto frontier: bytes against predicted loss")
    out += logAxisY(y, x: left, gridTo: width - right, title: "predicted Δloss (nats/token)")
    out += linearAxisX(x, y: plotTop + plotHeight, gridTo: plotTop, title: "size of the planned layers (MiB)") { ReportText.sig($0, 4) }
    if !points.isEmpty {
      let path = points.map { "\(n(x(Double($0.bytes) / mib))),\(n(y($0.loss)))" }.joined(separator: " ")
      out += "<polyline class=\"frontier\" points=\"\(path)\"><title>\(ReportText.html("exact Pareto frontier under \(data.frontierScore): \(data.frontier.count) plans"))</title></polyline>"
    } else {
      out += "<text class=\"panel\" x=\"\(n(left + 10))\" y=\"\(n(plotTop + 20))\">\(ReportText.html(data.frontierNote ?? "no frontier"))</text>"
    }
    for (i, m) in marks.enumerated() {
      let px = x(Double(m.bytes) / mib)
      let title = "\(m.label)\n\(ReportText.bytes(m.bytes))" + (m.loss.map { "\npredicted Δloss \(ReportText.sig($0)) nats/token" } ?? "")
      if let loss = m.loss {
        out += "<g class=\"mark\"><title>\(ReportText.html(title))</title>\(marker(i, x: px, y: y(loss), size: 5, fill: colour(i)))</g>"
      } else {
        out += "<g class=\"mark\"><title>\(ReportText.html(title))</title><line x1=\"\(n(px))\" x2=\"\(n(px))\" y1=\"\(n(plotTop))\" y2=\"\(n(plotTop + plotHeight))\" stroke=\"\(colour(i))\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/></g>"
      }
    }
    out += "<g transform=\"translate(0,\(n(legendTop)))\">" + legendSVG + "</g>"
    return out + "</svg>"
  }
}
