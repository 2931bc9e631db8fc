import Allocation
import Engine
import Foundation
import Quantization
import Sensitivity
import TensorCore

/// Reads what `bitplan allocate` solves: a measurement run (`RUN.h5`) or a hand-written `PROBLEM.json`, told apart
/// by content (the HDF5 signature, or JSON), never by the file name.
public enum AllocationInput {
  /// The score a run is allocated by when `--score` is not given: the element-wise Fisher-weighted error, the best
  /// single proxy in an independent 210-layer check (Spearman ρ ≈ 0.7 with measured ΔKLD; issue 7).
  public static let defaultRunScore = LossProxy.fisherDiagonal.rawValue

  /// The 8-byte HDF5 signature `\x89HDF\r\n\x1a\n`, at offset 0 (or 512, 1024, 2048 … with a user block).
  static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

  /// A problem read from a file, with what the reader noticed about its statistics.
  public struct Loaded {
    /// The problem, scored as asked, negative losses raised to zero.
    public var problem: AllocationProblem
    /// For a run: the layers whose Hessian trace is negative or within two standard errors of zero.
    public var noisyTraceLayers: Int
    /// The layers in the run.
    public var layerCount: Int
    /// Options whose predicted loss was negative and was raised to zero.
    public var negativeLossesClamped: Int
    /// Whether the chosen score (or solver) is built on the Hessian estimate.
    public var scoreUsesHessian: Bool
    /// The runtime the problem's formats and bytes are for (PLAN.json's `target`): `--target` when given, else
    /// the run's recorded target; `any` for PROBLEM.json.
    public var target: String
  }

  /// The kind of an input file, from its first bytes.
  public enum Kind: Equatable {
    case hdf5
    case json
  }

  /// Recognises `path` by content.
  /// - Throws: `FileCheckError` when it is missing or not a file; `InputError` when it is neither HDF5 nor JSON.
  public static func kind(of path: String, option: String = "INPUT") throws -> Kind {
    try FileChecks.checkInput(option: option, path: path)
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw FileCheckError(.missingInput, option: option, path: path, "cannot be read")
    }
    defer { try? handle.close() }
    let head = [UInt8]((try? handle.read(upToCount: 2056)) ?? Data())
    for offset in [0, 512, 1024, 2048] where head.count >= offset + 8 {
      if Array(head[offset..<(offset + 8)]) == hdf5Signature { return .hdf5 }
    }
    let text = head.drop { [0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }
    if let first = text.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") { return .json }
    throw InputError(
      message: "\(option) '\(path)': neither an HDF5 run file (from bitplan measure) nor a JSON problem file "
        + "(Documentation/ProblemFormat.md)")
  }

