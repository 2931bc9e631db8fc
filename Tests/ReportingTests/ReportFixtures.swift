import Allocation
import Foundation
import Quantization
import Reporting
import Sensitivity
import TensorCore
import Validation

/// Small synthetic inputs for the report tests: a run of `blocks` blocks × 7 linear layers (shapes of a tiny
/// Llama), three candidates with their true sizes, seeded statistics and an audit; a plan solved from it by the
/// allocator; a validation with the plan and two baselines.
enum ReportFixtures {
  static let types = [
    ("self_attn.q_proj", 64, 64), ("self_attn.k_proj", 32, 64), ("self_attn.v_proj", 32, 64), ("self_attn.o_proj", 64, 64),
    ("mlp.gate_proj", 128, 64), ("mlp.up_proj", 128, 64), ("mlp.down_proj", 64, 128),
  ]
  static let candidates = ["int8", "int4-g32", "int2-g32"]
  static let modelSHA = String(repeating: "ab", count: 32)

  /// A run with seeded numbers; `rename` changes one layer's name (for escaping tests).
  static func run(blocks: Int = 3, seed: UInt64 = 7, rename: [Int: String] = [:], auditPairs: Int = 12) -> MeasuredRun {
    var layers: [MeasuredRun.Layer] = []
    for b in 0..<blocks {
      for (type, rows, columns) in types {
        layers.append(.init(name: "model.layers.\(b).\(type)", rows: rows, columns: columns))
      }
    }
    for (i, name) in rename { layers[i].name = name }
    let formats = candidates.map { QuantFormat($0)! }
    let provenance = RunProvenance(
      toolVersion: "0.1.0", modelSHA256: modelSHA, calibSHA256: String(repeating: "cd", count: 32), tokens: 64,
      hvpTokens: 32, probes: 8, minimumProbes: 8, tolerance: 0, seed: seed, candidates: candidates,
      keepsHessianDiagonal: true, eigenIterations: 0, auditCount: auditPairs, created: "2026-01-01T00:00:00Z",
      auditSHA256: String(repeating: "cd", count: 32), auditTokens: 64, target: "any")
    var run = MeasuredRun(
      provenance: provenance, layers: layers,
      candidates: formats.map { .init(name: $0.name, bitsPerWeight: $0.bitsPerWeight(rows: 64, columns: 64)) })
    var rng = SplitMix64(seed: seed)
    let l = layers.count
    for i in 0..<l {
      let scale = pow(10, Double.random(in: -3...1, using: &rng))
      run.hessianTrace[i] = i % 5 == 4 ? -scale / 3 : scale  // every fifth trace negative: noise
      run.hessianTraceStandardError[i] = scale * Double.random(in: 0.05...0.6, using: &rng)
      run.fisherTrace[i] = scale * Double.random(in: 0.001...0.01, using: &rng)
      run.weightVariance[i] = 0.01
      run.weightAbsmax[i] = 0.2
      run.weightKurtosis[i] = 0.5
      run.inputTrace[i] = 1
      run.probesUsed[i] = 8
    }
    for i in 0..<l {
      for (c, f) in formats.enumerated() {
        let bits = Double(8 >> c)  // 8, 4, 2
        let error = Double(layers[i].parameterCount) * pow(2, -2 * bits) * Double.random(in: 0.5...1.5, using: &rng)
        run.weightError[i][c] = error
        run.outputError[i][c] = error * 3
        run.bytes[i][c] = f.sizeInBytes(rows: layers[i].rows, columns: layers[i].columns)
        run.calibrationMethod[i][c] = "minmax"
        for proxy in LossProxy.allCases {
          run.proxies[proxy.rawValue]![i][c] = error * 1e-3 * (1 + abs(run.hessianTrace[i]))
        }
      }
    }
    if auditPairs > 0 {
      var audit = MeasuredRun.Audit()
      audit.baselineNLL = 3.1
      for k in 0..<auditPairs {
        let (i, c) = ((k * 5) % l, k % 3)
        audit.layer.append(i)
        audit.candidate.append(c)
        let predicted = run.proxies["fisher_diag"]![i][c]
        audit.deltaKLD.append(predicted * Double.random(in: 0.5...2, using: &rng))
        audit.deltaNLL.append(predicted * Double.random(in: -0.5...2, using: &rng))
      }
      run.audit = audit
    }
    return run
  }

