import Quantization
import Sensitivity

/// The settings of `bitplan measure`, with DESIGN.md's defaults, and how they cut the calibration tokens.
///
/// Tokens (DESIGN.md, "measure windows"): the calibration tokens are `[BOS]` + the first `tokens − 1` ids of the
/// calibration text. Every statistic but the Hutchinson probes uses all of them; the probes (and power iteration)
/// use the Hessian of the mean NLL over the first `hvpTokens` of them. The Fisher gradient is averaged over
/// **calibration windows**: the calibration tokens cut into `max(1, tokens / hvpTokens)` consecutive windows of
/// `hvpTokens` tokens, the last one taking the remainder (512 / 128: four windows of 128; 500 / 128: 128, 128,
/// 244). Only the first window starts with BOS; the others start mid-text, as non-overlapping evaluation windows
/// do. Window 0 is the Hessian window whenever `tokens ≥ 2 · hvpTokens`, so the gradient the one-sided
/// Hessian-vector products difference against is computed once for both.
public struct MeasureSettings: Sendable, Equatable {
  /// Calibration tokens, BOS included (`--tokens`).
  public var tokens = 512
  /// The first calibration tokens used for Hessian-vector products, and the calibration window length
  /// (`--hvp-tokens`).
  public var hvpTokens = 128
  /// Maximum Hutchinson probes (`--probes`).
  public var probes = 64
  /// Probes taken before `tolerance` may stop the estimate: 8, or `probes` when fewer (a standard error from
  /// fewer samples is itself too noisy to stop on).
  public var minimumProbes: Int { min(8, probes) }
  /// Stop the probes when every layer's relative standard error is below this (`--tol`); 0 runs all probes.
  public var tolerance = 0.0
  /// Seed of every random stream (`--seed`).
  public var seed: UInt64 = 0
  /// Candidate formats in column order (`--candidates`); `nil` means `defaultCandidates`, less those that fit
  /// no layer of the model (with a `target` other than `any`: every format the target stores for some layer).
  public var candidates: [QuantFormat]? = nil
  /// The runtime the candidates and bytes are chosen for (`--target`): per layer only the formats it stores for the
  /// layer's shape are offered, at its byte count (`Target.canStore`, `Target.storedBytes`). `any` is the grammar
  /// with its own sizes, as before targets existed.
  public var target: Target = .any
  /// Whether to keep the Hutchinson diagonal (for the `taylor_diag` proxy); costs one Double per weight.
  public var keepsHessianDiagonal = true
  /// Power-iteration steps per layer for the top eigenvalue (`--eigen` sets `defaultEigenIterations`); 0 skips.
  public var eigenIterations = 0
  /// Single-layer quantizations whose true ΔNLL and ΔKLD are measured (`--audit N`); 0 skips the audit.
  public var auditCount = 0
  /// Audit every layer at this candidate instead of a random sample (`--audit-format F`; `auditCount` must be 0:
  /// `Measurement` sets it to the number of layers that offer F).
  public var auditFormat: QuantFormat? = nil
  /// Calibration tokens on which every (layer, candidate)'s single-layer KLD is measured (`--score-kld`,
  /// `--kld-tokens`); 0 skips the stage.
  public var kldTokens = 0
  /// `--kld-tokens` when `--score-kld` is given without it: the first calibration window (`hvpTokens`' default),
  /// so that the stage costs about one 128-token forward pass from the changed block upward per pair (see
  /// `EngineSensitivityModel+Scores.swift` and RunFormat.md for the measured time).
  public static let defaultKLDTokens = 128
  /// Measure the token embedding as one more layer, `model.embed_tokens` (set by `--target llama-cpp`, whose
  /// GGUF stores `token_embd.weight` in any type); see `EngineSensitivityModel`.
  public var includesTokenEmbedding = false
  /// The quantizer of every candidate (`--quantizer`): round to nearest (the default), GPTQ, AWQ, or the best of
  /// them per (layer, candidate) by output error; see `EngineSensitivityModel.quantize(layer:candidate:)`.
  public var quantizer: QuantizerChoice = .method(.rtn)

  /// Power-iteration steps per layer when `--eigen` is given without a count. Each step is one Hessian-vector
  /// product (a gradient pass over `hvpTokens` tokens) per layer, so this costs `layers × 20` passes.
  public static let defaultEigenIterations = 20

  /// The default candidate set: f16, per-channel int8, int6-g64, int5-g64, int4-g64, int4-g64-asym, int4-g32,
  /// int4-g32-asym, int3-g64, int3-g64-asym, int3-g32-asym and int2-g64, twelve formats from 16 down to 2.25 bits
  /// per weight, chosen by measurement (analysis.md, "Uniform formats" and the wider set's plan).
  ///
  /// Group 64 is the common size that divides the widths of SmolLM2's layers (576 and 1536; group 128 fits only
  /// `down_proj`), and 4- and 3-bit also get group 32, the size of llama.cpp's 4-bit blocks. Validated on held-out
  /// text, every one of these formats is on the uniform frontier of KLD against bytes (none is beaten by a cheaper
  /// one), and the 4.5-bit plan chose each of them at least once; that plan's KLD was 0.1728 [0.1688, 0.1768]
  /// against 0.1873 [0.1810, 0.1924] from the former seven symmetric formats, for ~35 s more of the per-layer
  /// stage on SmolLM2 (about 6 s per integer candidate: the MSE clip search over the whole model, then the output
  /// error). `QuantFormat.defaultCandidates` (28 formats) would take minutes. `--candidates` overrides.
  public static let defaultCandidates: [QuantFormat] = [
    "f16", "int8", "int6-g64", "int5-g64", "int4-g64", "int4-g64-asym", "int4-g32", "int4-g32-asym", "int3-g64",
    "int3-g64-asym", "int3-g32-asym", "int2-g64",
  ].map { try! QuantFormat(parsing: $0) }

