import Allocation
import Foundation
import Quantization
import Sensitivity

/// Reads what `bitplan allocate` solves: a measurement run (`RUN.h5`) or a hand-written `PROBLEM.json`.
public enum AllocationInput {
  /// The score a run is allocated by when `--score` is not given: the element-wise Fisher-weighted error, the best
  /// single proxy in an independent 210-layer check (Spearman ρ ≈ 0.7 with measured ΔKLD; issue 7).
  public static let defaultRunScore = LossProxy.fisherDiagonal.rawValue

  /// The problem in `path`, scored by `score` (nil: `fisher_diag` for a run, `error` for PROBLEM.json).
  /// Format details (nominal bits, group size, symmetry) are filled from the format grammar when absent.
  /// - Throws: `SensitivityError` for a bad run file, `AllocationError` for a bad problem file, `InputError` for
  ///   an unreadable file.
  public static func problem(from path: String, score: String?) throws -> AllocationProblem {
    var problem: AllocationProblem
    if path.lowercased().hasSuffix(".h5") {
      let run = try RunStore.read(path)
      let chosen = score ?? defaultRunScore
      let layers = try run.problemColumns(score: chosen).map { column in
        AllocationProblem.Layer(
          name: column.name, parameterCount: column.parameterCount,
          options: column.formats.indices.map {
            AllocationProblem.Option(format: column.formats[$0], bytes: column.bytes[$0], loss: column.loss[$0])
          },
          sensitivity: column.hessianTracePerWeight, variance: column.variance)
      }
      problem = AllocationProblem(
        layers: layers, score: chosen, model: nil, modelSHA256: run.provenance.modelSHA256)
    } else {
      let data: Data
      do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw InputError(message: "cannot read '\(path)': \(error.localizedDescription)")
      }
      problem = try ProblemFile.decode(data).problem(score: score ?? "error")
    }
    fillFormatDetails(&problem)
    return problem
  }

  /// Fills `bits`, `groupSize` and `symmetric` of options that left them out, from `QuantFormat`'s grammar.
  /// Names outside the grammar keep what they had.
  public static func fillFormatDetails(_ problem: inout AllocationProblem) {
    for l in problem.layers.indices {
      for o in problem.layers[l].options.indices {
        guard let format = QuantFormat(problem.layers[l].options[o].format) else { continue }
        problem.layers[l].options[o].bits = problem.layers[l].options[o].bits ?? format.nominalBits
        problem.layers[l].options[o].groupSize = problem.layers[l].options[o].groupSize ?? format.groupSize
        problem.layers[l].options[o].symmetric = problem.layers[l].options[o].symmetric ?? format.symmetric
      }
    }
  }
}

/// A file that cannot be read at all.
public struct InputError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { "io: \(message)" }
}
