import Foundation

/// Chart (a): per-layer sensitivity. Two panels on one x axis, one column per layer grouped by block (shaded
/// bands) and within a block by tensor type (colour): the Hutchinson Hessian trace with ±2 SE bars, then the
/// Fisher trace, both on log axes. The width grows with the layer count (7 px per layer), so a model with hundreds
/// of layers stays legible inside a horizontally scrolling container.
///
/// Test hook (stable): every layer is exactly one `<g class="layer" data-layer="NAME">` inside the element with
/// id `sensitivity` (the HTML wraps this SVG in it); the group holds the layer's Hessian mark, error bar and
/// Fisher mark, and a `<title>` with its numbers.
extension SVGChart {
  static let layerStep = 7.0
  static let blockGap = 8.0

  static func sensitivity(_ data: ReportData) -> String {
    let typeIndex = Dictionary(uniqueKeysWithValues: data.types.enumerated().map { ($1, $0) })
    let ordered = data.layers.sorted {
      ($0.block ?? Int.max, typeIndex[$0.type] ?? 0, $0.index) < ($1.block ?? Int.max, typeIndex[$1.type] ?? 0, $1.index)
    }
    // Groups: each block, then one group of the layers outside the blocks.
    var groups: [(label: String, rows: [ReportData.LayerRow])] = []
    for row in ordered {
      let label = row.block.map(String.init) ?? "other"
      if groups.last?.label == label { groups[groups.count - 1].rows.append(row) } else { groups.append((label, [row])) }
    }
    let left = 70.0, right = 16.0
    let plotWidth = Double(ordered.count) * layerStep + Double(max(groups.count - 1, 0)) * blockGap + layerStep
    let width = max(left + plotWidth + right, 720)
    let legendItems: [(marker: (Double, Double) -> String, label: String)] =
      data.types.enumerated().map { i, type in
        ({ x, y in marker(0, x: x + 4, y: y, size: 3.5, fill: colour(i), stroke: colour(i)) }, data.typeLabel(type))
      } + [
        ({ x, y in "<line x1=\"\(n(x + 4))\" x2=\"\(n(x + 4))\" y1=\"\(n(y - 6))\" y2=\"\(n(y + 6))\" stroke=\"#444\"/>" }, "±2 standard errors"),
        ({ x, y in marker(3, x: x + 4, y: y, size: 3.5, fill: "none", stroke: "#444") }, "trace ≤ 0 (noise), drawn at the axis floor"),
      ]
    let (legendSVG, legendHeight) = legend(x: left, y: 14, width: min(width - left - right, 1100), items: legendItems)
    let top1 = 14 + legendHeight + 12, height1 = 240.0
    let top2 = top1 + height1 + 34, height2 = 150.0
    let axisY = top2 + height2
    let height = axisY + 46
    let hessian = LogScale(
      values: data.layers.flatMap { [$0.hessianTrace + 2 * $0.hessianStandardError, $0.hessianTrace, $0.hessianTrace - 2 * $0.hessianStandardError] },
      from: top1 + height1, to: top1)
    let fisher = LogScale(values: data.layers.map(\.fisherTrace), from: top2 + height2, to: top2)
    var out = open(width: width, height: height, label: "Per-layer Hessian and Fisher traces of \(data.layers.count) layers")
    out += legendSVG
    // Block bands and labels.
    var x = left + layerStep / 2
    var bands = "<g class=\"bands\">"
    var labels = "<g class=\"axis\">"
    var marks = "<g class=\"marks\">"
    for (g, group) in groups.enumerated() {
      let start = x
      for row in group.rows {
        let cx = x + layerStep / 2
        marks += layerMark(row, x: cx, colour: colour(typeIndex[row.type] ?? 0), hessian: hessian, fisher: fisher)
        x += layerStep
      }
      if g % 2 == 0 {
        bands += "<rect x=\"\(n(start - 2))\" y=\"\(n(top1))\" width=\"\(n(x - start + 4))\" height=\"\(n(axisY - top1))\"/>"
      }
      let every = groups.count > 60 ? 5 : groups.count > 30 ? 2 : 1
      if g % every == 0 || group.label == "other" {
        labels += "<text x=\"\(n((start + x) / 2))\" y=\"\(n(axisY + 14))\" text-anchor=\"middle\">\(ReportText.html(group.label))</text>"
      }
      x += blockGap
    }
    out += bands + "</g>"
    out += logAxisY(hessian, x: left, gridTo: width - right, title: "Hessian trace (nats/weight²)")
    out += logAxisY(fisher, x: left, gridTo: width - right, title: "Fisher (nats²/weight²)")
    out += labels + "<text class=\"title\" x=\"\(n(left))\" y=\"\(n(axisY + 34))\">block (layers grouped by block, then by tensor type)</text></g>"
    out += "<text class=\"panel\" x=\"\(n(left + 6))\" y=\"\(n(top1 + 12))\">Hutchinson trace tr(H) of the layer's Hessian block, ±2 SE</text>"
    out += "<text class=\"panel\" x=\"\(n(left + 6))\" y=\"\(n(top2 + 12))\">Fisher trace Σg²</text>"
    return out + marks + "</g></svg>"
  }

  /// The one `data-layer` group of a layer: error bar and Hessian mark (top panel), Fisher mark (bottom panel).
  static func layerMark(
    _ row: ReportData.LayerRow, x: Double, colour: String, hessian: LogScale, fisher: LogScale
  ) -> String {
    let t = row.hessianTrace, se = row.hessianStandardError, f = row.fisherTrace
    let title = "\(row.name)\nHessian trace \(ReportText.sig(t)) ± \(ReportText.sig(2 * se)) (2 SE)"
      + (row.isNoisy ? ", within 2 SE of zero" : "") + "\nFisher trace \(ReportText.sig(f))"
      + "\n\(ReportText.grouped(row.parameters)) weights [\(row.rows) × \(row.columns)]"
      + (row.planned.map { "\nplan: \($0.format)" } ?? "")
    var out = "<g class=\"layer\" data-layer=\"\(ReportText.html(row.name))\"><title>\(ReportText.html(title))</title>"
    if se.isFinite && se > 0 {
      out += "<line x1=\"\(n(x))\" x2=\"\(n(x))\" y1=\"\(n(hessian(t - 2 * se)))\" y2=\"\(n(hessian(t + 2 * se)))\" stroke=\"\(colour)\"/>"
    }
    if t > 0 {
      out += marker(0, x: x, y: hessian(t), size: 2.6, fill: colour, stroke: colour)
    } else if t.isFinite {
      out += marker(3, x: x, y: hessian.from - 3, size: 2.6, fill: "none", stroke: colour)
    }
    if f > 0 {
      out += marker(0, x: x, y: fisher(f), size: 2.6, fill: colour, stroke: colour)
    } else if f.isFinite {
      out += marker(3, x: x, y: fisher.from - 3, size: 2.6, fill: "none", stroke: colour)
    }
    return out + "</g>"
  }
}
