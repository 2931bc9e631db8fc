/// The command lines that reproduce every number of the report, rebuilt from what the files record: the run's
/// provenance (measure), the plan's budget, solver, score and target (allocate), and the validation's settings
/// (validate). Paths a file does not record (the calibration text of a run written before `calib_path`, the model
/// when no validation names it) are placeholders, with the checksum the input must have beside them.
extension ReportData {
  /// The commands, in pipeline order, and what they cannot recover.
  public struct Commands: Sendable {
    public var measure: String
    /// `bitplan allocate … --record`; the "how to fill it" command when there is no plan.
    public var allocate: String
    /// `bitplan validate … --run`; the "how to fill it" command when there is no validation.
    public var validate: String
    public var report: String
    /// What the reader must supply (placeholders and unrecorded options).
    public var notes: [String]
  }

  /// The model path the files name, or the placeholder `MODEL`.
  var modelArgument: String {
    if let path = validation?.modelPath, !path.isEmpty { return path }
    if let path = plan?.model, !path.isEmpty { return path }
    return "MODEL"
  }

  var planArgument: String {
    if case .file(let path) = planSource { return path }
    if let path = validation?.planPath, !path.isEmpty { return path }
    return "PLAN.json"
  }

  /// The commands for `directory`, the report's output folder.
  public func commands(directory: String) -> Commands {
    let w = ReportText.shellWord
    let p = run.provenance
    var notes: [String] = []
    let calib = p.calibrationPath.isEmpty ? "CALIB.txt" : p.calibrationPath
    var measure = ["bitplan", "measure", w(modelArgument), "--calib", w(calib)]
    measure += ["--tokens", "\(p.tokens)", "--hvp-tokens", "\(p.hvpTokens)", "--probes", "\(p.probes)"]
    measure += ["--seed", "\(p.seed)", "--candidates", w(p.candidates.joined(separator: ","))]
    if p.target != "any" { measure += ["--target", w(p.target)] }
    if p.tolerance > 0 { measure += ["--tol", "\(p.tolerance)"] }
    if p.eigenIterations > 0 { measure += ["--eigen", "--eigen-iterations", "\(p.eigenIterations)"] }
    if !p.keepsHessianDiagonal { measure.append("--no-hessian-diagonal") }
    if !p.quantizer.isEmpty && p.quantizer != "rtn" { measure += ["--quantizer", w(p.quantizer)] }
    if p.kldTokens > 0 { measure += ["--score-kld", "--kld-tokens", "\(p.kldTokens)"] }
    if p.auditCount > 0 || !p.auditFormat.isEmpty {
      measure += p.auditFormat.isEmpty ? ["--audit", "\(p.auditCount)"] : ["--audit-format", w(p.auditFormat)]
      if !p.auditSHA256.isEmpty && p.auditSHA256 != p.calibSHA256 {
        measure += ["--audit-text", w(p.auditTextPath.isEmpty ? "AUDIT.txt" : p.auditTextPath)]
        if p.auditTextPath.isEmpty { notes.append("AUDIT.txt: the held-out audit text, sha256 \(p.auditSHA256)") }
      }
    }
    measure += ["-o", w(runPath)]
    if p.calibrationPath.isEmpty { notes.insert("CALIB.txt: the calibration text, sha256 \(p.calibSHA256)", at: 0) }
    if modelArgument == "MODEL" { notes.insert("MODEL: the model file, sha256 \(p.modelSHA256)", at: 0) }

    var allocate = ["bitplan", "allocate", w(runPath)]
    if let plan {
      allocate += ["--budget", "\(plan.budgetBytes)", "--solver", w(plan.solver), "--score", w(plan.score)]
      if let target = plan.target, target != p.target { allocate += ["--target", w(target)] }
      notes.append("--pin and --tie are not recorded in PLAN.json: add any the plan was made with")
    } else {
      allocate += ["--bpw", "4.5"]
    }
    allocate += ["-o", w(planArgument), "--record"]

    var validate = ["bitplan", "validate", w(modelArgument), w(planArgument)]
    if let v = validation {
      validate += ["--eval", w(v.evalText ?? "EVAL.txt"), "--tokens", "\(v.tokens)", "--windows", "\(v.windows)"]
      validate += ["--protocol", w(v.scoringProtocol), "--activations", w(v.activations)]
      let baselines = v.models.map(\.name).filter { $0 != "plan" && $0 != "plan-tuned" }
      validate += ["--baselines", baselines.isEmpty ? "none" : w(baselines.joined(separator: ","))]
      if let tuned = v.models.first(where: { $0.name == "plan-tuned" }) {
        notes.append("the plan-tuned row (\(tuned.label)): add --tune-steps N and --calib CALIB.txt (the run's calibration text)")
      }
      if let b = v.bootstrapReplicates, let s = v.bootstrapSeed { validate += ["--bootstrap", "\(b)", "--seed", "\(s)"] }
      if v.evalText == nil { notes.append("EVAL.txt: the evaluation text, sha256 \(v.evalSHA256)") }
    } else {
      validate += ["--eval", "EVAL.txt"]
    }
    validate += ["--run", w(runPath), "-o", w(validationArgument)]

    var report = ["bitplan", "report", w(runPath)]
    if case .file(let path) = planSource { report += ["--plan", w(path)] }
    if case .file(let path) = validationSource { report += ["--validation", w(path)] }
    report += ["-o", w(directory)]
    return Commands(
      measure: measure.joined(separator: " "), allocate: allocate.joined(separator: " "),
      validate: validate.joined(separator: " "), report: report.joined(separator: " "), notes: notes)
  }

  var validationArgument: String {
    if case .file(let path) = validationSource { return path }
    return "VALIDATION.json"
  }
}

extension ReportData {
  /// The runtime of the report: the run's `target`, and the plan's when it differs (one measurement with target
  /// `any` shared by several targets, each plan then restricted to its own): "`any` (measured), `llama-cpp` (plan)".
  func targetDescription(code: (String) -> String) -> String {
    let measured = run.provenance.target
    guard let planned = plan?.target, planned != measured else { return code(measured) }
    return "\(code(measured)) (measurement), \(code(planned)) (plan)"
  }
}
