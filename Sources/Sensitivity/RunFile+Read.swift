import HDF5

/// Reading `RUN.h5`: the checksum (or, for an old file without one, a read in a child process) first, then every
/// dataset's shape is checked against `/layers` and `/candidates` before use.
extension RunFile {
  static func read(_ path: String) throws(SensitivityError) -> (MeasuredRun, RunProgress?) {
    try verify(path)  // before any HDF5 call: libhdf5 may crash or hang on a damaged file
    return try mappingReadErrors(path) {
      try HDF5File.withFile(path, mode: .readOnly) { f in
        let version = try f.attribute("format_version", as: Int64.self)
        if version != Int64(RunProvenance.formatVersion) {
          throw SensitivityError(
            .badRunFile, "format_version \(version); this tool reads \(RunProvenance.formatVersion)", path: path)
        }
        let provenance = try readProvenance(f)
        let names = try f.readStrings("/layers/name").values
        let l = names.count
        let shape = try f.read("/layers/shape", as: Int64.self)
        try expect(shape.shape == [l, 2], "/layers/shape", shape.shape, path)
        try inRange(shape.values, 0...maximumDimension, "/layers/shape", path)
        let layers = names.indices.map {
          MeasuredRun.Layer(name: names[$0], rows: Int(shape.values[2 * $0]), columns: Int(shape.values[2 * $0 + 1]))
        }
        let candidateNames = try f.readStrings("/candidates/name").values
        let bpw = try vector(f, "/candidates/bits_per_weight", candidateNames.count, path)
        if let i = bpw.firstIndex(where: { !($0 > 0 && $0 <= 64) }) {
          throw SensitivityError(
            .badRunFile, "'/candidates/bits_per_weight' element \(i) is \(bpw[i]), outside (0, 64]", path: path)
        }
        let candidates = zip(candidateNames, bpw).map { MeasuredRun.Candidate(name: $0, bitsPerWeight: $1) }
        let c = candidates.count
        var run = MeasuredRun(provenance: provenance, layers: layers, candidates: candidates)
        run.weightVariance = try vector(f, "/weights/variance", l, path)
        run.weightAbsmax = try vector(f, "/weights/absmax", l, path)
        run.weightKurtosis = try vector(f, "/weights/kurtosis", l, path)
        run.hessianTrace = try vector(f, "/hessian/trace", l, path)
        run.hessianTraceStandardError = try vector(f, "/hessian/trace_stderr", l, path)
        run.topEigenvalue = try vector(f, "/hessian/top_eigenvalue", l, path)
        run.inputTrace = try vector(f, "/hessian/input_trace", l, path)
        run.fisherTrace = try vector(f, "/fisher/trace", l, path)
        run.probesUsed = try integers(f, "/hessian/probes_used", [l], path)
        if try f.exists("/hessian/input_diagonal") {
          let widths = layers.map(\.columns)
          let flat = try vector(f, "/hessian/input_diagonal", widths.reduce(0, +), path)
          if let bad = flat.first(where: { !$0.isNaN && !($0.isFinite && $0 >= 0) }) {
            throw SensitivityError(.badRunFile, "'/hessian/input_diagonal' holds \(bad), not a mean square", path: path)
          }
          var start = 0
          run.inputSquareMeans = widths.map { w in
            defer { start += w }
            let part = Array(flat[start..<(start + w)])
            return part.allSatisfy(\.isNaN) ? [] : part
          }
        }
        if try f.exists("/hessian/probe_values") {
          let p = try f.read("/hessian/probe_values", as: Double.self)
          try expect(p.shape.count == 2 && p.shape[1] == l, "/hessian/probe_values", p.shape, path)
          run.probeValues = rows(p.values, columns: l)
        }
        run.weightError = rows(try grid(f, "/error/weight", l, c, path), columns: c)
        run.outputError = rows(try grid(f, "/error/output", l, c, path), columns: c)
        let bytes = try integers(f, "/bytes", [l, c], path)
        try inRange(bytes.map { Int64($0) }, -1...maximumLayerBytes, "/bytes", path)
        if let i = bytes.firstIndex(of: 0) {
          // -1 marks a candidate the layer was not offered; a stored layer takes at least a byte
          throw SensitivityError(.badRunFile, "'/bytes' element \(i) is 0: no format stores a layer in no bytes", path: path)
        }
        run.bytes = rows(bytes, columns: c)
        let methods = try f.readStrings("/calibration/method")
        try expect(methods.shape == [l, c], "/calibration/method", methods.shape, path)
        run.calibrationMethod = rows(methods.values, columns: c)
        if try f.exists("/calibration/quantizer") {
          let quantizers = try f.readStrings("/calibration/quantizer")
          try expect(quantizers.shape == [l, c], "/calibration/quantizer", quantizers.shape, path)
          run.quantizer = rows(quantizers.values, columns: c)
        } else {
          run.quantizer = run.bytes.map { $0.map { $0 >= 0 ? "rtn" : "" } }
        }
        run.proxies = [:]
        for name in try f.members(of: "/proxies") {
          run.proxies[name] = rows(try grid(f, "/proxies/\(name)", l, c, path), columns: c)
        }
        if try f.exists("/audit") { run.audit = try readAudit(f, l, c, path) }
        if try f.exists("/measured") {
          var m = MeasuredScores(layers: l, candidates: c, tokens: 0, baselineNLL: .nan)
          m.baselineNLL = try f.attribute("baseline_nll", on: "/measured", as: Double.self)
          m.tokens = Int(try f.attribute("tokens", on: "/measured", as: Int64.self))
          try inRange([Int64(m.tokens)], 2...Int64(Int32.max), "/measured tokens", path)
          m.kld = rows(try grid(f, "/measured/kld", l, c, path), columns: c)
          m.deltaNLL = rows(try grid(f, "/measured/delta_nll", l, c, path), columns: c)
          run.measured = m
        }
        if try f.exists("/validation") { run.validation = try readValidation(f, path) }
        var progress: RunProgress?
        if try f.exists("/progress") {
          let values = try RunProgress.attributes.map { try f.attribute($0, on: "/progress", as: Int64.self) }
          // fisher_windows, the two flags, eigen_layers, layers_done: a resumed run starts from these.
          let ranges: [ClosedRange<Int64>] = [0...Int64.max >> 1, 0...1, 0...1, 0...Int64(l), 0...Int64(l)]
          for (name, (value, range)) in zip(RunProgress.attributes, zip(values, ranges)) {
            try inRange([value], range, "/progress \(name)", path)
          }
          progress = RunProgress(values: values.map { Int($0) })
        }
        return (run, progress)
      }
    }
  }

