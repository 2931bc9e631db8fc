import Foundation

/// `report.md`: the report as GitHub Markdown, ready to paste into a model card. Sections: model, calibration and
/// evaluation, plan, plan vs baselines, sensitivity, proxy audit, reproduce. A section whose input is missing says
/// which command fills it. Layer names and paths are code spans (`ReportText.codeSpan`), so no file content can
/// turn into markup.
public enum MarkdownReport {
  /// The whole document; `directory` is the report's output folder (for the reproduce section).
  public static func render(_ data: ReportData, directory: String) -> String {
    let commands = data.commands(directory: directory)
    var md: [String] = []
    md.append("# Quantization report: \(ReportText.markdown(data.modelName))")
    md.append("")
    md.append("Made by BitPlan \(ReportText.markdown(data.run.provenance.toolVersion)) from the run \(ReportText.codeSpan(data.runPath)). Losses are in nats per token of the mean next-token NLL; KLD is the mean KL(base ‖ quantized) of the next-token distributions; intervals are 95% bootstrap intervals.")
    md += ["", "## Model", ""] + model(data)
    md += ["", "## Calibration and evaluation", ""] + texts(data)
    md += ["", "## Plan", ""] + plan(data, commands)
    md += ["", "## Plan vs baselines", ""] + baselines(data, commands)
    md += ["", "## Sensitivity", ""] + sensitivity(data)
    md += ["", "## Proxy audit", ""] + audit(data)
    md += ["", "## Reproduce", ""]
    md.append("Every number above comes from these commands (run in this order):")
    md += ["", "```sh", commands.measure]
    if data.plan != nil { md.append(commands.allocate) }
    if data.validation != nil { md.append(commands.validate) }
    md += [commands.report, "```", ""]
    md += commands.notes.map { "- \(ReportText.markdown($0))" }
    return md.joined(separator: "\n") + "\n"
  }

  static func table(_ header: [String], _ rows: [[String]], right: Set<Int> = []) -> [String] {
    let align = header.indices.map { right.contains($0) ? "---:" : "---" }
    return ["| " + header.joined(separator: " | ") + " |", "| " + align.joined(separator: " | ") + " |"]
      + rows.map { "| " + $0.joined(separator: " | ") + " |" }
  }

  static func model(_ data: ReportData) -> [String] {
    let p = data.run.provenance
    var rows: [[String]] = [["model", ReportText.codeSpan(data.modelName)], ["sha256", ReportText.codeSpan(p.modelSHA256)]]
    rows.append(["measured weights", "\(ReportText.grouped(data.layers.reduce(0) { $0 + $1.parameters })) in \(data.layers.count) layers"])
    rows.append(["architecture", ReportText.markdown(data.architecture)])
    rows.append(["target runtime", data.targetDescription(code: ReportText.codeSpan)])
    rows.append(["measured", "\(ReportText.markdown(p.created)) with bitplan \(ReportText.markdown(p.toolVersion))"])
    return table(["", ""], rows)
  }

  static func texts(_ data: ReportData) -> [String] {
    let p = data.run.provenance
    var lines = [
      "- Calibration text: sha256 \(ReportText.codeSpan(p.calibSHA256)), \(p.tokens) tokens (BOS first); Hessian-vector products over the first \(p.hvpTokens); \(data.run.probesUsed.first ?? 0) of at most \(p.probes) Hutchinson probes; seed \(p.seed).",
      "- Candidate formats: \(p.candidates.map(ReportText.codeSpan).joined(separator: ", ")).",
    ]
    if p.auditCount > 0 {
      lines.append("- Audit text: sha256 \(ReportText.codeSpan(p.auditSHA256)), \(p.auditTokens) tokens.")
    }
    if let v = data.validation {
      let text = v.evalText.map { "\(ReportText.codeSpan($0)), " } ?? ""
      lines.append("- Evaluation text: \(text)sha256 \(ReportText.codeSpan(v.evalSHA256)); \(v.windows) windows × \(v.tokens) tokens, protocol \(ReportText.codeSpan(v.scoringProtocol)), \(ReportText.codeSpan(v.activations)) activations.")
    } else {
      lines.append("- Evaluation text: none yet (see *Plan vs baselines*).")
    }
    return lines
  }