  /// The exact plan of `run` at `bitsPerWeight` under `score`, and the frontier it was solved on.
  static func plan(_ run: MeasuredRun, bitsPerWeight: Double = 4.5, score: String = "fisher_diag") throws
    -> (PlanDocument, ParetoFrontier)
  {
    let columns = try run.problemColumns(score: score)
    let problem = AllocationProblem(
      layers: columns.map { c in
        .init(
          name: c.name, parameterCount: c.parameterCount,
          options: c.formats.indices.map { .init(format: c.formats[$0], bytes: c.bytes[$0], loss: max(c.loss[$0], 0)) },
          sensitivity: c.hessianTracePerWeight, variance: c.variance)
      }, score: score, modelSHA256: run.provenance.modelSHA256)
    let frontier = try ParetoFrontier(problem)
    let parameters = run.layers.reduce(0) { $0 + $1.parameterCount }
    let plan = try problem.solve(budget: Int(bitsPerWeight * Double(parameters) / 8), frontier: frontier)
    return (PlanDocument(plan: plan, problem: problem), frontier)
  }

  /// A validation of `plan` (format counts from it) with a uniform int4-g32 baseline and one other.
  static func validation(_ plan: PlanDocument, modelSHA: String = modelSHA) throws -> ValidationReport {
    func interval(_ v: Double, _ lo: Double, _ hi: Double) -> [String: Double] { ["value": v, "low": lo, "high": hi] }
    func model(_ name: String, _ label: String, _ bytes: Int, counts: [String: Int], kld: [String: Double], minus: [String: Double]?) -> [String: Any] {
      var m: [String: Any] = [
        "name": name, "label": label, "bytes": bytes, "bits_per_weight": 4.5, "format_counts": counts,
        "perplexity": interval(40.5, 38.25, 43.75), "delta_nll": interval(0.2, 0.1, 0.3), "kld": kld,
        "kld_p99": 1.0, "kld_max": 3.0, "top1": interval(0.75, 0.7, 0.8), "windows": [] as [Any],
      ]
      if let minus { m["kld_minus_plan"] = minus }
      return m
    }
    var uniformBytes = 0
    for (_, rows, columns) in types { uniformBytes += QuantFormat("int4-g32")!.sizeInBytes(rows: rows, columns: columns) }
    let layers = plan.layers.count / types.count
    let object: [String: Any] = [
      "format_version": 1, "model": "/models/tiny.gguf", "model_sha256": modelSHA, "plan": "plan.json",
      "eval_text": "emma.txt", "eval_sha256": String(repeating: "ef", count: 32), "protocol": "bitplan",
      "activations": "int8", "tokens": 64, "window_starts": [0, 100, 200, 300], "scored_per_window": 63,
      "bootstrap_replicates": 500, "bootstrap_seed": 3, "base_perplexity": interval(35.0, 33.0, 37.0),
      "base": "f32 (weights dequantized from the file)", "elapsed_seconds": 1.5,
      "models": [
        model("plan", "plan (exact, fisher_diag)", plan.totalBytes, counts: plan.formatCounts, kld: interval(0.1873, 0.181, 0.1924), minus: nil),
        model("uniform", "uniform int4-g32", uniformBytes * layers, counts: ["int4-g32": plan.layers.count],
              kld: interval(0.3354, 0.3204, 0.3492), minus: interval(0.1481, 0.1381, 0.1579)),
        model("edges", "edges (made up)", plan.totalBytes, counts: ["int4-g32": plan.layers.count],
              kld: interval(0.3368, 0.3275, 0.3463), minus: interval(0.1495, 0.1429, 0.1563)),
      ],
    ]
    return try JSONDecoder().decode(ValidationReport.self, from: JSONSerialization.data(withJSONObject: object))
  }

  /// Report data for the run, plan and validation (each optional).
  static func data(
    _ run: MeasuredRun, plan: PlanDocument?, frontier: ParetoFrontier?, validation: ValidationReport?
  ) throws -> ReportData {
    try ReportData(
      runPath: "runs/RUN.h5", run: run, plan: plan, planSource: plan == nil ? .absent : .file("plan.json"),
      validation: validation, validationSource: validation == nil ? .absent : .file("validation.json"),
      frontier: frontier?.points ?? [], frontierScore: plan?.score ?? "fisher_diag")
  }
}
