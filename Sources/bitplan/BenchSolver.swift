import Allocation
import ArgumentParser
import Foundation
import TensorCore

/// `bitplan bench`: groups the benchmarks (`solver` here; kernels and engine join it).
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench", abstract: "Throughput on this machine, with the reference beside it.",
    subcommands: [BenchKernels.self, BenchEngine.self, BenchPacked.self, BenchSolver.self])
}

/// `bitplan bench solver`: times the exact Pareto frontier of a seeded, SmolLM2-shaped problem (30 blocks × 7 linear
/// layers × 10 formats) and one budget with each solver.
struct BenchSolver: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "solver",
    abstract: "Time the exact frontier of a seeded 210-layer × 10-format problem (target: < 1 s in release).")

  // Not SeedOption: its default is 1 (the problem the < 1 s target was set on).
  @Option(help: "Seed of the synthetic problem.") var seed: UInt64 = 1
  @Option(parsing: .unconditional, help: "Transformer blocks (7 layers each, at most 1000).") var blocks = 30
  @Option(parsing: .unconditional, help: "Budget for the per-solver timings, in bits per weight.") var bpw = 4.5
  @Option(help: ArgumentHelp("Also write the synthetic problem (for scripts/ilp_compare.py).", valueName: "PROBLEM.json")) var writeProblem:
    String?
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  /// Target for the frontier of 210 × 10 (the issue's acceptance figure).
  static let targetSeconds = 1.0

  func validate() throws {
    guard (1...1000).contains(blocks) else { throw ValidationError("--blocks must be in 1...1000, got \(blocks)") }
    guard bpw > 0 && bpw <= 64 else { throw ValidationError("--bpw must be in (0, 64], got \(bpw)") }
  }

  func run() throws {
    if let path = writeProblem { try FileChecks.check(inputs: [], outputs: [OutputPath(option: "--write-problem", path: path)]) }
    let problem = SyntheticProblem.transformer(blocks: blocks, seed: seed)
    if let path = writeProblem {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      try FileChecks.write(try encoder.encode(ProblemFile(problem)), to: path, option: "--write-problem")
    }
    let clock = ContinuousClock()
    var frontier: ParetoFrontier?
    let frontierTime = try clock.measure { frontier = try ParetoFrontier(problem) }
    let budget = try Budget.bitsPerWeight(bpw).bytes(parameterCount: problem.parameterCount)
    var rows = [(solver: String, seconds: Double, loss: Double, gap: Double)]()
    for solver in SolverKind.allCases {
      var plan: AllocationPlan?
      let time = try clock.measure { plan = try problem.solve(budget: budget, using: solver, frontier: frontier) }
      rows.append((solver.rawValue, time.seconds, plan!.predictedLoss, plan!.gapToOptimum))
    }
    let layers = problem.layers.count
    let candidates = problem.layers[0].options.count
    if json {
      let object: [String: Any] = [
        "layers": layers, "candidates": candidates, "seed": seed, "frontier_points": frontier!.points.count,
        "stored_points": frontier!.storedPoints, "frontier_seconds": frontierTime.seconds,
        "target_seconds": Self.targetSeconds, "budget_bytes": budget,
        "solvers": rows.map { ["solver": $0.solver, "seconds": $0.seconds, "predicted_loss": $0.loss, "gap": $0.gap] },
      ]
      let data = try JSONSerialization.data(
        withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
      print(String(decoding: data, as: UTF8.self))
      return
    }
    print("problem    \(layers) layers × \(candidates) candidates, seed \(seed)")
    print(
      "frontier   \(frontier!.points.count) Pareto points (\(frontier!.storedPoints) stored) in "
        + "\(format(frontierTime.seconds * 1000)) ms   (target < \(Int(Self.targetSeconds * 1000)) ms)")
    print("budget     \(budget) bytes (\(bpw) bpw); solve time includes the shared frontier lookup")
    for row in rows {
      print(
        "  \(row.solver.padding(toLength: 10, withPad: " ", startingAt: 0)) \(format(row.seconds * 1000)) ms   "
          + "predicted ΔLoss \(format(row.loss))   gap \(format(row.gap))")
    }
  }

  private func format(_ x: Double) -> String { String(format: "%.4g", x) }
}

extension Duration {
  /// The duration in seconds as a Double.
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
