import Foundation

/// Everything that determines a measurement's numbers: the inputs' checksums and every setting.
///
/// Stored as root attributes of `RUN.h5`. A partial run resumes only when its provenance equals the new command's
/// in every field but `created`; otherwise the numbers would mix two different measurements.
public struct RunProvenance: Sendable, Codable, Equatable {
  /// Version of the `RUN.h5` layout this code writes (`format_version`).
  public static let formatVersion = 1

  /// Version of the tool that made the run (`tool_version`).
  public var toolVersion: String
  /// SHA-256 of the model file(s), lower-case hex (`model_sha256`).
  public var modelSHA256: String
  /// SHA-256 of the calibration text file, lower-case hex (`calib_sha256`).
  public var calibSHA256: String
  /// Calibration tokens used for every statistic but the Hutchinson probes (`tokens`, `--tokens`).
  public var tokens: Int
  /// The first tokens used for Hessian-vector products (`hvp_tokens`, `--hvp-tokens`).
  public var hvpTokens: Int
  /// Maximum Hutchinson probes (`probes`, `--probes`).
  public var probes: Int
  /// Minimum Hutchinson probes before the tolerance may stop the estimate (`min_probes`).
  public var minimumProbes: Int
  /// Relative standard error at which the trace estimate stops (`tol`, `--tol`); 0 runs all probes.
  public var tolerance: Double
  /// Seed of every random stream (`seed`; stored as the int64 with the same bits).
  public var seed: UInt64
  /// Candidate format names, in column order (`candidates`).
  public var candidates: [String]
  /// Whether the Hutchinson diagonal (and so the `taylor_diag` proxy) is measured (`hessian_diagonal`).
  public var keepsHessianDiagonal: Bool
  /// Power-iteration steps per layer for `/hessian/top_eigenvalue`; 0 skips it (`eigen_iterations`).
  public var eigenIterations: Int
  /// Single-layer quantizations whose true ΔNLL/ΔKLD the audit measures; 0 skips it (`audit`).
  public var auditCount: Int
  /// When the run was started, ISO 8601 UTC (`created`); kept when the run resumes, ignored when comparing.
  public var created: String
  /// SHA-256 of the held-out text the audit evaluates on, lower-case hex (`audit_sha256`); "" without an audit.
  public var auditSHA256: String
  /// Held-out tokens the audit evaluates on, BOS included (`audit_tokens`); 0 without an audit.
  public var auditTokens: Int
  /// The runtime the candidates and bytes were chosen for (`target`, `--target`): `any`, `llama-cpp`, `mlx`,
  /// `gptqmodel` or `llm-compressor` (Quantization's `Target` raw values; kept as a string because this module does
  /// not import Quantization). Files written before targets existed read as `any`.
  public var target: String
  /// The calibration text's path as given to `measure` (`calib_path`), so that reports can print the command again;
  /// informational only (the text is identified by `calibSHA256`), never compared. "" when not recorded.
  public var calibrationPath: String = ""
  /// The audit text's path as given (`audit_text_path`); "" without `--audit-text` or when not recorded.
  public var auditTextPath: String = ""
  /// The format every layer is audited at (`audit_format`, `--audit-format F`): the audit is then every layer that
  /// offers F, in layer order, instead of a random sample of `auditCount` pairs; "" for the random sample.
  public var auditFormat: String = ""
  /// Leading calibration tokens on which every (layer, candidate)'s single-layer KLD and ΔNLL are measured
  /// (`kld_tokens`, `--score-kld`, `/measured`); 0 when they are not.
  public var kldTokens: Int = 0
  /// The quantizer asked for (`quantizer`, `--quantizer`): `rtn`, `gptq`, `awq`, `imatrix` or `best` (each candidate by every
  /// quantizer that applies, the least output error kept; `/calibration/quantizer` says which won). Compared on
  /// resume like every setting. Files written before quantizers existed read as `rtn`.
  public var quantizer: String = "rtn"

  /// Provenance with every field given; see the properties.
  public init(
    toolVersion: String, modelSHA256: String, calibSHA256: String, tokens: Int, hvpTokens: Int, probes: Int,
    minimumProbes: Int, tolerance: Double, seed: UInt64, candidates: [String], keepsHessianDiagonal: Bool,
    eigenIterations: Int, auditCount: Int, created: String, auditSHA256: String = "", auditTokens: Int = 0,
    target: String = "any"
  ) {
    self.toolVersion = toolVersion
    self.modelSHA256 = modelSHA256
    self.calibSHA256 = calibSHA256
    self.tokens = tokens
    self.hvpTokens = hvpTokens
    self.probes = probes
    self.minimumProbes = minimumProbes
    self.tolerance = tolerance
    self.seed = seed
    self.candidates = candidates
    self.keepsHessianDiagonal = keepsHessianDiagonal
    self.eigenIterations = eigenIterations
    self.auditCount = auditCount
    self.created = created
    self.auditSHA256 = auditSHA256
    self.auditTokens = auditTokens
    self.target = target
  }

  /// `date` as ISO 8601 UTC with seconds (`2026-11-24T08:37:09Z`), the form of `created`.
  public static func timestamp(_ date: Date = Date()) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: date)
  }

  /// The Hutchinson stopping rule these settings describe.
  public var hutchinsonSettings: HutchinsonTrace.Settings {
    .init(
      relativeTolerance: tolerance, minimumProbes: minimumProbes, maximumProbes: probes,
      keepsDiagonal: keepsHessianDiagonal)
  }

  /// Names of the fields in which `self` and `other` differ, `created` excepted; empty when a run may resume.
  public func differences(from other: RunProvenance) -> [String] {
    var d: [String] = []
    if toolVersion != other.toolVersion { d.append("tool_version \(other.toolVersion) → \(toolVersion)") }
    if modelSHA256 != other.modelSHA256 { d.append("model_sha256") }
    if calibSHA256 != other.calibSHA256 { d.append("calib_sha256") }
    if tokens != other.tokens { d.append("tokens \(other.tokens) → \(tokens)") }
    if hvpTokens != other.hvpTokens { d.append("hvp_tokens \(other.hvpTokens) → \(hvpTokens)") }
    if probes != other.probes { d.append("probes \(other.probes) → \(probes)") }
    if minimumProbes != other.minimumProbes { d.append("min_probes \(other.minimumProbes) → \(minimumProbes)") }
    if tolerance.bitPattern != other.tolerance.bitPattern { d.append("tol \(other.tolerance) → \(tolerance)") }
    if seed != other.seed { d.append("seed \(other.seed) → \(seed)") }
    if candidates != other.candidates { d.append("candidates") }
    if keepsHessianDiagonal != other.keepsHessianDiagonal { d.append("hessian_diagonal") }
    if eigenIterations != other.eigenIterations { d.append("eigen_iterations") }
    if auditCount != other.auditCount { d.append("audit \(other.auditCount) → \(auditCount)") }
    if auditSHA256 != other.auditSHA256 { d.append("audit_sha256") }
    if auditTokens != other.auditTokens { d.append("audit_tokens \(other.auditTokens) → \(auditTokens)") }
    if target != other.target { d.append("target \(other.target) → \(target)") }
    if auditFormat != other.auditFormat { d.append("audit_format '\(other.auditFormat)' → '\(auditFormat)'") }
    if kldTokens != other.kldTokens { d.append("kld_tokens \(other.kldTokens) → \(kldTokens)") }
    return d
  }
}
