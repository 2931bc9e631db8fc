import Foundation
import HDF5

/// How far a partial run got; stored as attributes of `/progress` in `RUN.h5.partial` only. Probes done and audit
/// entries done are the lengths of `MeasuredRun.probeValues` and `MeasuredRun.audit`.
public struct RunProgress: Sendable, Equatable {
  /// Calibration windows whose gradient is in the gradient checkpoint.
  public internal(set) var fisherWindows = 0
  /// Whether `/fisher/trace` is final.
  public internal(set) var fisherDone = false
  /// Whether the Hutchinson stopping rule was met and `/hessian/trace` is final.
  public internal(set) var hessianDone = false
  /// Layers whose top eigenvalue is stored.
  public internal(set) var eigenLayers = 0
  /// Layers whose statistics, errors, bytes and proxies are stored.
  public internal(set) var layersDone = 0

  static let attributes = ["fisher_windows", "fisher_done", "hessian_done", "eigen_layers", "layers_done"]

  var values: [Int] {
    [fisherWindows, fisherDone ? 1 : 0, hessianDone ? 1 : 0, eigenLayers, layersDone]
  }

  init() {}

  init(values v: [Int]) {
    (fisherWindows, fisherDone, hessianDone, eigenLayers, layersDone) = (v[0], v[1] != 0, v[2] != 0, v[3], v[4])
  }
}

/// Writes a `MeasuredRun` (and, for a partial run, its progress) as `RUN.h5`, and reads it back, in the layout of
/// `Documentation/RunFormat.md`. Each call writes a whole file, then seals it with a checksum that `read` checks
/// before libhdf5 sees the file (`RunFile+Checksum.swift`); `RunStore` makes that atomic by renaming.
enum RunFile {
  static func write(_ run: MeasuredRun, progress: RunProgress?, to path: String) throws(SensitivityError) {
    do {
      try HDF5File.withFile(path, mode: .create, userBlockSize: userBlockSize) { f in
        try writeProvenance(run.provenance, f)
        let (l, c) = (run.layers.count, run.candidates.count)
        try f.write(run.layers.map(\.name), to: "/layers/name")
        try f.write(run.layers.map { Int64($0.parameterCount) }, to: "/layers/params")
        try f.write(run.layers.flatMap { [Int64($0.rows), Int64($0.columns)] }, shape: [l, 2], to: "/layers/shape")
        try f.write(run.candidates.map(\.name), to: "/candidates/name")
        try f.write(run.candidates.map(\.bitsPerWeight), to: "/candidates/bits_per_weight")
        for (name, values) in perLayer(run) { try f.write(values, to: name) }
        try f.write(run.probesUsed.map { Int64($0) }, to: "/hessian/probes_used")
        if let diagonal = try inputDiagonal(run) { try f.write(diagonal, to: "/hessian/input_diagonal") }
        if !run.probeValues.isEmpty {
          try f.write(run.probeValues.flatMap { $0 }, shape: [run.probeValues.count, l], to: "/hessian/probe_values")
        }
        try f.write(run.weightError.flatMap { $0 }, shape: [l, c], to: "/error/weight")
        try f.write(run.outputError.flatMap { $0 }, shape: [l, c], to: "/error/output")
        try f.write(run.bytes.flatMap { $0 }.map { Int64($0) }, shape: [l, c], to: "/bytes")
        try f.write(run.calibrationMethod.flatMap { $0 }, shape: [l, c], to: "/calibration/method")
        try f.write(run.quantizer.flatMap { $0 }, shape: [l, c], to: "/calibration/quantizer")
        for name in run.proxies.keys.sorted() {
          try f.write(run.proxies[name]!.flatMap { $0 }, shape: [l, c], to: "/proxies/\(name)")
        }
        if let audit = run.audit { try writeAudit(audit, f) }
        if let measured = run.measured { try writeMeasured(measured, f, l, c) }
        if let validation = run.validation { try writeValidation(validation, f) }
        if let progress {
          try f.createGroup("/progress")
          for (name, value) in zip(RunProgress.attributes, progress.values) {
            try f.setAttribute(name, Int64(value), on: "/progress")
          }
        }
      }
    } catch let error as HDF5Error {
      unlink(path)  // a temporary (RunStore renames it into place): nothing half-written stays behind
      throw SensitivityError.wrapping(error, path: path)
    } catch {
      unlink(path)
      throw SensitivityError(.io, "\(error)", path: path)
    }
    do { try seal(path) } catch {
      unlink(path)
      throw error
    }
  }

  /// `/hessian/input_diagonal`: every layer's `inputSquareMeans` concatenated in layer order (`columns` values each,
  /// NaN for a layer without them), or nil when no layer has them.
  /// - Throws: `.invalidArgument` for a layer whose vector is neither empty nor `columns` long.
  static func inputDiagonal(_ run: MeasuredRun) throws(SensitivityError) -> [Double]? {
    guard run.inputSquareMeans.contains(where: { !$0.isEmpty }) else { return nil }
    var flat: [Double] = []
    for (layer, values) in zip(run.layers, run.inputSquareMeans) {
      if values.isEmpty {
        flat += [Double](repeating: .nan, count: layer.columns)
      } else if values.count == layer.columns {
        flat += values
      } else {
        throw SensitivityError(
          .invalidArgument, "'\(layer.name)': \(values.count) input square means for \(layer.columns) columns")
      }
    }
    return flat
  }

