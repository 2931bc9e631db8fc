import Foundation
import ModelIO
import TensorCore

#if canImport(Glibc)
  import Glibc
#endif

/// What a command will do with a model, for the memory estimate.
public enum Workload: Sendable, Equatable {
  /// One loss-only forward pass over the window (`ppl`).
  case perplexity
  /// Forward + backward with every activation kept, then Hessian-vector products on windows of `hvpTokens`, and
  /// loss-only passes over `tokens` (`measure`; `bench engine` times the same steps); with or without the
  /// Hutchinson diagonal, which keeps whole probes, products and per-weight sums.
  case sensitivity(hvpTokens: Int, keepsHessianDiagonal: Bool = true)
}

/// A request the machine or the model cannot serve: more tokens than the model has positions, or more memory than
/// this machine has.
public struct ResourceError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong.
  public enum Code: String, Sendable, CaseIterable {
    /// `--tokens` beyond the model's context length.
    case tooManyTokens
    /// The command's estimated memory exceeds the machine's.
    case notEnoughMemory
  }

  /// What went wrong.
  public var code: Code
  /// One line with the figures and the remedy.
  public var message: String
  /// The model, when there is one.
  public var path: String?

  /// Creates an error.
  public init(_ code: Code, _ message: String, path: String? = nil) {
    self.code = code
    self.message = message
    self.path = path
  }

  /// `code: message (path)`.
  public var description: String { "\(code.rawValue): \(message)" + (path.map { " (\($0))" } ?? "") }
}

/// Checks made on a model's header before any weight is read: its config against its tensors, the token count
/// against its context length, and the memory the command will need against the machine's.
public enum Preflight {
  /// Opens `path` (headers only), checks its config against its tensors and `tokens` against its context length,
  /// and refuses a workload whose estimated memory exceeds `availableMemoryBytes()`.
  /// - Parameters:
  ///   - tokens: the largest window the command will run, BOS included.
  ///   - option: the option that set `tokens`, for messages.
  ///   - texts: text files the command reads whole; each costs about three times its size while it is decoded
  ///     (the bytes, the `String`, the tokenized prefix), added to the estimate.
  /// - Returns: the checked config.
  /// - Throws: `ModelIOError` for a bad model, `ResourceError` for too many tokens or too little memory.
  @discardableResult
  public static func check(
    model path: String, tokens: Int, workload: Workload, option: String = "--tokens", texts: [String] = []
  ) throws -> LlamaConfig {
    let file = try ModelFile(path: path)
    let config = try file.llamaConfig()
    try checkTokens(tokens, config: config, option: option, path: path)
    let parameters = file.tensorInfos.reduce(0.0) { $0 + Double($1.parameterCount) }
    var streamedBytes: Double?
    if streamsWeights(parameters: parameters) {
      streamedBytes = streamedWeightBytes(config: config, matrices: file.tensorInfos.filter { $0.shape.count == 2 }.map(\.parameterCount))
    }
    let textBytes = texts.reduce(0.0) { total, text in
      let size = (try? FileManager.default.attributesOfItem(atPath: text)[.size] as? NSNumber)?.doubleValue ?? 0
      return total + 3 * size
    }
    var remedy = "use fewer tokens, a smaller model or a shorter text"
    if case .sensitivity(_, true) = workload { remedy += ", or --no-hessian-diagonal" }
    try checkMemory(
      estimatedBytes(config: config, parameters: parameters, tokens: tokens, workload: workload, streamedWeightBytes: streamedBytes)
        + textBytes,
      remedy: remedy)
    return config
  }

  /// Whether `measure` and `ppl` leave the weight matrices in the file and read each when a pass reaches it
  /// (`LoadedModel.load(…streaming:)`), and `measure` its gradient sum on disk: when their Float values, `4P`, would
  /// take more than an eighth of the memory this process may use (`availableMemoryBytes`, so `BITPLAN_MEMORY_LIMIT`
  /// decides it too): a measurement in memory holds about three times that (the weights and the Double gradient
  /// sum). The numbers are the same either way; streaming costs a read and dequantization of every weight per pass
  /// and 16 bytes of file I/O per weight per calibration window.
  public static func streamsWeights(parameters: Double) -> Bool {
    4 * parameters > Double(availableMemoryBytes()) / 8
  }

