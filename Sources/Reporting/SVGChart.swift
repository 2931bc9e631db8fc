import Foundation

/// Shared pieces of the report's charts: scales, axes, legends and markers, written as SVG text. Charts are
/// rendered here, in Swift, so that they show without JavaScript; every string from a file is escaped with
/// `ReportText.html`. Coordinates are rounded to 0.1 px to keep the file small.
enum SVGChart {
  /// A base-10 logarithmic scale from `10^lowDecade` to `10^highDecade` onto pixels `from` (low) … `to` (high).
  struct LogScale {
    var lowDecade: Int
    var highDecade: Int
    var from: Double
    var to: Double

    /// The decades that cover every positive value (one decade when there is only one value or none).
    init(values: [Double], from: Double, to: Double) {
      let positive = values.filter { $0 > 0 && $0.isFinite }
      let lo = positive.min() ?? 1, hi = positive.max() ?? 1
      lowDecade = Int(log10(lo).rounded(.down))
      highDecade = max(Int(log10(hi).rounded(.up)), lowDecade + 1)
      self.from = from
      self.to = to
    }

    /// The floor value (values ≤ 0 are drawn here).
    var floor: Double { pow(10, Double(lowDecade)) }

    func callAsFunction(_ v: Double) -> Double {
      let x = v > 0 && v.isFinite ? log10(v) : Double(lowDecade)
      let t = (min(max(x, Double(lowDecade)), Double(highDecade)) - Double(lowDecade)) / Double(highDecade - lowDecade)
      return from + t * (to - from)
    }

    /// Every decade, or every second/third one when there are many.
    var ticks: [Int] {
      let span = highDecade - lowDecade
      let step = span > 12 ? 3 : span > 6 ? 2 : 1
      return stride(from: lowDecade, through: highDecade, by: step).map { $0 }
    }
  }

  /// A linear scale over `low…high` onto pixels `from…to`, with "nice" ticks.
  struct LinearScale {
    var low: Double
    var high: Double
    var from: Double
    var to: Double

    init(low: Double, high: Double, from: Double, to: Double) {
      let (l, h) = low < high ? (low, high) : (low - 1, low + 1)
      let step = Self.niceStep((h - l) / 6)
      self.low = (l / step).rounded(.down) * step
      self.high = (h / step).rounded(.up) * step
      self.from = from
      self.to = to
    }

    static func niceStep(_ raw: Double) -> Double {
      guard raw > 0 && raw.isFinite else { return 1 }
      let magnitude = pow(10, log10(raw).rounded(.down))
      let f = raw / magnitude
      return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude
    }

    func callAsFunction(_ v: Double) -> Double { from + (v - low) / (high - low) * (to - from) }

    var ticks: [Double] {
      let step = Self.niceStep((high - low) / 6)
      return stride(from: low, through: high + step / 2, by: step).map { $0 }
    }
  }

  /// Okabe–Ito colours (distinguishable with colour-vision deficiencies), by series index.
  static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#000000"]
  static func colour(_ i: Int) -> String { palette[i % palette.count] }

  /// `12.3` with one decimal, the SVG coordinate format.
  static func n(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
  }

  /// `10^k` as SVG text content with a superscript exponent.
  static func decadeLabel(_ k: Int) -> String {
    switch k {
    case 0: "1"
    case 1: "10"
    default: "10<tspan dy=\"-5\" font-size=\"8\">\(k < 0 ? "−" : "")\(abs(k))</tspan>"
    }
  }

  /// A vertical log axis at x = `x` with gridlines to `gridTo`, tick labels and a rotated title.
  static func logAxisY(_ s: LogScale, x: Double, gridTo: Double, title: String) -> String {
    var out = "<g class=\"axis\">"
    for k in s.ticks {
      let y = n(s(pow(10, Double(k))))
      out += "<line class=\"grid\" x1=\"\(n(x))\" x2=\"\(n(gridTo))\" y1=\"\(y)\" y2=\"\(y)\"/>"
      out += "<text x=\"\(n(x - 4))\" y=\"\(y)\" dy=\"3\" text-anchor=\"end\">\(decadeLabel(k))</text>"
    }
    out += "<line class=\"frame\" x1=\"\(n(x))\" x2=\"\(n(x))\" y1=\"\(n(s.from))\" y2=\"\(n(s.to))\"/>"
    let middle = n((s.from + s.to) / 2)
    out += "<text class=\"title\" transform=\"translate(\(n(x - 44)),\(middle)) rotate(-90)\" text-anchor=\"middle\">\(ReportText.html(title))</text>"
    return out + "</g>"
  }