  static func plan(_ data: ReportData, _ commands: ReportData.Commands) -> [String] {
    guard let plan = data.plan else {
      return ["No plan in this report. This command makes one and records it in the run file, which fills this section:", "", "```sh", commands.allocate, "```"]
    }
    var lines = [
      "- Size of the planned layers: \(ReportText.bytes(plan.totalBytes)), \(ReportText.fixed(plan.bitsPerWeight, 4)) bits per weight (scales included) over \(ReportText.grouped(data.plannedParameters)) weights; budget \(ReportText.bytes(plan.budgetBytes)).",
      "- Solver \(ReportText.codeSpan(plan.solver)), score \(ReportText.codeSpan(plan.score)), target \(ReportText.codeSpan(plan.target ?? "any")); predicted Δloss \(ReportText.sig(plan.predictedLossDelta)) nats/token.",
      "",
    ]
    let counts = plan.formatCounts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
    lines += table(["format", "layers", "bits per weight"], counts.map { format, count in
      let bpw = data.plannedLayers.filter { $0.planned?.format == format }.compactMap(\.plannedBitsPerWeight)
      let range = bpw.isEmpty ? "—" : bpw.min() == bpw.max() ? ReportText.fixed(bpw[0], 3) : "\(ReportText.fixed(bpw.min()!, 3))–\(ReportText.fixed(bpw.max()!, 3))"
      return [ReportText.codeSpan(format), "\(count)", range]
    }, right: [1, 2])
    lines += ["", "Bits per weight per block (rows) and tensor type (columns):", ""]
    let columns = data.types.filter { t in data.plannedLayers.contains { $0.type == t } }
    var rows: [[String]] = []
    for block in data.blocks.map({ Optional($0) }) + [nil] {
      let inRow = data.plannedLayers.filter { $0.block == block }
      if inRow.isEmpty { continue }
      rows.append([block.map(String.init) ?? "other"] + columns.map { type in
        inRow.first { $0.type == type }?.plannedBitsPerWeight.map { ReportText.fixed($0, 2) } ?? ""
      })
    }
    lines += table(["block"] + columns.map { ReportText.codeSpan(data.typeLabel($0)) }, rows, right: Set(1...max(columns.count, 1)))
    return lines
  }

  static func baselines(_ data: ReportData, _ commands: ReportData.Commands) -> [String] {
    guard let v = data.validation else {
      return ["No validation in this report. This command runs the plan and same-size baselines packed, stores the table in the run file and fills this section:", "", "```sh", commands.validate, "```"]
    }
    var lines: [String] = []
    if let note = data.validationNote { lines += ["> \(ReportText.markdown(note))", ""] }
    let rows = v.models.map { m -> [String] in
      [ReportText.markdown(m.label), ReportText.grouped(m.bytes), ReportText.fixed(m.bitsPerWeight, 3),
       ReportText.interval(m.kld.value, m.kld.low, m.kld.high, 4),
       ReportText.interval(m.perplexity.value, m.perplexity.low, m.perplexity.high, 2),
       ReportText.interval(m.top1.value, m.top1.low, m.top1.high, 3),
       m.kldMinusPlan.map { ReportText.interval($0.value, $0.low, $0.high, 4) } ?? "—",
       m.predictedLoss.map { ReportText.sig($0) } ?? "—"]
    }
    lines += table(["model", "bytes", "bpw", "KLD (nats) [95%]", "perplexity [95%]", "top-1 [95%]", "ΔKLD vs plan [95%]", "predicted Δloss"], rows, right: [1, 2, 3, 4, 5, 6, 7])
    lines.append("")
    var about = "KLD: mean KL(base ‖ model) over \(v.windows) windows of \(v.tokens) tokens; ΔKLD vs plan: the baseline's KLD minus the plan's, paired over the same windows (positive: the plan is better)."
    if let base = v.basePerplexity {
      about += " Base model, \(ReportText.markdown(v.baseDescription ?? "unquantized")): perplexity \(ReportText.interval(base.value, base.low, base.high, 2))."
    }
    if v.source == .runFile && v.models.first?.formatCounts == nil {
      about += " From the run file's `/validation` table, which keeps no per-window scores (no paired ΔKLD, no top-1 interval)."
    }
    about += " Predicted Δloss: the sum of the run's per-layer \(ReportText.codeSpan(data.plan?.score ?? data.frontierScore)) over the assignment (a baseline's assignment is rebuilt by its rule; — when it cannot be)."
    lines.append(about)
    return lines
  }

