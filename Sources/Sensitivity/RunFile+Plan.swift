import Foundation
import HDF5
import TensorCore

/// The plan and the validation a finished run file holds (`/plan`, `/validation/document`), so that one file
/// carries the whole pipeline: `bitplan allocate RUN.h5 … --record` stores the plan, `bitplan validate … --run
/// RUN.h5` the validation (Documentation/RunFormat.md).
///
/// Both documents are stored as scalar variable-length strings holding the JSON files' bytes exactly, with the
/// SHA-256 of the plan's bytes (`plan_sha256`) on `/plan` and on `/validation`: a validation belongs to the stored
/// plan when the two agree. Every change rewrites the whole file beside it (`RUN.h5.tmp`), seals it with a fresh
/// checksum (`RunFile+Checksum.swift`) and renames it over the original, so a failure or a kill leaves the old
/// file as it was.
public struct RunPlanRecord: Sendable, Equatable {
  /// PLAN.json's bytes, exactly.
  public var document: Data
  /// One entry per planned layer, in the run's layer order: name, format, bytes, predicted loss increase.
  public var layer: [String]
  public var format: [String]
  public var bytes: [Int]
  public var predictedLoss: [Double]
  /// The score the plan minimised, its solver, the runtime it is for, and its budget.
  public var score: String
  public var solver: String
  public var target: String
  public var budgetBytes: Int

  /// SHA-256 of `document`, lowercase hex.
  public var sha256: String { SHA256.hexDigest([UInt8](document)) }

  public init(
    document: Data, layer: [String], format: [String], bytes: [Int], predictedLoss: [Double], score: String,
    solver: String, target: String, budgetBytes: Int
  ) {
    self.document = document
    self.layer = layer
    self.format = format
    self.bytes = bytes
    self.predictedLoss = predictedLoss
    self.score = score
    self.solver = solver
    self.target = target
    self.budgetBytes = budgetBytes
  }
}

/// The JSON documents a run file holds, for `bitplan report` and `bitplan run`.
public struct RunDocuments: Sendable, Equatable {
  /// `/plan/document`: the PLAN.json of the last `allocate --record`, or nil.
  public var plan: Data?
  /// `/plan` attribute `plan_sha256`.
  public var planSHA256: String?
  /// `/validation/document`: the VALIDATION.json of the last `validate --run`, or nil (none, or a run file written
  /// before documents were stored).
  public var validation: Data?
  /// `/validation` attribute `plan_sha256`: the plan that validation ran.
  public var validationPlanSHA256: String?

  /// No documents.
  public init(plan: Data? = nil, planSHA256: String? = nil, validation: Data? = nil, validationPlanSHA256: String? = nil) {
    self.plan = plan
    self.planSHA256 = planSHA256
    self.validation = validation
    self.validationPlanSHA256 = validationPlanSHA256
  }

  /// Whether the stored validation ran the stored plan.
  public var validationMatchesPlan: Bool {
    planSHA256 != nil && validationPlanSHA256 == planSHA256
  }
}

extension RunStore {
  /// The plan and validation documents of the finished run at `path` (nil where it holds none).
  /// - Throws: `.badRunFile` for a damaged, partial or malformed file, `.io`.
  public static func documents(_ path: String) throws(SensitivityError) -> RunDocuments {
    _ = try read(path)  // checksum, layout and "not partial" first
    return try RunFile.readDocuments(path)
  }

  /// The `/plan` record of the finished run at `path`, or nil.
  public static func planRecord(_ path: String) throws(SensitivityError) -> RunPlanRecord? {
    _ = try read(path)
    return try RunFile.readPlan(path)
  }

  /// Stores `plan` as `/plan` of the finished run at `path`, replacing an older one; a `/validation` whose
  /// `plan_sha256` differs from the new plan's (or that has none) is dropped, since it no longer describes the
  /// stored plan.
  /// - Throws: `.badRunFile` for a partial or malformed run, `.invalidArgument` when the record's columns disagree
  ///   or name layers the run lacks, `.io`.
  public static func recordPlan(_ plan: RunPlanRecord, to path: String) throws(SensitivityError) {
    let run = try read(path)
    try check(plan, against: run, path: path)
    let old = try RunFile.readDocuments(path)
    var kept = run
    var validation: (Data, String)?
    if run.validation != nil, let document = old.validation, old.validationPlanSHA256 == plan.sha256 {
      validation = (document, plan.sha256)
    } else {
      kept.validation = nil
    }
    try RunFile.rewrite(kept, plan: plan, validationDocument: validation, to: path)
  }

  /// Stores `table` as `/validation` of the finished run at `path` with `document` (VALIDATION.json's bytes) as
  /// `/validation/document` and `planSHA256` (of the PLAN.json validated) as its attribute, replacing an earlier
  /// validation; `/plan` is kept.
  /// - Throws: `.badRunFile` for a partial or malformed run, `.io`.
  public static func attachValidation(
    _ table: MeasuredRun.ValidationTable, document: Data, planSHA256: String, to path: String
  ) throws(SensitivityError) {
    var run = try read(path)
    let plan = try RunFile.readPlan(path)
    run.validation = table
    try RunFile.rewrite(run, plan: plan, validationDocument: (document, planSHA256), to: path)
  }

