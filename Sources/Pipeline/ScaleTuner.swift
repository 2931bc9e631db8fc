import Engine
import Foundation
import Quantization
import Validation

/// PEQA/L4Q-style tuning of a plan's per-group scales on the calibration loss (issue 15 point 4).
///
/// The model's planned layers are replaced by their dequantized packed weights (for an AWQ layer, whose packed
/// tensor holds `W·diag(s_in)`, by `dequant(Q)·diag(s_in)⁻¹`, the weight its packed operator computes with). Then,
/// for `steps` steps, one window of the calibration tokens runs forward and backward (`LlamaModel.gradients`), the
/// gradient with respect to each tuned weight goes to its group scales (`ScaleTuning.Groups.gradient`; for an AWQ
/// layer first divided by `s_in` column by column), and Adam moves the log-magnitude of every scale:
/// `s_g = sign_g·exp(θ_g)`, so a scale keeps its sign and never reaches zero (a zero scale, an all-zero group,
/// stays zero). The forward uses the scales rounded to f16, as they will be stored; the gradient passes straight
/// through the rounding (the latent θ accumulates steps smaller than an f16 ulp). Codes and zero points never move.
///
/// The loss (`Options.loss`) is by default the mean KL divergence from the unquantized model's next-token
/// distributions (`LlamaModel.distillationGradients`): what validation's held-out KLD measures. The mean NLL of the
/// calibration text (`.nll`) is the alternative.
///
/// Windows: `[BOS]` + consecutive slices of `windowTokens − 1` calibration tokens (the calibration tokens'
/// own leading BOS dropped first), a trailing partial slice dropped when a whole one exists; step `k` takes window
/// `k mod count`, so nothing is random. The calibration loss is the mean over all windows of their loss, evaluated
/// with the same windows before the first step and after the last.
///
/// Layers whose format is not tuned (`ScaleTuning.supports`: GGML blocks, nf4, ternary, affine, float) still run
/// dequantized, so the loss is the quantized model's, but keep their bytes.
public enum ScaleTuner {
  /// Steps, step size and window length.
  public struct Options: Sendable, Equatable {
    /// Adam steps (0: nothing is tuned; the losses before and after are then equal).
    public var steps: Int
    /// Adam's step size on the log-scales (a relative change of the scales per step).
    public var learningRate: Double
    /// Tokens per window, BOS included.
    public var windowTokens: Int
    /// What the steps descend and the losses before and after measure.
    public var loss: Loss
    /// Adam's moment decay rates.
    public var beta1 = 0.9, beta2 = 0.999
    /// The default step size, chosen by measurement (Sources/Pipeline/README.md).
    public static let defaultLearningRate = 1e-3

    public init(steps: Int, learningRate: Double = defaultLearningRate, windowTokens: Int = 128, loss: Loss = .kld) {
      self.steps = steps
      self.learningRate = learningRate
      self.windowTokens = windowTokens
      self.loss = loss
    }
  }

  /// The calibration loss.
  public enum Loss: String, Sendable, Equatable, CaseIterable {
    /// Mean KL(unquantized model ‖ quantized model) of the next-token distributions (distillation; the teacher's
    /// probabilities of every window are computed once, from `model`'s weights before they are replaced).
    case kld
    /// Mean next-token NLL of the calibration text (the quantized model fits the text itself; with a few hundred
    /// tokens it memorises them: on SmolLM2 the held-out KLD rose several-fold, see the README).
    case nll
  }

  /// A planned layer as installed: its engine weight name, its packed tensor, and the per-input-channel scales its
  /// input is divided by (AWQ; nil otherwise).
  public struct Layer: Sendable {
    public var weightName: String
    public var packed: PackedTensor
    public var inputScales: [Float]?

    public init(weightName: String, packed: PackedTensor, inputScales: [Float]?) {
      self.weightName = weightName
      self.packed = packed
      self.inputScales = inputScales
    }
  }

