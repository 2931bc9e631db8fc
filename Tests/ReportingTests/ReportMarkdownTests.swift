import Allocation
import Foundation
import Reporting
import Sensitivity
import Testing
import Validation

/// report.md: every section present, with the numbers of the inputs.
@Suite struct ReportMarkdownTests {
  @Test func sectionsCarryTheInputsNumbers() throws {
    let run = ReportFixtures.run()
    let (plan, frontier) = try ReportFixtures.plan(run)
    let validation = try ReportFixtures.validation(plan)
    let data = try ReportFixtures.data(run, plan: plan, frontier: frontier, validation: validation)
    let md = MarkdownReport.render(data, directory: "out")
    for heading in ["## Model", "## Calibration and evaluation", "## Plan", "## Plan vs baselines", "## Sensitivity", "## Proxy audit", "## Reproduce"] {
      #expect(md.contains("\n\(heading)\n"), "\(heading)")
    }
    #expect(md.contains(ReportFixtures.modelSHA))
    #expect(md.contains("tiny.gguf"), "the model's name comes from the validation")
    // Plan summary: bytes and bits per weight, format counts, the block × type table with one row per block.
    #expect(md.contains(Self.grouped(plan.totalBytes) + " B"))
    #expect(md.contains(String(format: "%.4f", plan.bitsPerWeight)))
    for (format, count) in plan.formatCounts { #expect(md.contains("| `\(format)` | \(count) |"), "\(format)") }
    #expect(md.contains("| block | `q_proj` | `k_proj` | `v_proj` | `o_proj` | `gate_proj` | `up_proj` | `down_proj` |"))
    let q0 = try #require(plan.layers["model.layers.0.self_attn.q_proj"])
    #expect(md.contains("| 0 | \(String(format: "%.2f", 8 * Double(q0.bytes) / (64 * 64))) |"))
    // Plan vs baselines, with intervals and the paired difference.
    #expect(md.contains("| plan (exact, fisher\\_diag) | \(Self.grouped(plan.totalBytes)) | 4.500 | 0.1873 [0.1810, 0.1924] | 40.50 [38.25, 43.75] | 0.750 [0.700, 0.800] | — |"))
    #expect(md.contains("0.3354 [0.3204, 0.3492]") && md.contains("0.1481 [0.1381, 0.1579]"))
    // The uniform baseline's assignment is rebuilt, so its predicted loss is the sum of the run's scores.
    let fisher = run.proxies["fisher_diag"]!
    let uniform = run.layers.indices.reduce(0.0) { $0 + max(fisher[$1][1], 0) }
    #expect(data.validation?.models[1].predictedLoss.map { abs($0 - uniform) <= 1e-12 * uniform } == true)
    #expect(data.validation?.models[2].predictedLoss == nil, "a made-up label cannot be rebuilt")
    // Sensitivity: the largest trace first in the ten most sensitive, the noisy count stated.
    let top = run.layers.indices.max { run.hessianTrace[$0] < run.hessianTrace[$1] }!
    let most = try #require(md.range(of: "Ten most sensitive layers"))
    let firstRow = md[most.upperBound...].split(separator: "\n").dropFirst(3).first.map(String.init) ?? ""
    #expect(firstRow.hasPrefix("| `\(run.layers[top].name)` |"), "\(firstRow)")
    #expect(md.contains("\(data.noisyCount) of \(run.layers.count) layers have a trace"))
    // The audit: ρ per score with an interval around it.
    let a = try #require(data.audit)
    #expect(a.pairs.count == 12)
    for c in a.correlations {
      #expect(c.kld.low <= c.kld.value && c.kld.value <= c.kld.high, "\(c.score)")
      #expect(md.contains(String(format: "%.3f [%.3f, %.3f]", c.kld.value, c.kld.low, c.kld.high)))
    }
    // Reproduce: the settings the files record.
    #expect(md.contains("bitplan measure /models/tiny.gguf --calib CALIB.txt --tokens 64 --hvp-tokens 32 --probes 8 --seed 7 --candidates int8,int4-g32,int2-g32 --audit 12 -o runs/RUN.h5"))
    #expect(md.contains("bitplan allocate runs/RUN.h5 --budget \(plan.budgetBytes) --solver exact --score fisher_diag -o plan.json --record"))
    #expect(md.contains("bitplan validate /models/tiny.gguf plan.json --eval emma.txt --tokens 64 --windows 4 --protocol bitplan --activations int8 --baselines uniform,edges --bootstrap 500 --seed 3 --run runs/RUN.h5 -o validation.json"))
    #expect(md.contains("bitplan report runs/RUN.h5 --plan plan.json --validation validation.json -o out"))
  }

  @Test func missingPlanAndValidationNameTheCommandsThatFillThem() throws {
    let run = ReportFixtures.run(auditPairs: 0)
    let data = try ReportFixtures.data(run, plan: nil, frontier: nil, validation: nil)
    let md = MarkdownReport.render(data, directory: "out")
    #expect(md.contains("bitplan allocate runs/RUN.h5 --bpw 4.5 -o PLAN.json --record"))
    #expect(md.contains("bitplan validate MODEL PLAN.json --eval EVAL.txt --run runs/RUN.h5 -o VALIDATION.json"))
    #expect(md.contains("The run has no audit"))
    #expect(md.contains("MODEL: the model file, sha256 \(ReportFixtures.modelSHA)"))
  }

  @Test func theRunFilesValidationTableIsShownWithoutAPlan() throws {
    var run = ReportFixtures.run()
    var table = MeasuredRun.ValidationTable()
    (table.name, table.label, table.bytes, table.bitsPerWeight) = (["plan", "uniform"], ["plan (exact, fisher_diag)", "uniform int4-g32"], [1000, 1000], [4.5, 4.5])
    (table.kld, table.kldLow, table.kldHigh) = ([0.2, 0.3], [0.19, 0.29], [0.21, 0.31])
    (table.perplexity, table.perplexityLow, table.perplexityHigh, table.top1) = ([40, 41], [39, 40], [42, 43], [0.7, 0.65])
    (table.scoringProtocol, table.activations, table.evalSHA256, table.plan, table.tokens, table.windows) = ("bitplan", "int8", "ef", "p.json", 64, 4)
    run.validation = table
    let md = MarkdownReport.render(try ReportFixtures.data(run, plan: nil, frontier: nil, validation: nil), directory: "out")
    #expect(md.contains("| uniform int4-g32 | 1,000 | 4.500 | 0.3000 [0.2900, 0.3100] | 41.00 [40.00, 43.00] | 0.650 | — | — |"))
    #expect(md.contains("`/validation` table"))
  }

  @Test func inputsOfAnotherModelOrPlanAreRefused() throws {
    let run = ReportFixtures.run()
    var (plan, _) = try ReportFixtures.plan(run)
    let validation = try ReportFixtures.validation(plan, modelSHA: String(repeating: "99", count: 32))
    #expect(throws: ReportError.self) { try ReportFixtures.data(run, plan: plan, frontier: nil, validation: validation) }
    var other = try ReportFixtures.validation(plan)
    other.models[0].formatCounts = ["int8": 1]
    #expect(throws: ReportError.self) { try ReportFixtures.data(run, plan: plan, frontier: nil, validation: other) }
    plan.modelSHA256 = String(repeating: "11", count: 32)
    #expect(throws: ReportError.self) { try ReportFixtures.data(run, plan: plan, frontier: nil, validation: nil) }
    plan.modelSHA256 = ReportFixtures.modelSHA
    plan.layers["model.layers.9.mlp.up_proj"] = plan.layers.values.first
    #expect(throws: ReportError.self) { try ReportFixtures.data(run, plan: plan, frontier: nil, validation: nil) }
  }

  @Test func theAuditIntervalIsSeededAndReproducible() throws {
    let a = try #require(try ReportFixtures.data(ReportFixtures.run(seed: 5), plan: nil, frontier: nil, validation: nil).audit)
    let b = try #require(try ReportFixtures.data(ReportFixtures.run(seed: 5), plan: nil, frontier: nil, validation: nil).audit)
    let c = try #require(try ReportFixtures.data(ReportFixtures.run(seed: 5, auditPairs: 12), plan: nil, frontier: nil, validation: nil).audit)
    #expect(c.seed == 5 && a.replicates == 2000)
    #expect(a.correlations.map(\.kld.low) == b.correlations.map(\.kld.low))
    let stored = ReportFixtures.run(seed: 5).audit!
    let fisher = ReportFixtures.run(seed: 5).proxies["fisher_diag"]!
    let x = stored.layer.indices.map { fisher[stored.layer[$0]][stored.candidate[$0]] }
    let rho = try #require(SpearmanCorrelation.rho(x, stored.deltaKLD))
    #expect(a.correlations.first { $0.score == "fisher_diag" }?.kld.value == rho)
  }

  static func grouped(_ n: Int) -> String {
    let f = NumberFormatter()
    f.numberStyle = .decimal
    f.groupingSeparator = ","
    f.usesGroupingSeparator = true
    return f.string(from: NSNumber(value: n))!
  }

  /// The measure command the report prints carries every setting that changes the numbers: the quantizer, the
  /// measured single-layer KLD and an audit of every layer at one format.
  @Test func measureCommandCarriesQuantizerKLDAndAuditFormat() throws {
    var run = ReportFixtures.run()
    run.provenance.quantizer = "imatrix"
    run.provenance.kldTokens = 256
    (run.provenance.auditCount, run.provenance.auditFormat) = (0, "int4-g32")
    let measure = try ReportFixtures.data(run, plan: nil, frontier: nil, validation: nil).commands(directory: "out").measure
    #expect(measure.contains(" --quantizer imatrix --score-kld --kld-tokens 256 --audit-format int4-g32 "), "\(measure)")
    let plain = try ReportFixtures.data(ReportFixtures.run(), plan: nil, frontier: nil, validation: nil).commands(directory: "out").measure
    #expect(!plain.contains("--quantizer") && !plain.contains("--score-kld") && plain.contains(" --audit 12 "), "\(plain)")
  }
}