  /// The datasets with one `Double` per layer, by path.
  static func perLayer(_ run: MeasuredRun) -> [(String, [Double])] {
    [
      ("/weights/variance", run.weightVariance), ("/weights/absmax", run.weightAbsmax),
      ("/weights/kurtosis", run.weightKurtosis), ("/hessian/trace", run.hessianTrace),
      ("/hessian/trace_stderr", run.hessianTraceStandardError), ("/hessian/top_eigenvalue", run.topEigenvalue),
      ("/hessian/input_trace", run.inputTrace), ("/fisher/trace", run.fisherTrace),
    ]
  }

  private static func writeProvenance(_ p: RunProvenance, _ f: HDF5File) throws {
    try f.setAttribute("format_version", Int64(RunProvenance.formatVersion))
    try f.setAttribute("tool_version", p.toolVersion)
    try f.setAttribute("model_sha256", p.modelSHA256)
    try f.setAttribute("calib_sha256", p.calibSHA256)
    try f.setAttribute("tokens", Int64(p.tokens))
    try f.setAttribute("hvp_tokens", Int64(p.hvpTokens))
    try f.setAttribute("probes", Int64(p.probes))
    try f.setAttribute("min_probes", Int64(p.minimumProbes))
    try f.setAttribute("tol", p.tolerance)
    try f.setAttribute("seed", Int64(bitPattern: p.seed))
    try f.setAttribute("candidates", p.candidates)
    try f.setAttribute("hessian_diagonal", Int64(p.keepsHessianDiagonal ? 1 : 0))
    try f.setAttribute("eigen_iterations", Int64(p.eigenIterations))
    try f.setAttribute("audit", Int64(p.auditCount))
    try f.setAttribute("created", p.created)
    try f.setAttribute("audit_sha256", p.auditSHA256)
    try f.setAttribute("audit_tokens", Int64(p.auditTokens))
    try f.setAttribute("target", p.target)
    try f.setAttribute("calib_path", p.calibrationPath)
    try f.setAttribute("audit_text_path", p.auditTextPath)
    try f.setAttribute("audit_format", p.auditFormat)
    try f.setAttribute("kld_tokens", Int64(p.kldTokens))
    try f.setAttribute("quantizer", p.quantizer)
  }

  private static func writeValidation(_ v: MeasuredRun.ValidationTable, _ f: HDF5File) throws {
    try f.createGroup("/validation")
    for (name, value) in [("protocol", v.scoringProtocol), ("activations", v.activations), ("eval_sha256", v.evalSHA256), ("plan", v.plan)] {
      try f.setAttribute(name, value, on: "/validation")
    }
    try f.setAttribute("tokens", Int64(v.tokens), on: "/validation")
    try f.setAttribute("windows", Int64(v.windows), on: "/validation")
    try f.write(v.name, to: "/validation/name")
    try f.write(v.label, to: "/validation/label")
    try f.write(v.bytes.map { Int64($0) }, to: "/validation/bytes")
    for (name, values) in [
      ("bits_per_weight", v.bitsPerWeight), ("kld", v.kld), ("kld_low", v.kldLow), ("kld_high", v.kldHigh),
      ("perplexity", v.perplexity), ("perplexity_low", v.perplexityLow), ("perplexity_high", v.perplexityHigh),
      ("top1", v.top1),
    ] {
      try f.write(values, to: "/validation/\(name)")
    }
  }

  private static func writeMeasured(_ m: MeasuredScores, _ f: HDF5File, _ l: Int, _ c: Int) throws {
    try f.createGroup("/measured")
    try f.setAttribute("baseline_nll", m.baselineNLL, on: "/measured")
    try f.setAttribute("tokens", Int64(m.tokens), on: "/measured")
    try f.write(m.kld.flatMap { $0 }, shape: [l, c], to: "/measured/kld")
    try f.write(m.deltaNLL.flatMap { $0 }, shape: [l, c], to: "/measured/delta_nll")
  }

  private static func writeAudit(_ a: MeasuredRun.Audit, _ f: HDF5File) throws {
    try f.createGroup("/audit")
    try f.setAttribute("baseline_nll", a.baselineNLL, on: "/audit")
    if !a.layer.isEmpty {
      try f.write(a.layer.map { Int64($0) }, to: "/audit/layer")
      try f.write(a.candidate.map { Int64($0) }, to: "/audit/candidate")
      try f.write(a.deltaNLL, to: "/audit/delta_nll")
      try f.write(a.deltaKLD, to: "/audit/delta_kld")
    }
    let scores = a.spearmanNLL.keys.sorted()
    if !scores.isEmpty {
      try f.write(scores, to: "/audit/score")
      try f.write(scores.map { a.spearmanNLL[$0]! }, to: "/audit/spearman_nll")
      try f.write(scores.map { a.spearmanKLD[$0] ?? .nan }, to: "/audit/spearman_kld")
    }
  }
}