  /// `body`'s result, with its errors as `SensitivityError`s about reading `path`: HDF5 errors wrapped, others `.io`.
  static func mappingReadErrors<T>(_ path: String, _ body: () throws -> T) throws(SensitivityError) -> T {
    do {
      return try body()
    } catch let error as SensitivityError {
      throw error
    } catch let error as HDF5Error {
      throw SensitivityError.wrapping(error, path: path, reading: true)
    } catch {
      throw SensitivityError(.io, "\(error)", path: path)
    }
  }

  private static func readProvenance(_ f: HDF5File) throws -> RunProvenance {
    func int(_ name: String) throws -> Int { Int(try f.attribute(name, as: Int64.self)) }
    var p = RunProvenance(
      toolVersion: try f.stringAttribute("tool_version"), modelSHA256: try f.stringAttribute("model_sha256"),
      calibSHA256: try f.stringAttribute("calib_sha256"), tokens: try int("tokens"),
      hvpTokens: try int("hvp_tokens"), probes: try int("probes"), minimumProbes: try int("min_probes"),
      tolerance: try f.attribute("tol", as: Double.self),
      seed: UInt64(bitPattern: try f.attribute("seed", as: Int64.self)),
      candidates: try f.stringAttributeValues("candidates").values,
      keepsHessianDiagonal: try int("hessian_diagonal") != 0, eigenIterations: try int("eigen_iterations"),
      auditCount: try int("audit"), created: try f.stringAttribute("created"),
      // Added after the first files of format 1 were written; absent means "no audit text recorded".
      auditSHA256: try f.hasAttribute("audit_sha256") ? f.stringAttribute("audit_sha256") : "",
      auditTokens: try f.hasAttribute("audit_tokens") ? int("audit_tokens") : 0,
      // Added with --target; absent means the grammar's own sizes ("any").
      target: try f.hasAttribute("target") ? f.stringAttribute("target") : "any")
    // Added with `bitplan report`; absent means "not recorded".
    if try f.hasAttribute("calib_path") { p.calibrationPath = try f.stringAttribute("calib_path") }
    // Added with --quantizer; absent means round to nearest, the only quantizer before it.
    if try f.hasAttribute("quantizer") { p.quantizer = try f.stringAttribute("quantizer") }
    if try f.hasAttribute("audit_text_path") { p.auditTextPath = try f.stringAttribute("audit_text_path") }
    // Added with --audit-format and --score-kld; absent means a random audit sample and no measured scores.
    if try f.hasAttribute("audit_format") { p.auditFormat = try f.stringAttribute("audit_format") }
    if try f.hasAttribute("kld_tokens") { p.kldTokens = try int("kld_tokens") }
    return p
  }