  /// `streamsWeights` for the model at `path` (headers only).
  public static func streamsWeights(model path: String) throws -> Bool {
    streamsWeights(parameters: try ModelFile(path: path).tensorInfos.reduce(0.0) { $0 + Double($1.parameterCount) })
  }

  /// What the weights of a model streamed from its file hold (`LoadedModel.load(…streaming: true)`), given the
  /// value counts of its matrices: the embedding and an untied head in Float, which stay expanded once read (a
  /// reader decodes a table straight into the buffer it is kept in, `WeightReader(into:)`), and eight Float copies
  /// of the largest other matrix (a q/k projection's un-permuted array, the expansion buffer, a probe's block,
  /// W + εV, and in the per-layer stage a candidate's Q(W) and ΔW on each of two workers; the forward's packed
  /// GEMM packs a streamed weight a panel at a time, `BLAS.sgemm(…weights:…)`); the mapped file's pages
  /// leave the resident set once each weight is read (`ModelFile.dropResidentPages`). The 1B-shape bf16 model, 512
  /// tokens, 128 for the HVPs, two candidates, four probes: 2.83 GiB estimated, 2.66 GiB measured
  /// (`scripts/bench_scale.sh` at c0615b8).
  public static func streamedWeightBytes(config: LlamaConfig, matrices: [Int]) -> Double {
    let table = config.vocabSize * config.hiddenSize
    let tables = Double(table) * (config.tieWordEmbeddings ? 1 : 2)
    let largest = matrices.filter { $0 < table }.map(Double.init).max() ?? 0
    return 4 * tables + 32 * largest
  }

  /// Opens the model at `path` (headers only), checks its config against its tensors, and every window a command
  /// will run against its context length, each named by the option that set it (`--tokens`, `--eval-tokens`): for a
  /// command of several stages (`run`), before the first starts.
  /// - Returns: the checked config.
  /// - Throws: `ModelIOError` for a bad model, `.tooManyTokens` naming the first option over the context length.
  @discardableResult
  public static func checkTokens(model path: String, _ windows: [(option: String, tokens: Int)]) throws -> LlamaConfig {
    let config = try ModelFile(path: path).llamaConfig()
    for window in windows { try checkTokens(window.tokens, config: config, option: window.option, path: path) }
    return config
  }

  /// `tokens` must not exceed the model's context length (when the file states one).
  /// - Throws: `.tooManyTokens` naming both figures.
  public static func checkTokens(_ tokens: Int, config: LlamaConfig, option: String, path: String? = nil)
    throws(ResourceError)
  {
    let context = config.maxPositionEmbeddings
    if context > 0 && tokens > context {
      throw ResourceError(
        .tooManyTokens,
        "\(option) \(tokens) exceeds the model's context length of \(context) positions; use at most \(context)",
        path: path)
    }
  }

  /// Refuses `bytes` above the memory this process may use.
  /// - Throws: `.notEnoughMemory` with both figures.
  public static func checkMemory(
    _ bytes: Double, remedy: String = "use fewer tokens, a smaller model or a shorter text"
  ) throws(ResourceError) {
    let available = availableMemoryBytes()
    if bytes > Double(available) {
      throw ResourceError(
        .notEnoughMemory,
        "this needs about \(size(bytes)) of memory, the machine has \(size(Double(available))); \(remedy)")
    }
  }