  private static func check(_ p: RunPlanRecord, against run: MeasuredRun, path: String) throws(SensitivityError) {
    let n = p.layer.count
    if n == 0 || p.format.count != n || p.bytes.count != n || p.predictedLoss.count != n {
      throw SensitivityError(
        .invalidArgument, "a plan record needs one format, byte count and loss per layer (\(n) layers)", path: path)
    }
    let names = Set(run.layers.map(\.name))
    if let unknown = p.layer.first(where: { !names.contains($0) }) {
      throw SensitivityError(.invalidArgument, "the plan names '\(unknown)', which the run did not measure", path: path)
    }
  }
}

extension RunFile {
  /// Writes `run` with `plan` and the validation document beside the file, seals it and renames it over `path`.
  static func rewrite(
    _ run: MeasuredRun, plan: RunPlanRecord?, validationDocument: (Data, String)?, to path: String
  ) throws(SensitivityError) {
    let temporary = path + ".tmp"
    try VectorCheckpoint.clearTemporary(temporary)
    try write(run, progress: nil, to: temporary)
    do {
      try HDF5File.withFile(temporary, mode: .readWrite) { f in
        if let plan {
          try f.createGroup("/plan")
          try f.write([String(decoding: plan.document, as: UTF8.self)], shape: [], to: "/plan/document")
          try f.write(plan.layer, to: "/plan/layer")
          try f.write(plan.format, to: "/plan/format")
          try f.write(plan.bytes.map { Int64($0) }, to: "/plan/bytes")
          try f.write(plan.predictedLoss, to: "/plan/predicted_loss")
          for (name, value) in [
            ("plan_sha256", plan.sha256), ("score", plan.score), ("solver", plan.solver), ("target", plan.target),
          ] {
            try f.setAttribute(name, value, on: "/plan")
          }
          try f.setAttribute("budget_bytes", Int64(plan.budgetBytes), on: "/plan")
        }
        if let (document, sha) = validationDocument, run.validation != nil {
          try f.write([String(decoding: document, as: UTF8.self)], shape: [], to: "/validation/document")
          try f.setAttribute("plan_sha256", sha, on: "/validation")
        }
      }
    } catch let error as HDF5Error {
      unlink(temporary)
      throw SensitivityError.wrapping(error, path: temporary)
    } catch {
      unlink(temporary)
      throw SensitivityError(.io, "\(error)", path: temporary)
    }
    try seal(temporary)
    try VectorCheckpoint.rename(temporary, to: path)
  }

  /// `/plan/document` and `/validation/document` with their `plan_sha256` attributes (after `read` checked the file).
  static func readDocuments(_ path: String) throws(SensitivityError) -> RunDocuments {
    try mappingReadErrors(path) {
      try HDF5File.withFile(path, mode: .readOnly) { f in
        var d = RunDocuments()
        if try f.exists("/plan/document") {
          d.plan = try scalarString(f, "/plan/document", path)
          d.planSHA256 = try f.stringAttribute("plan_sha256", on: "/plan")
        }
        if try f.exists("/validation/document") {
          d.validation = try scalarString(f, "/validation/document", path)
          d.validationPlanSHA256 = try f.stringAttribute("plan_sha256", on: "/validation")
        }
        return d
      }
    }
  }

  /// The whole `/plan` group, or nil when the file has none.
  static func readPlan(_ path: String) throws(SensitivityError) -> RunPlanRecord? {
    try mappingReadErrors(path) {
      try HDF5File.withFile(path, mode: .readOnly) { f -> RunPlanRecord? in
        guard try f.exists("/plan") else { return nil }
        let layer = try f.readStrings("/plan/layer").values
        let format = try f.readStrings("/plan/format").values
        let bytes = try f.read("/plan/bytes", as: Int64.self).values
        let loss = try f.read("/plan/predicted_loss", as: Double.self).values
        for (name, count) in [("format", format.count), ("bytes", bytes.count), ("predicted_loss", loss.count)]
        where count != layer.count {
          throw SensitivityError(.badRunFile, "'/plan/\(name)' has \(count) rows, /plan/layer \(layer.count)", path: path)
        }
        if let bad = bytes.first(where: { $0 < 0 || $0 > maximumLayerBytes }) {
          throw SensitivityError(.badRunFile, "'/plan/bytes' holds \(bad)", path: path)
        }
        let record = RunPlanRecord(
          document: try scalarString(f, "/plan/document", path), layer: layer, format: format,
          bytes: bytes.map { Int($0) }, predictedLoss: loss, score: try f.stringAttribute("score", on: "/plan"),
          solver: try f.stringAttribute("solver", on: "/plan"), target: try f.stringAttribute("target", on: "/plan"),
          budgetBytes: Int(try f.attribute("budget_bytes", on: "/plan", as: Int64.self)))
        if record.sha256 != (try f.stringAttribute("plan_sha256", on: "/plan")) {
          throw SensitivityError(.badRunFile, "'/plan/document' does not have the SHA-256 in plan_sha256", path: path)
        }
        return record
      }
    }
  }

  private static func scalarString(_ f: HDF5File, _ name: String, _ path: String) throws -> Data {
    let a = try f.readStrings(name)
    guard a.shape.isEmpty, let value = a.values.first, a.values.count == 1 else {
      throw SensitivityError(.badRunFile, "'\(name)' has shape \(a.shape); a scalar string is expected", path: path)
    }
    return Data(value.utf8)
  }
}