  /// The problem in `path`, scored by `score` (nil: `fisher_diag` for a run, `error` for PROBLEM.json).
  /// Format details (nominal bits, group size, symmetry) are filled from the format grammar when absent; negative
  /// predicted losses are raised to zero (a loss increase cannot be negative; a negative value is noise).
  /// - Parameters:
  ///   - allowNoisyScores: accept a score (or `waterfill`) built on Hessian traces that are too noisy to rank layers.
  ///   - usesTraceSensitivity: the solver ranks layers by the trace (`waterfill`).
  ///   - target: keep, per layer of a run, only the candidates this runtime stores for the layer's shape, with
  ///     bytes recomputed by its byte model (`Target.canStore`, `Target.storedBytes`); `nil` keeps the run's own
  ///     candidates and bytes (those of the target it was measured for).
  /// - Throws: `SensitivityError` for a bad run file, `AllocationError` for a bad problem file (with line and column),
  ///   a refused noisy score (`.noisyScore`) or a layer the target can store none of the run's candidates for
  ///   (`.noCandidates`), `InputError` for a file of another kind or `--target` with a PROBLEM.json (it has no
  ///   shapes), `FileCheckError` for a missing one.
  public static func load(
    from path: String, score: String?, allowNoisyScores: Bool = false, usesTraceSensitivity: Bool = false,
    target: Target? = nil
  ) throws -> Loaded {
    var problem: AllocationProblem
    var noisy = 0
    var layerCount = 0
    var usesHessian = false
    var planTarget = target?.rawValue ?? Target.any.rawValue
    switch try kind(of: path) {
    case .hdf5:
      let run = try RunStore.read(path)
      let chosen = score ?? defaultRunScore
      layerCount = run.layers.count
      noisy = run.noisyTraceLayers.count
      usesHessian = usesTraceSensitivity || (LossProxy(rawValue: chosen)?.usesHessianEstimate ?? false)
      if noisy > 0 && usesHessian && !allowNoisyScores {
        let what = usesTraceSensitivity ? "the waterfill solver ranks layers by" : "score '\(chosen)' is built on"
        throw AllocationError(
          .noisyScore,
          "\(what) Hessian traces, and \(noisy) of \(layerCount) layers have a trace that is negative or within two "
            + "standard errors of zero; measure with more --probes, choose another --score (fisher_diag, "
            + "output_error), or pass --allow-noisy-scores")
      }
      var columns = try naming(path) { try run.problemColumns(score: chosen) }
      if let target {
        columns = try restrict(columns, of: run, to: target, path: path)
      } else {
        guard Target(rawValue: run.provenance.target) != nil else {
          throw AllocationError(
            .badProblemFile,
            "'\(path)': the run's target '\(PlanDocument.excerpt(run.provenance.target))' is not a runtime this build knows "
              + "(\(Target.names))")
        }
        planTarget = run.provenance.target
      }
      let layers = columns.map { column in
        AllocationProblem.Layer(
          name: column.name, parameterCount: column.parameterCount,
          options: column.formats.indices.map {
            AllocationProblem.Option(
              format: column.formats[$0], bytes: column.bytes[$0], loss: column.loss[$0],
              quantizer: column.quantizers.indices.contains($0) ? column.quantizers[$0] : nil)
          },
          sensitivity: column.hessianTracePerWeight, variance: column.variance)
      }
      problem = AllocationProblem(
        layers: layers, score: chosen, model: nil, modelSHA256: run.provenance.modelSHA256)
      // A run whose checksum matches can still be crafted: its layer and candidate names are checked here, where
      // the error can name the file (later checks of the problem cannot).
      do { try problem.validate() } catch {
        throw AllocationError(error.code, "'\(path)': \(error.message)")
      }
      if QuantizerChoice(run.provenance.quantizer) == nil {
        throw AllocationError(
          .badProblemFile,
          "'\(path)': the run's quantizer '\(PlanDocument.excerpt(run.provenance.quantizer))' is not one this build knows "
            + "(\(QuantizerChoice.names))")
      }
      for layer in problem.layers {
        for option in layer.options {
          if let q = option.quantizer, !q.isEmpty, QuantizerMethod(rawValue: q) == nil {
            throw AllocationError(
              .badProblemFile,
              "'\(path)': layer '\(PlanDocument.excerpt(layer.name))' in \(PlanDocument.excerpt(option.format)): quantizer '\(PlanDocument.excerpt(q))' is "
                + "not one this build knows (\(QuantizerMethod.names))")
          }
        }
      }
    case .json:
      if let target {
        throw InputError(
          message: "--target \(target.rawValue) needs a run file (RUN.h5, which records each layer's shape): '\(path)' "
            + "is a PROBLEM.json, which has none; choose its candidates and bytes for the runtime when writing it")
      }
      let data: Data
      do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw InputError(message: "cannot read '\(path)': \(error.localizedDescription)")
      }
      problem = try decodeProblem(data, path: path, score: score ?? "error")
    }
    var clamped = 0
    for l in problem.layers.indices {
      for o in problem.layers[l].options.indices where problem.layers[l].options[o].loss < 0 {
        problem.layers[l].options[o].loss = 0
        clamped += 1
      }
    }
    fillFormatDetails(&problem)
    return Loaded(
      problem: problem, noisyTraceLayers: noisy, layerCount: layerCount, negativeLossesClamped: clamped,
      scoreUsesHessian: usesHessian, target: planTarget)
  }

  /// `body()`, with a `SensitivityError` that names no file given `path`.
  static func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as SensitivityError where error.path == nil {
      throw SensitivityError(error.code, error.message, path: path)
    }
  }

  /// `columns` (one per layer of `run`, in order) less the candidates `target` cannot store for the layer's shape,
  /// with bytes and bits per weight from `target.storedBytes`, and less the token embedding when `target` does not
  /// quantize it (`Target.storesTokenEmbedding`).
  /// - Throws: `AllocationError.noCandidates` naming the first layer left with none, the run's target and what
  ///   `target` stores.
  static func restrict(
    _ columns: [MeasuredRun.ProblemColumn], of run: MeasuredRun, to target: Target, path: String
  ) throws(AllocationError) -> [MeasuredRun.ProblemColumn] {
    var restricted: [MeasuredRun.ProblemColumn] = []
    for (column, layer) in zip(columns, run.layers) {
      // The token embedding's plan layer (DESIGN decision: `model.embed_tokens`) is planned only for a target that
      // quantizes it; gptqmodel and llm-compressor keep it f16 outside the plan (and outside its bits per weight),
      // as `measure --target` for them leaves it out.
      let isEmbedding = layer.name == LlamaModel<Float>.embeddingSlot
      if isEmbedding && !target.storesTokenEmbedding { continue }
      var kept = column
      kept.formats = []; kept.bytes = []; kept.loss = []; kept.bitsPerWeight = []; kept.quantizers = []
      for j in column.formats.indices {
        guard let format = QuantFormat(column.formats[j]),
          target.canStore(format, rows: layer.rows, columns: layer.columns, isEmbedding: isEmbedding)
        else { continue }
        let bytes = target.storedBytes(format, rows: layer.rows, columns: layer.columns, isEmbedding: isEmbedding)
        kept.formats.append(column.formats[j])
        kept.bytes.append(bytes)
        kept.loss.append(column.loss[j])
        if column.quantizers.indices.contains(j) { kept.quantizers.append(column.quantizers[j]) }
        kept.bitsPerWeight.append(8 * Double(bytes) / Double(max(layer.parameterCount, 1)))
      }
      guard !kept.formats.isEmpty else {
        throw AllocationError(
          .noCandidates,
          "'\(path)' was measured with --target \(run.provenance.target); --target \(target.rawValue) can store none of "
            + "its candidates (\(column.formats.joined(separator: ", "))) for '\(layer.name)' [\(layer.rows), "
            + "\(layer.columns)]: \(target.rawValue) stores \(target.summary). Measure again with --target \(target.rawValue)")
      }
      restricted.append(kept)
    }
    return restricted
  }

  /// The problem file's bytes decoded and scored; a malformed file's error names the file first.
  static func decodeProblem(_ data: Data, path: String, score: String) throws(AllocationError) -> AllocationProblem {
    let file: ProblemFile
    do throws(AllocationError) {
      file = try ProblemFile.decode(data)
    } catch {
      throw AllocationError(error.code, "\(path): \(error.message)")
    }
    let problem = try file.problem(score: score)
    // Details that contradict a format of the grammar would make a plan that every command refuses to read.
    for (l, layer) in problem.layers.enumerated() {
      for (o, option) in layer.options.enumerated() {
        guard let format = QuantFormat(option.format),
          let contradiction = PlanFile.contradiction(
            format, bits: option.bits, groupSize: option.groupSize, symmetric: option.symmetric)
        else { continue }
        throw AllocationError(.badProblemFile, "\(path): layers[\(l)].candidates[\(o)].\(contradiction)")
      }
    }
    return problem
  }

  /// The problem in `path`, scored by `score`; see `load(from:score:allowNoisyScores:usesTraceSensitivity:)`.
  public static func problem(from path: String, score: String?) throws -> AllocationProblem {
    try load(from: path, score: score, allowNoisyScores: true).problem
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

/// A file that cannot be read at all, or is of no kind this command reads.
public struct InputError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { message }
}
