import Allocation
import Quantization
import Sensitivity
import Validation

/// The predicted loss of each validated model under the plan's score, so that the plan and its baselines can be
/// placed on the Pareto chart. VALIDATION.json records a baseline's label, bytes and format counts but not its
/// assignment; the assignment is rebuilt with the same rule (`Baselines.make`, as `bitplan validate` calls it) and
/// used only when it reproduces the recorded label and bytes exactly.
extension ReportData {
  mutating func attachPredictedLosses(_ summary: inout ValidationSummary, plan: PlanDocument) {
    guard let columns = try? run.problemColumns(score: plan.score) else { return }
    let byName = Dictionary(uniqueKeysWithValues: columns.map { ($0.name, $0) })
    let planned = plannedLayers
    let shapes = planned.map { LayerShape(name: $0.name, rows: $0.rows, columns: $0.columns) }
    // (index into `planned`, format) → the run's unclamped score, as validate ranks baselines by it.
    let table: [[String: Double]] = planned.map { l in
      guard let c = byName[l.name] else { return [:] }
      return Dictionary(zip(c.formats, c.loss), uniquingKeysWith: { a, _ in a })
    }
    let lookup: (Int, QuantFormat) -> Double? = { i, f in table[i][f.name] }
    var planFormats: [String: QuantFormat] = [:]
    for l in planned {
      guard let name = l.planned?.format, let f = QuantFormat(name) else { return }
      planFormats[l.name] = f
    }
    var candidates = run.candidates.compactMap { QuantFormat($0.name) }
    for f in Set(planFormats.values).sorted(by: { $0.name < $1.name }) where !candidates.contains(f) { candidates.append(f) }
    // Sized in the plan's target's bytes, as validate sizes them (`ByteModel.target`).
    let byteModel = ByteModel.target(plan.target.flatMap { Target(name: $0) } ?? .any)
    if byteModel.name != Target.any.rawValue {
      guard shapes.allSatisfy({ l in planFormats[l.name].map { byteModel.canStore($0, l) } ?? true }) else { return }
    }
    let budget = Assignment(formats: planFormats, layers: shapes, byteModel: byteModel).totalBytes
    /// Σ over planned layers of the score, negatives raised to zero as the allocator does; nil if one is missing.
    func predicted(_ formats: [String: QuantFormat]) -> Double? {
      var sum = 0.0
      for (i, l) in planned.enumerated() {
        guard let f = formats[l.name], let loss = table[i][f.name], loss.isFinite else { return nil }
        sum += max(loss, 0)
      }
      return sum
    }
    for m in summary.models.indices {
      let model = summary.models[m]
      if model.name == "plan" {
        summary.models[m].predictedLoss = plan.predictedLossDelta
        continue
      }
      guard let kind = Baselines.Kind(rawValue: model.name) else { continue }
      let tiedChoices = shapes.contains { $0.name == "model.embed_tokens" } ? [false, true] : [false]
      for tied in tiedChoices {
        guard
          case .success(let b) = Baselines.make(
            kind, layers: shapes, candidates: candidates, budgetBytes: budget, predictedLoss: lookup, tiedEmbedding: tied,
            byteModel: byteModel),
          b.label == model.label, b.assignment.totalBytes == model.bytes
        else { continue }
        summary.models[m].predictedLoss = predicted(b.assignment.formats)
        break
      }
    }
  }
}