  /// Estimated peak bytes of `workload` on a model with `config` and `parameters` weights, in Double so that
  /// absurd inputs give a large number, not an overflow.
  ///
  /// Float weights `W = 4P`; loading holds the dequantized tensors and the engine's copy (2W). A model in memory
  /// adds, from its first forward on, the packed copy of its block matrices (4 bytes per weight outside the
  /// embedding and head tables) where the CPU has the packed GEMM. A pass that keeps
  /// activations stores per block `T·(2 + 3d + 2q + 2kv + 3F) + H·T²` floats (`ForwardCache`), plus `(L+1)·T·d`
  /// residuals and `T·V` probabilities; a loss-only pass keeps one block and two residuals. `sensitivity` holds,
  /// beside the weights, the Fisher gradient sum in Double (8P: gradients are streamed a layer at a time into it,
  /// and Hutchinson probes are regenerated a layer at a time), every linear layer's captured inputs over the
  /// calibration tokens (`T·L·(5d + q + F)` floats), one kept-activation window of `hvpTokens` and a loss-only
  /// window of `tokens`; the Hessian diagonal adds its Double sums, a whole probe and the base gradient (13P as
  /// measured). Checked against peak RSS on SmolLM2 (134.5 M weights, 512 tokens, 128 for the HVPs, 4 probes,
  /// the 12 default candidates; packed weights, AVX2 kernel): measured 2.37 GiB without the diagonal (this gives
  /// 2.47) and 4.03 GiB with it (4.10); `bench engine` 2.47 GiB after a 512-token forward + backward; `ppl` on 512
  /// tokens 1.16 GiB (the loading peak: the packed copies come after the loader's tensors are freed).
  ///
  /// With `streamedWeightBytes` (the weights are streamed: the expanded tables and the one matrix a pass is at)
  /// that replaces the Float weights, loading holds nothing more, and the gradient sum is on disk. Checked against
  /// peak RSS of the 1B-shape bf16 model (`scripts/bench_scale.sh`).
  public static func estimatedBytes(
    config c: LlamaConfig, parameters: Double, tokens: Int, workload: Workload, streamedWeightBytes: Double? = nil
  ) -> Double {
    let (d, f, h, v, l) = (Double(c.hiddenSize), Double(c.intermediateSize), Double(c.headCount),
      Double(c.vocabSize), Double(c.layerCount))
    let (q, kv) = (Double(c.headCount * c.headDim), Double(c.kvHeadCount * c.headDim))
    func block(_ t: Double) -> Double { t * (2 + 3 * d + 2 * q + 2 * kv + 3 * f) + h * t * t }
    func kept(_ t: Double) -> Double { 4 * (l * block(t) + (l + 1) * t * d + t * v) }
    func lossOnly(_ t: Double) -> Double { 4 * (block(t) + 2 * t * d + t * v) }
    // a model in memory also packs its block matrices for the forward's GEMM once (`LlamaModel+PackedWeights`)
    let tables = v * d * (c.tieWordEmbeddings ? 1 : 2)
    let packed = streamedWeightBytes == nil && PackedWeights.kernel != .none ? 4 * max(0, parameters - tables) : 0
    let loading = streamedWeightBytes ?? 8 * parameters
    let weights = (streamedWeightBytes ?? 4 * parameters) + packed
    switch workload {
    case .perplexity:
      return max(loading, weights) + lossOnly(Double(tokens))
    case .sensitivity(let hvpTokens, let keepsDiagonal):
      let captured = 4 * Double(tokens) * l * (5 * d + q + f)
      // a streamed model keeps its gradient sum on disk (`MeasurementRun.streamsGradientSum`)
      let sum = streamedWeightBytes == nil ? 8 * parameters : 0
      let steady = weights + sum + captured + kept(Double(hvpTokens)) + lossOnly(Double(tokens))
      return max(loading + kept(Double(hvpTokens)), steady + (keepsDiagonal ? 13 * parameters : 0))
    }
  }

  /// The memory this process may use: physical memory, or less under a cgroup limit (`memory.max`), or
  /// `BITPLAN_MEMORY_LIMIT` bytes when set (to share a machine, and for tests).
  public static func availableMemoryBytes() -> Int {
    if let text = ProcessInfo.processInfo.environment["BITPLAN_MEMORY_LIMIT"], let limit = Int(text), limit > 0 {
      return limit
    }
    var bytes = Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
    if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
      let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
    {
      bytes = min(bytes, limit)
    }
    return bytes
  }

  /// `512.0 MiB`, `23.5 GiB`, `3.6e+08 GiB`.
  static func size(_ bytes: Double) -> String {
    let gib = bytes / 1_073_741_824
    if gib < 1 { return String(format: "%.1f MiB", bytes / 1_048_576) }
    return gib < 1e6 ? String(format: "%.1f GiB", gib) : String(format: "%.2g GiB", gib)
  }
}