  /// What tuning gave.
  public struct Result: Sendable {
    /// The tuned packed tensor of every tuned layer, by weight name (same format, shape, codes and byte count).
    public var tuned: [String: PackedTensor]
    /// Calibration loss (`Options.loss`, mean over all windows) with the plan's scales and with the tuned ones.
    public var lossBefore: Double
    public var lossAfter: Double
    /// The loss of each step's window, before that step's update.
    public var stepLosses: [Double]
    /// Windows and tokens per window the steps cycled through.
    public var windows: Int
    public var windowTokens: Int
    /// Layers and groups whose scales were tuned.
    public var tunedLayers: Int
    public var tunedGroups: Int
    /// Wall-clock seconds of the whole tuning (both loss evaluations included).
    public var elapsedSeconds: Double
  }

  /// The windows of `tokens`: `[bos]` + slices of `length − 1` tokens (see the type's documentation); without a
  /// BOS, slices of `length`.
  /// - Throws: `PlanValidationError.badSettings` when the tokens give no window of at least 2 tokens.
  public static func windows(of tokens: [Int], bos: Int?, length: Int) throws(PlanValidationError) -> [[Int]] {
    let body = bos != nil && tokens.first == bos ? Array(tokens.dropFirst()) : tokens
    let prefix = bos.map { [$0] } ?? []
    let slice = max(1, length - prefix.count)
    var windows: [[Int]] = stride(from: 0, to: body.count, by: slice).map {
      prefix + body[$0..<min(body.count, $0 + slice)]
    }
    if windows.count > 1, windows.last!.count < length { windows.removeLast() }
    guard let first = windows.first, first.count >= 2 else {
      throw PlanValidationError(.badSettings, "scale tuning needs at least 2 calibration tokens per window, got \(tokens.count) tokens")
    }
    return windows
  }

  /// Tunes the scales of `layers` in `model`, which must hold dense Float weights (no operators installed): a model
  /// of its own, since its planned weights are overwritten by their quantized values and left so. Under `.kld` its
  /// weights on entry are the teacher's.
  /// - Parameters:
  ///   - tokens: the calibration tokens (`PackedQuantizer.calibrationTokens`), BOS first.
  ///   - progress: after each step, (steps done, steps, that step's window loss).
  /// - Throws: `PlanValidationError.badSettings` for bad options or too few tokens, `EngineError` from the passes
  ///   (an unknown weight name, a shape that differs), `QuantizationError.badData` for a non-finite gradient or a
  ///   scale that leaves f16's range.
  public static func tune(
    _ model: LlamaModel<Float>, layers: [Layer], tokens: [Int], bos: Int?, options: Options,
    progress: (Int, Int, Double) -> Void = { _, _, _ in }
  ) throws -> Result {
    let start = Date()
    guard options.steps >= 0, options.learningRate.isFinite, options.learningRate > 0, options.windowTokens >= 2 else {
      throw PlanValidationError(
        .badSettings,
        "scale tuning needs steps ≥ 0, a finite learning rate > 0 and windows of ≥ 2 tokens; got \(options.steps), "
          + "\(options.learningRate), \(options.windowTokens)")
    }
    let windows = try windows(of: tokens, bos: bos, length: options.windowTokens)
    // The teacher: the model's own distributions while it still holds its unquantized weights.
    let teacher = options.loss == .kld ? try windows.map { try model.probabilities(tokens: $0).storage } : []

    // Every planned layer runs dequantized; the integer ones get a tuning state.
    var states: [State] = []
    for layer in layers {
      if ScaleTuning.supports(layer.packed.format) {
        let state = try State(layer)
        try model.replaceWeight(name: layer.weightName, with: state.weights())
        states.append(state)
      } else {
        try model.replaceWeight(name: layer.weightName, with: divide(layer.packed.dequantize(), by: layer.inputScales))
      }
    }
    func calibrationLoss() throws -> Double {
      var total = 0.0
      for (w, window) in windows.enumerated() {
        total += options.loss == .kld ? try model.distillationLoss(tokens: window, teacher: teacher[w]) : try model.meanNLL(tokens: window)
      }
      return total / Double(windows.count)
    }
    let before = try calibrationLoss()
    let names = Set(states.map(\.layer.weightName))
    var losses: [Double] = []
    if !states.isEmpty {
      for step in 0..<options.steps {
        let w = step % windows.count
        let (loss, gradients) = options.loss == .kld
          ? try model.distillationGradients(tokens: windows[w], teacher: teacher[w], of: names)
          : try model.gradients(tokens: windows[w], of: names)
        for state in states {
          try state.step(weightGradient: gradients[state.layer.weightName]!, options: options, t: step + 1)
          try model.replaceWeight(name: state.layer.weightName, with: state.weights())
        }
        losses.append(loss)
        progress(step + 1, options.steps, loss)
      }
    }
    let after = options.steps > 0 && !states.isEmpty ? try calibrationLoss() : before
    model.releaseWorkspace()
    var tuned: [String: PackedTensor] = [:]
    for state in states { tuned[state.layer.weightName] = try state.groups.packed(scales: state.scales()) }
    return Result(
      tuned: tuned, lossBefore: before, lossAfter: after, stepLosses: losses, windows: windows.count,
      windowTokens: options.windowTokens, tunedLayers: states.count, tunedGroups: states.reduce(0) { $0 + $1.groups.count },
      elapsedSeconds: Date().timeIntervalSince(start))
  }