  /// A horizontal log axis at y = `y` with gridlines up to `gridTo`.
  static func logAxisX(_ s: LogScale, y: Double, gridTo: Double, title: String) -> String {
    var out = "<g class=\"axis\">"
    for k in s.ticks {
      let x = n(s(pow(10, Double(k))))
      out += "<line class=\"grid\" x1=\"\(x)\" x2=\"\(x)\" y1=\"\(n(y))\" y2=\"\(n(gridTo))\"/>"
      out += "<text x=\"\(x)\" y=\"\(n(y + 16))\" text-anchor=\"middle\">\(decadeLabel(k))</text>"
    }
    out += "<line class=\"frame\" x1=\"\(n(s.from))\" x2=\"\(n(s.to))\" y1=\"\(n(y))\" y2=\"\(n(y))\"/>"
    out += "<text class=\"title\" x=\"\(n((s.from + s.to) / 2))\" y=\"\(n(y + 36))\" text-anchor=\"middle\">\(ReportText.html(title))</text>"
    return out + "</g>"
  }

  /// A horizontal linear axis at y = `y`.
  static func linearAxisX(_ s: LinearScale, y: Double, gridTo: Double, title: String, label: (Double) -> String) -> String {
    var out = "<g class=\"axis\">"
    for t in s.ticks {
      let x = n(s(t))
      out += "<line class=\"grid\" x1=\"\(x)\" x2=\"\(x)\" y1=\"\(n(y))\" y2=\"\(n(gridTo))\"/>"
      out += "<text x=\"\(x)\" y=\"\(n(y + 16))\" text-anchor=\"middle\">\(ReportText.html(label(t)))</text>"
    }
    out += "<line class=\"frame\" x1=\"\(n(s.from))\" x2=\"\(n(s.to))\" y1=\"\(n(y))\" y2=\"\(n(y))\"/>"
    out += "<text class=\"title\" x=\"\(n((s.from + s.to) / 2))\" y=\"\(n(y + 36))\" text-anchor=\"middle\">\(ReportText.html(title))</text>"
    return out + "</g>"
  }

  /// One legend entry: a marker drawn by `marker` at (x, y), then the escaped label. Returns the SVG and the
  /// width it takes (estimated from the label's length at 12 px).
  static func legendItem(x: Double, y: Double, marker: String, label: String) -> (String, Double) {
    let svg = "<g class=\"legend-item\">\(marker)<text x=\"\(n(x + 14))\" y=\"\(n(y + 4))\">\(ReportText.html(label))</text></g>"
    return (svg, 14 + Double(label.count) * 6.6 + 18)
  }

  /// Legend entries laid out left to right, wrapping at `width`; returns the SVG and the height used.
  static func legend(x: Double, y: Double, width: Double, items: [(marker: (Double, Double) -> String, label: String)])
    -> (String, Double)
  {
    var out = "<g class=\"legend\">"
    var (cx, cy) = (x, y)
    for item in items {
      let estimate = 14 + Double(item.label.count) * 6.6 + 18
      if cx > x && cx + estimate > x + width {
        cx = x
        cy += 18
      }
      let (svg, w) = legendItem(x: cx, y: cy, marker: item.marker(cx, cy), label: item.label)
      out += svg
      cx += w
    }
    return (out + "</g>", cy - y + 18)
  }

  /// Marker shapes by index: circle, square, diamond, triangle.
  static func marker(_ shape: Int, x: Double, y: Double, size: Double, fill: String, stroke: String = "#000") -> String {
    let (cx, cy, r) = (n(x), n(y), size)
    switch shape % 4 {
    case 0: return "<circle cx=\"\(cx)\" cy=\"\(cy)\" r=\"\(n(r))\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>"
    case 1: return "<rect x=\"\(n(x - r))\" y=\"\(n(y - r))\" width=\"\(n(2 * r))\" height=\"\(n(2 * r))\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>"
    case 2:
      return "<path d=\"M\(cx) \(n(y - r * 1.3))L\(n(x + r * 1.3)) \(cy)L\(cx) \(n(y + r * 1.3))L\(n(x - r * 1.3)) \(cy)Z\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>"
    default:
      return "<path d=\"M\(cx) \(n(y - r * 1.3))L\(n(x + r * 1.2)) \(n(y + r))L\(n(x - r * 1.2)) \(n(y + r))Z\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>"
    }
  }

  /// The opening `<svg>` tag: fixed pixel size with a matching viewBox (print CSS scales it to the page). Inline
  /// SVG in HTML needs no namespace attribute, so the page holds no URL at all.
  static func open(width: Double, height: Double, label: String) -> String {
    "<svg width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(ReportText.html(label))\">"
  }
}
