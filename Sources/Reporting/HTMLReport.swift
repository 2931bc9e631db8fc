import Foundation

/// `report.html`: one self-contained page (inline CSS, inline SVG charts rendered here, a little inline JavaScript
/// for sorting tables and highlighting a layer across charts). Nothing is fetched: no external scripts, styles,
/// fonts or images, and no URL at all; the charts need no JavaScript. Print CSS gives black text on white and
/// scales wide charts to the page. The page is also well-formed XML (void elements closed, no `&` or `<` in the
/// script), so tests and tools can parse it with an XML parser.
///
/// Stable hooks for tests and tools (keep them):
/// - `#sensitivity` holds the sensitivity chart with exactly one `[data-layer]` element per measured layer;
/// - `#bits-heatmap` holds the heatmap with exactly one `[data-layer]` cell per planned layer;
/// - no other element of the page carries `data-layer`;
/// - `#frontier`, `#audit-scatter` hold charts (c) and (d), `table.sortable` the sortable tables (`#candidate-errors`).
public enum HTMLReport {
  public static func render(_ data: ReportData, directory: String) -> String {
    let commands = data.commands(directory: directory)
    var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
    h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
    h += "<title>\(ReportText.html("BitPlan report: \(data.modelName)"))</title>\n<style>\n\(css)</style>\n</head>\n<body>\n"
    h += "<header><h1>Quantization report: \(ReportText.html(data.modelName))</h1>"
    h += "<p class=\"lead\">BitPlan \(ReportText.html(data.run.provenance.toolVersion)), run <code>\(ReportText.html(data.runPath))</code>. "
    h += "Losses in nats per token of the mean next-token NLL; KLD is the mean KL(base ‖ quantized) of the next-token distributions; intervals are 95% bootstrap intervals. Hover a mark for its numbers; click a table header to sort.</p></header>\n"
    h += "<nav><a href=\"#model\">Model</a> · <a href=\"#plan\">Plan</a> · <a href=\"#baselines\">Plan vs baselines</a> · <a href=\"#sensitivity-section\">Sensitivity</a> · <a href=\"#audit\">Proxy audit</a> · <a href=\"#errors\">Per-candidate errors</a> · <a href=\"#reproduce\">Reproduce</a></nav>\n"
    h += section("model", "Model", modelSection(data))
    h += section("plan", "Plan", planSection(data, commands))
    h += section("baselines", "Plan vs baselines", baselineSection(data, commands))
    h += section("sensitivity-section", "Sensitivity", sensitivitySection(data))
    h += section("audit", "Proxy audit", auditSection(data))
    h += section("errors", "Per-candidate errors", errorSection(data))
    h += section("reproduce", "Reproduce", reproduceSection(data, commands))
    h += "<script>\n\(script)</script>\n</body>\n</html>\n"
    return h
  }

  static func section(_ id: String, _ title: String, _ body: String) -> String {
    "<section id=\"\(id)\">\n<h2>\(ReportText.html(title))</h2>\n\(body)</section>\n"
  }

  static func figure(id: String, caption: String, svg: String, scroll: Bool = false) -> String {
    let inner = scroll ? "<div class=\"scroll\">\(svg)</div>" : svg
    return "<figure id=\"\(id)\">\(inner)<figcaption>\(caption)</figcaption></figure>\n"
  }

  static func command(_ text: String) -> String { "<pre><code>\(ReportText.html(text))</code></pre>\n" }

  static func modelSection(_ data: ReportData) -> String {
    let p = data.run.provenance
    let e = ReportText.html
    var rows = [
      ("model", "<code>\(e(data.modelName))</code>"), ("sha256", "<code>\(e(p.modelSHA256))</code>"),
      ("measured weights", "\(ReportText.grouped(data.layers.reduce(0) { $0 + $1.parameters })) in \(data.layers.count) layers"),
      ("architecture", e(data.architecture)), ("target runtime", data.targetDescription(code: { "<code>\(e($0))</code>" })),
      ("measured", "\(e(p.created)) with bitplan \(e(p.toolVersion))"),
      ("calibration text", "sha256 <code>\(e(p.calibSHA256))</code>, \(p.tokens) tokens (BOS first); Hessian-vector products over the first \(p.hvpTokens); \(data.run.probesUsed.first ?? 0) of at most \(p.probes) Hutchinson probes; seed \(p.seed)"),
      ("candidates", p.candidates.map { "<code>\(e($0))</code>" }.joined(separator: ", ")),
    ]
    if p.auditCount > 0 { rows.append(("audit text", "sha256 <code>\(e(p.auditSHA256))</code>, \(p.auditTokens) tokens")) }
    if let v = data.validation {
      rows.append(("evaluation text", (v.evalText.map { "<code>\(e($0))</code>, " } ?? "") + "sha256 <code>\(e(v.evalSHA256))</code>; \(v.windows) windows × \(v.tokens) tokens, protocol <code>\(e(v.scoringProtocol))</code>, <code>\(e(v.activations))</code> activations"))
    }
    return "<table class=\"facts\">" + rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" }.joined() + "</table>\n"
  }

