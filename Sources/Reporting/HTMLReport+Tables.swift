/// The report's larger tables: ranked layers, all layers, and chart (e), the per-candidate errors (layer ×
/// candidate: weight error, output error, proxy score, bytes), each sortable by any column (`table.sortable`).
extension HTMLReport {
  static func rankTable(_ rows: [ReportData.LayerRow]) -> String {
    var h = "<table><thead><tr><th>layer</th><th class=\"n\">Hessian trace ± 2 SE</th><th class=\"n\">Fisher</th><th>plan</th></tr></thead><tbody>"
    for r in rows {
      h += "<tr><td><code>\(ReportText.html(r.name))</code></td><td class=\"n\">\(ReportText.sig(r.hessianTrace)) ± \(ReportText.sig(2 * r.hessianStandardError))\(r.isNoisy ? " <span class=\"noisy\" title=\"within 2 SE of zero\">noisy</span>" : "")</td>"
      h += "<td class=\"n\">\(ReportText.sig(r.fisherTrace))</td><td>\(r.planned.map { "<code>\(ReportText.html($0.format))</code>" } ?? "—")</td></tr>"
    }
    return h + "</tbody></table>"
  }

  static func layerTable(_ data: ReportData) -> String {
    var h = "<div class=\"tall\"><table class=\"sortable\" id=\"layer-table\"><thead><tr><th>layer</th><th class=\"n\">block</th><th>type</th><th class=\"n\">weights</th><th class=\"n\">Hessian trace</th><th class=\"n\">2 SE</th><th class=\"n\">trace per weight</th><th class=\"n\">Fisher</th><th>plan</th><th class=\"n\">plan bpw</th></tr></thead><tbody>"
    for r in data.layers {
      h += "<tr><td><code>\(ReportText.html(r.name))</code></td>" + num(Double(r.block ?? -1), r.block.map(String.init) ?? "—")
      h += "<td>\(ReportText.html(data.typeLabel(r.type)))</td>" + num(Double(r.parameters), ReportText.grouped(r.parameters))
      h += num(r.hessianTrace, ReportText.sig(r.hessianTrace)) + num(2 * r.hessianStandardError, ReportText.sig(2 * r.hessianStandardError))
      h += num(r.hessianTrace / Double(max(r.parameters, 1)), ReportText.sig(r.hessianTrace / Double(max(r.parameters, 1))))
      h += num(r.fisherTrace, ReportText.sig(r.fisherTrace))
      h += "<td>\(r.planned.map { "<code>\(ReportText.html($0.format))</code>" } ?? "—")</td>"
      h += num(r.plannedBitsPerWeight ?? .nan, r.plannedBitsPerWeight.map { ReportText.fixed($0, 3) } ?? "—") + "</tr>"
    }
    return h + "</tbody></table></div>"
  }

  static func errorSection(_ data: ReportData) -> String {
    let run = data.run
    let score = data.plan?.score ?? data.frontierScore
    let proxy = run.scoreGrid(named: score)
    var count = 0
    var body = ""
    for r in data.layers {
      for (c, candidate) in run.candidates.enumerated() where run.bytes[r.index][c] >= 0 {
        count += 1
        let bytes = run.bytes[r.index][c]
        let bpw = 8 * Double(bytes) / Double(max(r.parameters, 1))
        let chosen = r.planned?.format == candidate.name
        body += "<tr\(chosen ? " class=\"chosen\"" : "")><td><code>\(ReportText.html(r.name))</code></td>"
        body += "<td><code>\(ReportText.html(candidate.name))</code></td>"
        body += num(bpw, ReportText.fixed(bpw, 3)) + num(Double(bytes), ReportText.grouped(bytes))
        let we = run.weightError[r.index][c], oe = run.outputError[r.index][c]
        let p = proxy?[r.index][c] ?? .nan
        body += num(we, ReportText.sig(we)) + num(oe, ReportText.sig(oe)) + num(p, ReportText.sig(p))
        body += "<td>\(chosen ? "plan" : "")</td></tr>"
      }
    }
    var h = "<p>Every (layer, candidate) the run measured: \(count) rows. Weight error ‖Q(W) − W‖²<sub>F</sub> (weight²); output error tr(ΔW XᵀX ΔWᵀ)/n over the calibration inputs (output²); proxy: the predicted Δloss under <code>\(ReportText.html(score))</code> (nats/token); bytes as the target <code>\(ReportText.html(run.provenance.target))</code> stores the layer. The plan's choice is highlighted. Click a header to sort.</p>\n"
    h += "<div class=\"tall\"><table class=\"sortable\" id=\"candidate-errors\"><thead><tr><th>layer</th><th>candidate</th><th class=\"n\">bits per weight</th><th class=\"n\">bytes</th><th class=\"n\">weight error</th><th class=\"n\">output error</th><th class=\"n\">proxy (\(ReportText.html(score)))</th><th>plan</th></tr></thead><tbody>"
    return h + body + "</tbody></table></div>\n"
  }
}