  static func sensitivity(_ data: ReportData) -> [String] {
    var lines = [
      "The Hessian trace of a layer is tr(H) of its diagonal block of the Hessian of the mean calibration NLL (nats/weight²), estimated by Hutchinson's method: the mean of vᵀHv over \(data.run.probesUsed.first ?? 0) Rademacher probes; ± is two standard errors of that mean. \(data.noisyCount) of \(data.layers.count) layers have a trace that is negative or within two standard errors of zero, so their order among themselves is noise. Fisher: Σg² of the layer's mean NLL gradient.",
      "",
      "Ten most sensitive layers (largest trace):",
      "",
    ]
    lines += rankTable(data.mostSensitive)
    lines += ["", "Ten least sensitive layers (smallest trace):", ""]
    lines += rankTable(data.leastSensitive)
    return lines
  }

  static func rankTable(_ rows: [ReportData.LayerRow]) -> [String] {
    table(["layer", "Hessian trace ± 2 SE", "per weight", "Fisher trace", "plan"], rows.map { r in
      [ReportText.codeSpan(r.name), "\(ReportText.sig(r.hessianTrace)) ± \(ReportText.sig(2 * r.hessianStandardError))\(r.isNoisy ? " (noisy)" : "")",
       ReportText.sig(r.hessianTrace / Double(max(r.parameters, 1))), ReportText.sig(r.fisherTrace),
       r.planned.map { ReportText.codeSpan($0.format) } ?? "—"]
    }, right: [1, 2, 3])
  }

  static func audit(_ data: ReportData) -> [String] {
    guard let a = data.audit else {
      return ["The run has no audit. `bitplan measure … --audit N` quantizes N random single layers and measures the true ΔNLL and ΔKLD on held-out text, which fills this section."]
    }
    var lines = [
      "\(a.pairs.count) single-layer quantizations were measured on held-out text (baseline NLL \(ReportText.fixed(a.baselineNLL, 4))). Spearman's ρ between each proxy and the measured change, with a 95% percentile-bootstrap interval over the audited pairs (\(a.replicates) resamples, seed \(a.seed)):",
      "",
    ]
    lines += table(["score", "ρ vs ΔKLD [95%]", "ρ vs ΔNLL [95%]"], a.correlations.map { c in
      [ReportText.codeSpan(c.score) + (c.score == a.score ? " (plan)" : ""), ReportText.interval(c.kld.value, c.kld.low, c.kld.high, 3),
       ReportText.interval(c.nll.value, c.nll.low, c.nll.high, 3)]
    }, right: [1, 2])
    return lines
  }
}

extension ReportData {
  /// The model's name: the file name of the model the validation or plan names, else its sha256's first digits.
  public var modelName: String {
    for path in [validation?.modelPath, plan?.model] {
      if let path, !path.isEmpty { return path.split(separator: "/").last.map(String.init) ?? path }
    }
    return "model \(run.provenance.modelSHA256.prefix(12))"
  }

  /// What the run shows of the architecture: blocks, tensor types and their shapes.
  public var architecture: String {
    var shapes: [String] = []
    for type in types {
      guard let l = layers.first(where: { $0.type == type }) else { continue }
      shapes.append("\(typeLabel(type)) \(l.rows)×\(l.columns)")
    }
    return "\(blocks.count) blocks; " + shapes.joined(separator: ", ")
  }

  /// Layers whose trace is too noisy to rank.
  public var noisyCount: Int { layers.filter(\.isNoisy).count }

  /// The ten layers with the largest Hessian trace (NaN last), largest first.
  public var mostSensitive: [LayerRow] {
    Array(layers.filter { $0.hessianTrace.isFinite }.sorted { ($0.hessianTrace, -$0.index) > ($1.hessianTrace, -$1.index) }.prefix(10))
  }

  /// The ten layers with the smallest Hessian trace, smallest first.
  public var leastSensitive: [LayerRow] {
    Array(layers.filter { $0.hessianTrace.isFinite }.sorted { ($0.hessianTrace, $0.index) < ($1.hessianTrace, $1.index) }.prefix(10))
  }
}