  static func planSection(_ data: ReportData, _ commands: ReportData.Commands) -> String {
    guard let plan = data.plan else {
      return "<p class=\"missing\">No plan in this report. This command makes one and records it in the run file, which fills this section and the bits heatmap:</p>\n" + command(commands.allocate)
    }
    let e = ReportText.html
    var h = "<p>Size of the planned layers: <b>\(e(ReportText.bytes(plan.totalBytes)))</b>, <b>\(ReportText.fixed(plan.bitsPerWeight, 4))</b> bits per weight (scales included) over \(ReportText.grouped(data.plannedParameters)) weights; budget \(e(ReportText.bytes(plan.budgetBytes))). "
    h += "Solver <code>\(e(plan.solver))</code>, score <code>\(e(plan.score))</code>, target <code>\(e(plan.target ?? "any"))</code>; predicted Δloss \(ReportText.sig(plan.predictedLossDelta)) nats/token.</p>\n"
    let counts = plan.formatCounts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
    h += "<table><thead><tr><th>format</th><th class=\"n\">layers</th></tr></thead><tbody>"
    h += counts.map { "<tr><td><code>\(e($0.key))</code></td><td class=\"n\">\($0.value)</td></tr>" }.joined() + "</tbody></table>\n"
    h += figure(
      id: "bits-heatmap",
      caption: "Bits per weight of each planned layer (8 · bytes / weights, scales included), by block and tensor type; the cell names the format. Hover a cell for the layer, its bytes and its predicted Δloss.",
      svg: SVGChart.bitsHeatmap(data), scroll: true)
    return h
  }

  static func baselineSection(_ data: ReportData, _ commands: ReportData.Commands) -> String {
    var h = ""
    if let v = data.validation {
      if let note = data.validationNote { h += "<p class=\"missing\">\(ReportText.html(note))</p>\n" }
      h += validationTable(v)
      var about = "KLD: mean KL(base ‖ model) over \(v.windows) windows of \(v.tokens) tokens; ΔKLD vs plan: the baseline's KLD minus the plan's, paired over the same windows (positive: the plan is better)."
      if let base = v.basePerplexity {
        about += " Base model, \(ReportText.html(v.baseDescription ?? "unquantized")): perplexity \(ReportText.interval(base.value, base.low, base.high, 2))."
      }
      if v.source == .runFile && v.models.first?.formatCounts == nil {
        about += " From the run file's <code>/validation</code> table, which keeps no per-window scores (no paired ΔKLD, no top-1 interval)."
      }
      h += "<p class=\"note\">\(about)</p>\n"
    } else {
      h += "<p class=\"missing\">No validation in this report. This command runs the plan and same-size baselines packed, stores the table in the run file and fills this table and the marks on the chart below:</p>\n" + command(commands.validate)
    }
    let caption = "Exact Pareto frontier of the run under the score <code>\(ReportText.html(data.frontierScore))</code>: for every size, the least sum of per-layer predicted Δloss any assignment of the run's candidates reaches (pins and ties not applied). Marks: the plan and each baseline at its size and predicted Δloss, labelled with its measured KLD."
    let hasMarks = data.plan != nil || !(data.validation?.models.isEmpty ?? true)
    let charts = hasMarks && !data.frontier.isEmpty
      ? "<div class=\"pair\">" + SVGChart.frontier(data, width: 580) + SVGChart.frontier(data, zoom: true, width: 580) + "</div>"
      : SVGChart.frontier(data)
    h += figure(id: "frontier", caption: caption + (hasMarks && !data.frontier.isEmpty ? " Right: the same near the plan's size." : ""), svg: charts)
    return h
  }

  static func validationTable(_ v: ReportData.ValidationSummary) -> String {
    var h = "<table class=\"sortable\"><thead><tr><th>model</th><th class=\"n\">bytes</th><th class=\"n\">bpw</th><th class=\"n\">KLD (nats) [95%]</th><th class=\"n\">perplexity [95%]</th><th class=\"n\">top-1 [95%]</th><th class=\"n\">ΔKLD vs plan [95%]</th><th class=\"n\">predicted Δloss</th></tr></thead><tbody>"
    for m in v.models {
      h += "<tr><td>\(ReportText.html(m.label))</td>" + num(Double(m.bytes), ReportText.grouped(m.bytes)) + num(m.bitsPerWeight, ReportText.fixed(m.bitsPerWeight, 3))
      h += num(m.kld.value, ReportText.interval(m.kld.value, m.kld.low, m.kld.high, 4))
      h += num(m.perplexity.value, ReportText.interval(m.perplexity.value, m.perplexity.low, m.perplexity.high, 2))
      h += num(m.top1.value, ReportText.interval(m.top1.value, m.top1.low, m.top1.high, 3))
      h += num(m.kldMinusPlan?.value ?? .nan, m.kldMinusPlan.map { ReportText.interval($0.value, $0.low, $0.high, 4) } ?? "—")
      h += num(m.predictedLoss ?? .nan, m.predictedLoss.map { ReportText.sig($0) } ?? "—") + "</tr>"
    }
    return h + "</tbody></table>\n"
  }

