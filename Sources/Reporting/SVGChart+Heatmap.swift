import Foundation

/// Chart (b): the plan's bits per weight as a heatmap, block rows × tensor-type columns (a last row for layers
/// outside the blocks). Colour is the effective bits per weight (`8 · bytes / weights`, scales included) on a
/// sequential scale; each cell shows its format, and its `<title>` the layer, format, bytes and bits.
///
/// Test hook (stable): one `<rect data-layer="NAME">` per planned layer inside the element with id
/// `bits-heatmap`.
extension SVGChart {
  /// Viridis stops, dark (few bits) to light (many bits).
  static let viridis: [(Double, Double, Double)] = [
    (68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37),
  ]

  /// The colour of `t` in 0…1 and whether text on it should be white.
  static func sequential(_ t: Double) -> (fill: String, lightText: Bool) {
    let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(viridis.count - 1)
    let i = min(Int(x), viridis.count - 2), f = x - Double(i)
    let (a, b) = (viridis[i], viridis[i + 1])
    let (r, g, bl) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
    let luminance = 0.2126 * r + 0.7152 * g + 0.0722 * bl
    return (String(format: "#%02X%02X%02X", Int(r.rounded()), Int(g.rounded()), Int(bl.rounded())), luminance < 120)
  }

  static func bitsHeatmap(_ data: ReportData) -> String {
    let planned = data.plannedLayers
    let bits = planned.compactMap(\.plannedBitsPerWeight)
    let (lo, hi) = (bits.min() ?? 0, bits.max() ?? 1)
    func t(_ b: Double) -> Double { hi > lo ? (log2(b) - log2(lo)) / (log2(hi) - log2(lo)) : 0.5 }
    let columns = data.types.filter { type in planned.contains { $0.type == type } }
    let rowKeys: [Int?] = data.blocks.filter { b in planned.contains { $0.block == b } }.map { $0 }
      + (planned.contains { $0.block == nil } ? [nil] : [])
    let labels = columns.map { data.typeLabel($0) }
    let cellWidth = max(70, Double(labels.map(\.count).max() ?? 0) * 6.6 + 8), cellHeight = 18.0
    let left = 62.0, top = 40.0
    let gridWidth = Double(columns.count) * cellWidth
    // Legend: one swatch per format used, by bits.
    var used: [String: (bits: Double, count: Int)] = [:]
    for row in planned {
      guard let p = row.planned, let b = row.plannedBitsPerWeight else { continue }
      let old = used[p.format]
      used[p.format] = (old.map { min($0.bits, b) } ?? b, (old?.count ?? 0) + 1)
    }
    let items: [(marker: (Double, Double) -> String, label: String)] = used.sorted { ($0.value.bits, $0.key) < ($1.value.bits, $1.key) }
      .map { format, v in
        ({ x, y in "<rect x=\"\(n(x))\" y=\"\(n(y - 6))\" width=\"11\" height=\"11\" fill=\"\(sequential(t(v.bits)).fill)\" stroke=\"#333\"/>" },
         "\(format) (\(ReportText.fixed(v.bits, 2)) bpw) ×\(v.count)")
      }
    let width = max(left + gridWidth + 20, 560)
    let (legendSVG, legendHeight) = legend(x: left, y: 0, width: width - left - 10, items: items)
    let gridTop = top
    let legendTop = gridTop + Double(rowKeys.count) * cellHeight + 16
    let height = legendTop + legendHeight + 8
    var out = open(width: width, height: height, label: "Bits per weight of the plan, block × tensor type")
    out += "<g class=\"axis\">"
    for (c, label) in labels.enumerated() {
      out += "<text x=\"\(n(left + (Double(c) + 0.5) * cellWidth))\" y=\"\(n(gridTop - 8))\" text-anchor=\"middle\">\(ReportText.html(label))</text>"
    }
    out += "<text class=\"title\" x=\"\(n(left - 8))\" y=\"\(n(gridTop - 8))\" text-anchor=\"end\">block</text>"
    for (r, key) in rowKeys.enumerated() {
      out += "<text x=\"\(n(left - 8))\" y=\"\(n(gridTop + (Double(r) + 0.5) * cellHeight + 4))\" text-anchor=\"end\">\(key.map(String.init) ?? "other")</text>"
    }
    out += "</g><g class=\"cells\">"
    let columnIndex = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, $0) })
    let rowIndex = Dictionary(uniqueKeysWithValues: rowKeys.enumerated().map { ($1 ?? -1, $0) })
    for row in planned {
      guard let p = row.planned, let b = row.plannedBitsPerWeight, let c = columnIndex[row.type],
        let r = rowIndex[row.block ?? -1]
      else { continue }
      let (fill, light) = sequential(t(b))
      let (x, y) = (left + Double(c) * cellWidth, gridTop + Double(r) * cellHeight)
      let title = "\(row.name)\n\(p.format): \(ReportText.fixed(b, 3)) bits per weight, \(ReportText.grouped(p.bytes)) bytes"
        + "\npredicted Δloss \(ReportText.sig(p.predictedLossDelta)) nats/token"
      out += "<rect data-layer=\"\(ReportText.html(row.name))\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(cellWidth - 1))\" height=\"\(n(cellHeight - 1))\" fill=\"\(fill)\"><title>\(ReportText.html(title))</title></rect>"
      // The colour by class: the page's `svg text` rule would override a fill attribute.
      out += "<text class=\"\(light ? "cell light" : "cell")\" x=\"\(n(x + cellWidth / 2))\" y=\"\(n(y + 12.5))\" text-anchor=\"middle\">\(ReportText.html(p.format))</text>"
    }
    out += "</g><g transform=\"translate(0,\(n(legendTop)))\">" + legendSVG + "</g>"
    return out + "</svg>"
  }
}