  private static func readValidation(_ f: HDF5File, _ path: String) throws -> MeasuredRun.ValidationTable {
    var v = MeasuredRun.ValidationTable()
    v.scoringProtocol = try f.stringAttribute("protocol", on: "/validation")
    v.activations = try f.stringAttribute("activations", on: "/validation")
    v.evalSHA256 = try f.stringAttribute("eval_sha256", on: "/validation")
    v.plan = try f.stringAttribute("plan", on: "/validation")
    v.tokens = Int(try f.attribute("tokens", on: "/validation", as: Int64.self))
    v.windows = Int(try f.attribute("windows", on: "/validation", as: Int64.self))
    v.name = try f.readStrings("/validation/name").values
    let n = v.name.count
    v.label = try f.readStrings("/validation/label").values
    let bytes = try f.read("/validation/bytes", as: Int64.self).values
    try inRange(bytes, 0...maximumLayerBytes, "/validation/bytes", path)
    v.bytes = bytes.map { Int($0) }
    let columns = try ["bits_per_weight", "kld", "kld_low", "kld_high", "perplexity", "perplexity_low", "perplexity_high", "top1"]
      .map { try f.read("/validation/\($0)", as: Double.self).values }
    let names = ["label", "bytes", "bits_per_weight", "kld", "kld_low", "kld_high", "perplexity", "perplexity_low", "perplexity_high", "top1"]
    for (name, count) in zip(names, [v.label.count, v.bytes.count] + columns.map(\.count)) where count != n {
      throw SensitivityError(.badRunFile, "'/validation/\(name)' has \(count) rows, /validation/name \(n)", path: path)
    }
    (v.bitsPerWeight, v.kld, v.kldLow, v.kldHigh) = (columns[0], columns[1], columns[2], columns[3])
    (v.perplexity, v.perplexityLow, v.perplexityHigh, v.top1) = (columns[4], columns[5], columns[6], columns[7])
    return v
  }

  private static func readAudit(_ f: HDF5File, _ l: Int, _ c: Int, _ path: String) throws -> MeasuredRun.Audit {
    var a = MeasuredRun.Audit()
    a.baselineNLL = try f.attribute("baseline_nll", on: "/audit", as: Double.self)
    if try f.exists("/audit/layer") {
      let layers = try f.read("/audit/layer", as: Int64.self).values
      try inRange(layers, 0...Int64(max(l - 1, 0)), "/audit/layer", path)
      a.layer = layers.map { Int($0) }
      let n = a.layer.count
      a.candidate = try integers(f, "/audit/candidate", [n], path)
      try inRange(a.candidate.map { Int64($0) }, 0...Int64(max(c - 1, 0)), "/audit/candidate", path)
      a.deltaNLL = try vector(f, "/audit/delta_nll", n, path)
      a.deltaKLD = try vector(f, "/audit/delta_kld", n, path)
    }
    if try f.exists("/audit/score") {
      let scores = try f.readStrings("/audit/score").values
      let nll = try vector(f, "/audit/spearman_nll", scores.count, path)
      let kld = try vector(f, "/audit/spearman_kld", scores.count, path)
      if Set(scores).count != scores.count {
        throw SensitivityError(.badRunFile, "'/audit/score' names a score twice", path: path)
      }
      a.spearmanNLL = Dictionary(uniqueKeysWithValues: zip(scores, nll))
      a.spearmanKLD = Dictionary(uniqueKeysWithValues: zip(scores, kld))
    }
    return a
  }

  private static func vector(_ f: HDF5File, _ name: String, _ n: Int, _ path: String) throws -> [Double] {
    let a = try f.read(name, as: Double.self)
    try expect(a.shape == [n], name, a.shape, path)
    return a.values
  }

  private static func grid(_ f: HDF5File, _ name: String, _ l: Int, _ c: Int, _ path: String) throws -> [Double] {
    let a = try f.read(name, as: Double.self)
    try expect(a.shape == [l, c], name, a.shape, path)
    return a.values
  }

  private static func integers(_ f: HDF5File, _ name: String, _ shape: [Int], _ path: String) throws -> [Int] {
    let a = try f.read(name, as: Int64.self)
    try expect(a.shape == shape, name, a.shape, path)
    return a.values.map { Int($0) }
  }

  /// The largest weight-matrix dimension we accept (16 Mi; a damaged file can hold anything): a layer then has at
  /// most 2⁴⁸ weights, so parameter counts and bit budgets summed over layers cannot overflow.
  static let maximumDimension: Int64 = 1 << 24
  /// The largest layer size in bytes we accept (256 TiB): sums over many thousand layers cannot overflow.
  static let maximumLayerBytes: Int64 = 1 << 48

  private static func inRange(
    _ values: [Int64], _ range: ClosedRange<Int64>, _ name: String, _ path: String
  ) throws(SensitivityError) {
    if let i = values.firstIndex(where: { !range.contains($0) }) {
      throw SensitivityError(
        .badRunFile, "'\(name)' element \(i) is \(values[i]), outside \(range.lowerBound)...\(range.upperBound)",
        path: path)
    }
  }

  private static func expect(_ ok: Bool, _ name: String, _ shape: [Int], _ path: String) throws(SensitivityError) {
    if !ok {
      throw SensitivityError(.badRunFile, "'\(name)' has shape \(shape), inconsistent with /layers", path: path)
    }
  }

  private static func rows<T>(_ flat: [T], columns: Int) -> [[T]] {
    if columns == 0 { return [] }
    return stride(from: 0, to: flat.count, by: columns).map { Array(flat[$0..<$0 + columns]) }
  }
}
