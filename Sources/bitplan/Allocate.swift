import Allocation
import ArgumentParser
import Foundation
import Pipeline
import Quantization
import Sensitivity
import TensorCore

extension SolverKind: ExpressibleByArgument {}

/// `bitplan allocate`: reads a problem, solves it for one budget, writes PLAN.json (and the frontier), prints a
/// summary. Every plan is compared with the exact optimum, so the summary always shows the solver's gap.
struct Allocate: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allocate",
    abstract: "Choose a format per layer under a memory budget; write PLAN.json.",
    discussion: """
      --pin REGEX=FORMAT fixes the format of every layer whose name matches (searched anywhere; the first matching \
      pin wins). --tie REGEX makes matching layers share a format per block: the block is the regex's first capture \
      group, or, without one, the name with the matched part removed. \
      Example: --tie 'layers\\.(\\d+)\\.self_attn\\.[qkv]_proj'. The input is recognised by its content (HDF5 or JSON), \
      not its name. -o and --frontier must differ from the input and from each other.
      """)

  @Argument(help: "RUN.h5 from bitplan measure, or PROBLEM.json (Documentation/ProblemFormat.md).") var input: String
  @Option(parsing: .unconditional, help: ArgumentHelp("Byte budget: 123456, 80MiB, 80MB, 1.5GiB.", valueName: "bytes")) var budget: String?
  @Option(parsing: .unconditional, help: "Budget in bits per weight over the quantizable weights.") var bpw: String?
  @Option(help: "Which solver chooses the formats; every plan is compared with exact.") var solver: SolverKind = .exact
  @Option(help: "Which score to minimise: for RUN.h5 a proxy (fisher_diag by default, hawq_trace, taylor_diag, output_error, weight_error) or kld (measured by measure --score-kld); for PROBLEM.json error (default) or a name under a candidate's scores.")
  var score: String?
  @Option(name: .customLong("pin"), help: ArgumentHelp("Fix the format of the matching layers (see above); repeatable.", valueName: "REGEX=FORMAT")) var pins: [String] = []
  @Option(name: .customLong("tie"), help: ArgumentHelp("Give the matching layers of a block one format (see above); repeatable.", valueName: "REGEX")) var ties: [String] = []
  @Option(help: "Runtime to plan for: keep only the run's candidates it stores for each layer's shape, with its byte counts (default: the run's own candidates and bytes).")
  var target: Target?
  @OptionGroup var outputFile: OutputFile<PlanOutput>
  var output: String { outputFile.output }
  @Option(help: "Also write the whole Pareto frontier as CSV.") var frontier: String?
  @Flag(help: "Allocate by a score built on Hessian traces (hawq_trace, taylor_diag; the waterfill solver) even when many traces are too noisy to rank layers.")
  var allowNoisyScores = false
  @Flag(help: "Also store the plan in the run file (RUN.h5 only) as /plan, replacing an older one and dropping a /validation of another plan.")
  var record = false
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  func validate() throws {
    guard (budget == nil) != (bpw == nil) else { throw ValidationError("give exactly one of --budget and --bpw") }
    for pin in pins where pin.lastIndex(of: "=") == nil {
      throw ValidationError("--pin '\(pin)' is not REGEX=FORMAT")
    }
  }

  func run() throws {
    // Before any work: the outputs must differ from the input, from each other, and be regular files or absent.
    try FileChecks.check(
      inputs: [InputPath(option: "INPUT", path: input)],
      outputs: [OutputPath(option: "-o", path: output)] + (frontier.map { [OutputPath(option: "--frontier", path: $0)] } ?? []))
    if record, try AllocationInput.kind(of: input) != .hdf5 {
      throw CommandError("--record stores the plan in a run file: '\(input)' is a PROBLEM.json; leave --record out")
    }
    let loaded = try AllocationInput.load(
      from: input, score: score, allowNoisyScores: allowNoisyScores, usesTraceSensitivity: solver == .waterfill,
      target: target)
    var problem = loaded.problem
    problem.constraints += pins.map { pin in
      let split = pin.lastIndex(of: "=")!
      return .pin(pattern: String(pin[..<split]), format: String(pin[pin.index(after: split)...]))
    }
    problem.constraints += ties.map { .tie(pattern: $0) }
    let requested = try budget.map(Budget.parse) ?? Budget.bitsPerWeight(bpw!)
    let budgetBytes = try requested.bytes(parameterCount: problem.parameterCount)
    try problem.checkFeasible(budget: budgetBytes)  // before any work: the achievable range, at once
    let pareto = try ParetoFrontier(problem)
    let plan = try problem.solve(budget: budgetBytes, using: solver, frontier: pareto)
    let document = PlanDocument(plan: plan, problem: problem, target: loaded.target).jsonData()
    try FileChecks.write(document, to: output, option: "-o")
    if record { try RunStore.recordPlan(RunPlanRecord(plan: plan, document: document, target: loaded.target), to: input) }
    if let frontier { try FileChecks.write(Data(pareto.csv().utf8), to: frontier, option: "--frontier") }
    warn(loaded)  // after success, so that an error stays the only line on stderr
    print(json ? jsonSummary(plan, pareto) : textSummary(plan, pareto))
  }

  /// One line on stderr per thing the user should know about the statistics: noisy Hessian traces, negative
  /// predicted losses raised to zero.
  private func warn(_ loaded: AllocationInput.Loaded) {
    var lines: [String] = []
    if loaded.noisyTraceLayers > 0 {
      let use =
        loaded.scoreUsesHessian
        ? "this plan uses them (--allow-noisy-scores)"
        : "hawq_trace, taylor_diag and the waterfill solver are refused on this run unless --allow-noisy-scores"
      lines.append(
        "warning: \(loaded.noisyTraceLayers) of \(loaded.layerCount) layers have a Hessian trace that is negative or "
          + "within two standard errors of zero (too noisy to rank them); \(use)")
    }
    if loaded.negativeLossesClamped > 0 {
      lines.append(
        "warning: \(loaded.negativeLossesClamped) negative predicted ΔLoss values (noise) were raised to 0")
    }
    for line in lines { FileHandle.standardError.write(Data((line + "\n").utf8)) }
  }

  private func textSummary(_ plan: AllocationPlan, _ pareto: ParetoFrontier) -> String {
    let range = pareto.points.first!.bytes...pareto.points.last!.bytes
    let counts = plan.formatCounts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
      .map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    let relative = plan.optimumLoss != 0 ? " (\(g(100 * plan.gapToOptimum / abs(plan.optimumLoss)))%)" : ""
    return """
      solver    \(plan.solver.rawValue), score \(plan.score)
      budget    \(plan.budgetBytes) bytes (\(g(Double(plan.budgetBytes) / 1_048_576)) MiB)
      total     \(plan.totalBytes) bytes (\(g(Double(plan.totalBytes) / 1_048_576)) MiB), \
      \(g(plan.bitsPerWeight)) bits per weight
      ΔLoss     \(g(plan.predictedLoss)) predicted; exact optimum \(g(plan.optimumLoss)), \
      gap \(g(plan.gapToOptimum))\(relative); LP bound \(g(plan.lowerBound))
      formats   \(counts)
      price     \(g(plan.lossPerExtraMiB)) ΔLoss per extra MiB (shadow price of the budget)
      frontier  \(pareto.points.count) Pareto points, achievable \(range.lowerBound)...\(range.upperBound) bytes
      wrote     \(output)\(frontier.map { ", \($0)" } ?? "")\(record ? "; /plan in \(input)" : "")
      """
  }

  private func jsonSummary(_ plan: AllocationPlan, _ pareto: ParetoFrontier) -> String {
    let object: [String: Any] = [
      "solver": plan.solver.rawValue, "score": plan.score, "budget_bytes": plan.budgetBytes,
      "total_bytes": plan.totalBytes, "bits_per_weight": plan.bitsPerWeight, "predicted_loss_delta": plan.predictedLoss,
      "optimum_loss_delta": plan.optimumLoss, "gap_to_optimum": plan.gapToOptimum, "lp_lower_bound": plan.lowerBound,
      "loss_per_extra_mib": plan.lossPerExtraMiB, "formats": plan.formatCounts,
      "frontier_points": pareto.points.count, "min_bytes": pareto.points.first!.bytes,
      "max_bytes": pareto.points.last!.bytes, "plan": output, "frontier": frontier as Any? ?? NSNull(),
    ]
    let data = try! JSONSerialization.data(
      withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
  }

  private func g(_ x: Double) -> String { String(format: "%.6g", x) }
}

/// A one-line error of the command line itself (files), shown by ArgumentParser with a non-zero exit.