  /// A numeric cell: shown text, sort value in `data-v`.
  static func num(_ value: Double, _ text: String) -> String {
    "<td class=\"n\" data-v=\"\(value.isFinite ? String(value) : "")\">\(ReportText.html(text))</td>"
  }

  static func sensitivitySection(_ data: ReportData) -> String {
    let probes = data.run.probesUsed.first ?? 0
    var h = "<p>The Hessian trace of a layer is tr(H) of its diagonal block of the Hessian of the mean calibration NLL (nats/weight²), estimated by Hutchinson's method: the mean of vᵀHv over \(probes) Rademacher probes; the bars are ±2 standard errors of that mean. \(data.noisyCount) of \(data.layers.count) layers have a trace that is negative or within two standard errors of zero: their order among themselves is noise. The Fisher trace is Σg² of the layer's mean NLL gradient over the calibration windows (nats²/weight²).</p>\n"
    h += figure(
      id: "sensitivity",
      caption: "Per-layer Hessian trace (top, ±2 SE) and Fisher trace (bottom), log axes; layers grouped by block (shaded bands) and coloured by tensor type. Scroll sideways for more blocks; hover a mark for the layer's numbers.",
      svg: SVGChart.sensitivity(data), scroll: true)
    h += "<div class=\"pair\"><div><h3>Ten most sensitive layers</h3>\(rankTable(data.mostSensitive))</div>"
    h += "<div><h3>Ten least sensitive layers</h3>\(rankTable(data.leastSensitive))</div></div>\n"
    h += "<details><summary>All \(data.layers.count) layers (sortable)</summary>\(layerTable(data))</details>\n"
    return h
  }

  static func auditSection(_ data: ReportData) -> String {
    guard let a = data.audit else {
      return "<p class=\"missing\">The run has no audit. <code>bitplan measure … --audit N</code> quantizes N random single layers and measures the true ΔNLL and ΔKLD on held-out text, which fills this section.</p>\n"
    }
    var h = "<p>\(a.pairs.count) single-layer quantizations were measured on held-out text (baseline NLL \(ReportText.fixed(a.baselineNLL, 4)) nats/token). Spearman's ρ between each proxy and the measured change, with a 95% percentile-bootstrap interval over the audited pairs (\(a.replicates) resamples, seed \(a.seed)):</p>\n"
    h += "<table><thead><tr><th>score</th><th class=\"n\">ρ vs ΔKLD [95%]</th><th class=\"n\">ρ vs ΔNLL [95%]</th></tr></thead><tbody>"
    for c in a.correlations {
      h += "<tr\(c.score == a.score ? " class=\"chosen\"" : "")><td><code>\(ReportText.html(c.score))</code>\(c.score == a.score ? " (drawn below)" : "")</td>"
      h += "<td class=\"n\">\(ReportText.interval(c.kld.value, c.kld.low, c.kld.high, 3))</td><td class=\"n\">\(ReportText.interval(c.nll.value, c.nll.low, c.nll.high, 3))</td></tr>"
    }
    h += "</tbody></table>\n"
    let dropped = a.pairs.count - a.pairs.filter { $0.predicted > 0 && $0.deltaKLD > 0 }.count
    h += figure(
      id: "audit-scatter",
      caption: "Predicted Δloss (\(ReportText.html(a.score))) against measured ΔKLD of each audited single-layer quantization, log-log; a good proxy ranks the points in the same order on both axes."
        + (dropped > 0 ? " \(dropped) pairs with a value ≤ 0 are not drawn." : ""),
      svg: SVGChart.auditScatter(a))
    return h
  }

  static func reproduceSection(_ data: ReportData, _ commands: ReportData.Commands) -> String {
    var lines = [commands.measure]
    if data.plan != nil { lines.append(commands.allocate) }
    if data.validation != nil { lines.append(commands.validate) }
    lines.append(commands.report)
    var h = "<p>Every number above comes from these commands, run in this order:</p>\n" + command(lines.joined(separator: "\n"))
    h += "<ul>" + commands.notes.map { "<li>\(ReportText.html($0))</li>" }.joined() + "</ul>\n"
    return h
  }
}