  /// `w[r, c] / s[c]` for a `[rows, s.count]` matrix; `w` itself when `s` is nil.
  static func divide(_ w: [Float], by s: [Float]?) -> [Float] {
    guard let s, !s.isEmpty else { return w }
    var out = w
    for r in 0..<(w.count / s.count) { for c in 0..<s.count { out[r * s.count + c] /= s[c] } }
    return out
  }

  /// One layer's codes, latent log-scales and Adam moments.
  final class State {
    let layer: Layer
    let groups: ScaleTuning.Groups
    /// sign(s_g) (0 for a zero scale, which stays frozen) and θ_g = log|s_g|.
    let sign: [Float]
    var theta: [Double]
    var m: [Double], v: [Double]

    init(_ layer: Layer) throws(QuantizationError) {
      self.layer = layer
      groups = try ScaleTuning.Groups(layer.packed)
      sign = groups.scales.map { $0 > 0 ? 1 : $0 < 0 ? -1 : 0 }
      theta = groups.scales.map { $0 == 0 ? 0 : log(Double(abs($0))) }
      m = Array(repeating: 0, count: groups.count)
      v = Array(repeating: 0, count: groups.count)
    }

    /// The latent scales `sign·exp(θ)` (not yet rounded to f16).
    func scales() -> [Float] { zip(sign, theta).map { $0 * Float(exp($1)) } }

    /// The weight the engine computes with: the f16-rounded scales times the codes, divided by `s_in`.
    func weights() throws -> [Float] { ScaleTuner.divide(try groups.weights(scales: scales()), by: layer.inputScales) }

    /// One Adam step on θ from ∂L/∂W of the engine's weight.
    func step(weightGradient: [Float], options: Options, t: Int) throws {
      let g = try groups.gradient(weightGradient: ScaleTuner.divide(weightGradient, by: layer.inputScales))
      let s = scales()
      let (b1, b2, lr) = (options.beta1, options.beta2, options.learningRate)
      let c1 = 1 - pow(b1, Double(t)), c2 = 1 - pow(b2, Double(t))
      for i in 0..<theta.count where sign[i] != 0 {
        let gTheta = Double(g[i]) * Double(s[i])  // ∂L/∂θ = ∂L/∂s · s
        m[i] = b1 * m[i] + (1 - b1) * gTheta
        v[i] = b2 * v[i] + (1 - b2) * gTheta * gTheta
        theta[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-12)
      }
    }
  }
}