  /// The defaults.
  public init() {}

  /// Checks every setting on its own and against the others.
  /// - Throws: `.badSettings` naming the flag and the allowed range.
  public func validate() throws(MeasureError) {
    if tokens < 2 { throw MeasureError(.badSettings, "--tokens must be at least 2, got \(tokens)") }
    if hvpTokens < 2 || hvpTokens > tokens {
      throw MeasureError(.badSettings, "--hvp-tokens must be in 2...\(tokens) (--tokens), got \(hvpTokens)")
    }
    if probes < 1 { throw MeasureError(.badSettings, "--probes must be at least 1, got \(probes)") }
    if !(tolerance >= 0) || !tolerance.isFinite {
      throw MeasureError(.badSettings, "--tol must be a finite number ≥ 0, got \(tolerance)")
    }
    if eigenIterations < 0 { throw MeasureError(.badSettings, "eigen iterations must be ≥ 0, got \(eigenIterations)") }
    if auditCount < 0 { throw MeasureError(.badSettings, "--audit must be ≥ 0, got \(auditCount)") }
    if auditFormat != nil && auditCount > 0 { throw MeasureError(.badSettings, "give --audit N or --audit-format F, not both") }
    if kldTokens != 0 && (kldTokens < 2 || kldTokens > tokens) {
      throw MeasureError(.badSettings, "--kld-tokens must be in 2...\(tokens) (--tokens), got \(kldTokens)")
    }
    if let candidates, candidates.isEmpty { throw MeasureError(.badCandidate, "--candidates lists no format") }
    if let candidates, let dup = Self.firstDuplicate(candidates.map(\.name)) {
      throw MeasureError(.badCandidate, "--candidates lists '\(dup)' twice")
    }
  }

  /// The candidate formats (the run's columns) for a model whose linear layers have these `[rows, columns]`
  /// shapes.
  ///
  /// - `--candidates` given: the list as is; with a `target` other than `any`, each must be stored by the target
  ///   for at least one layer.
  /// - otherwise, `target` `any`: `defaultCandidates` less those that fit no layer; another target: every format
  ///   it stores for some layer (`Target.candidates(rows:columns:)`), f16 first, then by decreasing bits.
  /// - Throws: `.badCandidate` naming the first listed format the target cannot store for any layer.
  public func candidateFormats(shapes: [(rows: Int, columns: Int)]) throws(MeasureError) -> [QuantFormat] {
    if let candidates {
      guard target != .any else { return candidates }
      for format in candidates where !shapes.contains(where: { target.canStore(format, rows: $0.rows, columns: $0.columns) }) {
        let widths = Set(shapes.map(\.columns)).sorted().map(String.init).joined(separator: ", ")
        throw MeasureError(
          .badCandidate, "--candidates lists \(format.name), which --target \(target.rawValue) cannot store for any layer "
            + "of this model (input widths \(widths)); \(target.rawValue) stores \(target.summary)")
      }
      return candidates
    }
    guard target != .any else {
      return Self.defaultCandidates.filter { f in shapes.contains { f.canQuantize(rows: $0.rows, columns: $0.columns) } }
    }
    var union: [QuantFormat] = []
    for shape in shapes {
      for format in target.candidates(rows: shape.rows, columns: shape.columns) where !union.contains(format) {
        union.append(format)
      }
    }
    // Stable: among equal nominal bits the first-seen order (the target's own order) stays.
    return union.enumerated().sorted { a, b in
      a.element.nominalBits != b.element.nominalBits ? a.element.nominalBits > b.element.nominalBits : a.offset < b.offset
    }.map(\.element)
  }

  /// The calibration windows of `tokens` tokens with windows of `windowLength` (see the type's documentation):
  /// `max(1, tokens / windowLength)` consecutive ranges covering `0..<tokens`, the last one taking the remainder.
  public static func calibrationWindows(tokens: Int, windowLength: Int) -> [Range<Int>] {
    precondition(tokens >= 2 && windowLength >= 2, "windows of \(windowLength) over \(tokens) tokens")
    let count = max(1, tokens / windowLength)
    return (0..<count).map { k in k * windowLength..<(k == count - 1 ? tokens : (k + 1) * windowLength) }
  }

  /// The provenance these settings give a run.
  /// - Parameters:
  ///   - candidates: the candidate names actually measured (after dropping defaults that fit no layer).
  ///   - auditSHA256: SHA-256 of the audit text ("" without an audit).
  ///   - auditTokens: held-out tokens the audit evaluates on (0 without an audit).
  public func provenance(
    toolVersion: String, modelSHA256: String, calibSHA256: String, candidates: [String], auditSHA256: String,
    auditTokens: Int, created: String
  ) -> RunProvenance {
    var p = RunProvenance(
      toolVersion: toolVersion, modelSHA256: modelSHA256, calibSHA256: calibSHA256, tokens: tokens,
      hvpTokens: hvpTokens, probes: probes, minimumProbes: minimumProbes, tolerance: tolerance, seed: seed,
      candidates: candidates, keepsHessianDiagonal: keepsHessianDiagonal, eigenIterations: eigenIterations,
      auditCount: auditCount, created: created, auditSHA256: auditSHA256, auditTokens: auditTokens,
      target: target.rawValue)
    p.auditFormat = auditFormat?.name ?? ""
    p.kldTokens = kldTokens
    p.quantizer = quantizer.description
    return p
  }

  private static func firstDuplicate(_ names: [String]) -> String? {
    var seen = Set<String>()
    return names.first { !seen.insert($0).inserted }
  }
}
