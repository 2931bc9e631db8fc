import ArgumentParser
import Engine
import Foundation
import Pipeline
import TensorCore

/// `bitplan bench engine`: tokens/s of the fp32 engine on SmolLM2 (forward; forward + backward; one HVP) at 512
/// and 128 tokens, peak RSS, and this machine's fp32 GEMM GFLOP/s beside them. Compare with
/// `scripts/bench_torch.py` (PyTorch CPU, same steps, same threads).
struct BenchEngine: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "engine",
    abstract: "Time forward, forward+backward and one Hessian-vector product on a real model.")

  // Not ModelArgument: an option with an environment default here. The default is applied after parsing, so that
  // the help screen does not depend on the environment.
  @Option(name: .customLong("model"), help: "A .gguf file, or a Hugging Face folder (default: $BITPLAN_MODEL).")
  var modelPath: String?
  var model: String { modelPath ?? ProcessInfo.processInfo.environment["BITPLAN_MODEL"] ?? "" }
  @Option(help: ArgumentHelp("Token ids, one per line ('#' comments); default: ../shared/data/pp-window-ids.txt when it exists, else seeded random ids (said in the output).", valueName: "file"))
  var ids: String?
  @Option(parsing: .unconditionalSingleValue, help: "Window lengths to time (at most the model's context length).")
  var tokens: [Int] = [512, 128]
  @OptionGroup var threadsOption: ThreadsOption
  var threads: Int { threadsOption.threads }
  @Option(parsing: .unconditional, help: "Repetitions per step (best time is reported).") var repeats = 2
  @Flag(help: "Time only the forward and forward + backward steps (no HVPs).") var noHvp = false
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  /// The ids file used when `--ids` is not given.
  static let defaultIDs = "../shared/data/pp-window-ids.txt"

  func validate() throws {
    guard !model.isEmpty else { throw ValidationError("--model is required (or set BITPLAN_MODEL)") }
    guard !tokens.isEmpty, tokens.allSatisfy({ $0 >= 2 }) else {
      throw ValidationError("--tokens must be at least 2, got \(tokens.map(String.init).joined(separator: ", "))")
    }
    guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be in 1...1000, got \(repeats)") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
  }

  func run() throws {
    HeapPolicy.keepLargeArraysInHeap()
    var inputs = [InputPath(option: "--model", path: model, allowsFolder: true)]
    if let ids { inputs.append(InputPath(option: "--ids", path: ids)) }
    try FileChecks.check(inputs: inputs, outputs: [])
    try Preflight.check(model: model, tokens: tokens.max()!, workload: .sensitivity(hvpTokens: tokens.max()!))
    Parallel.setWorkers(threads)
    let gemm = Self.gemmGFLOPS(m: 512, n: 1536, k: 576, repeats: 5)
    let llama = try LoadedModel.load(path: model).model
    let peakAfterLoad = Self.peakRSSBytes()
    let count = tokens.max()!, vocab = llama.configuration.vocab
    let window: [Int]
    if let ids {
      window = try Self.window(ids: ids, vocab: vocab, count: count)
    } else if let fromDefault = try? Self.window(ids: Self.defaultIDs, vocab: vocab, count: count) {
      window = fromDefault
    } else {
      // The default file is SmolLM2's P&P window: absent here, or not ids of this model's vocabulary.
      FileHandle.standardError.write(
        Data("note: \(Self.defaultIDs) is missing or not for this model; timing seeded random token ids\n".utf8))
      window = try Self.window(ids: nil, vocab: vocab, count: count)
    }
    let allTensors = Set(llama.configuration.expectedTensors.map(\.name))
    var rows: [[String: Any]] = []
    var peakAfterBackward: [Int: Int] = [:]
    for t in tokens {
      let ids = Array(window.prefix(t))
      var loss = 0.0
      let forward = try best { loss = try llama.meanNLL(tokens: ids) }
      let backward = try best { _ = try llama.gradients(tokens: ids, of: allTensors) }
      // ru_maxrss is monotonic: after the first window it is the peak of loading plus that forward + backward
      if peakAfterBackward.isEmpty { peakAfterBackward[t] = Self.peakRSSBytes() }
      var (hvp, forms, oneSided) = (Double.nan, Double.nan, Double.nan)
      if !noHvp {
        var rng = SplitMix64(seed: 1)
        let probe = Dictionary(uniqueKeysWithValues: llama.linearLayers.map { layer in
          (layer.weightName, (0..<layer.parameterCount).map { _ in rng.next() & 1 == 0 ? Float(-1) : 1 })
        })
        hvp = try best { _ = try llama.hessianVectorProduct(tokens: ids, vector: probe) }
        forms = try best { _ = try llama.hessianQuadraticForms(tokens: ids, vector: probe) }
        let base = try llama.gradients(tokens: ids, of: Set(llama.linearWeightNames)).gradients
        oneSided = try best { _ = try llama.hessianVectorProduct(tokens: ids, vector: probe, baseGradient: base) }
      }
      var row: [String: Any] = [
        "tokens": t, "mean_nll": loss, "forward_s": forward, "forward_backward_s": backward,
        "forward_tok_s": Double(t) / forward, "forward_backward_tok_s": Double(t) / backward,
      ]
      if !noHvp {
        row.merge([
          "hvp_s": hvp, "hvp_tok_s": Double(t) / hvp, "hvp_one_sided_s": oneSided,
          "hvp_one_sided_tok_s": Double(t) / oneSided, "quadratic_forms_s": forms,
          "quadratic_forms_tok_s": Double(t) / forms,
        ]) { a, _ in a }
      }
      rows.append(row)
    }
    let peakRSS = Self.peakRSSBytes()
    if json {
      let object: [String: Any] = [
        "model": model, "threads": threads, "cpu": cpuModelName, "cpu_features": CPUFeatures.current.description,
        "blas_library": BLASKernels.libraryConfiguration, "blas_kernels": BLASKernels.activeCore,
        "blas_best_kernels_for_cpu": BLASKernels.bestCore(for: .current)?.name ?? "", "blas_summary": BLASKernels.summary, "packed_gemm": PackedWeights.kernelDescription, "attention_gemm": PackedWeights.attentionKernel.description, "gemm_512x1536x576_gflops": gemm, "peak_rss_bytes": peakRSS,
        "peak_rss_after_load_bytes": peakAfterLoad,
        "peak_rss_after_forward_backward_bytes": Dictionary(uniqueKeysWithValues: peakAfterBackward.map { ("\($0.key)", $0.value) }),
        "windows": rows,
      ]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
      return
    }
    print(machineSummary)
    print("sgemm 512x1536x576 (\(threads) threads): \(Self.fixed(gemm, 1)) GFLOP/s")
    for r in rows {
      let t = r["tokens"] as! Int
      var line = "T=\(t): mean NLL \(Self.fixed(r["mean_nll"] as! Double, 5))  forward \(Self.fixed(r["forward_tok_s"] as! Double, 1)) tok/s"
        + " (\(Self.fixed(r["forward_s"] as! Double, 3)) s)  fwd+bwd \(Self.fixed(r["forward_backward_tok_s"] as! Double, 1)) tok/s"
        + " (\(Self.fixed(r["forward_backward_s"] as! Double, 3)) s)"
      if !noHvp {
        line += "  HVP \(Self.fixed(r["hvp_tok_s"] as! Double, 1)) tok/s"
          + " (\(Self.fixed(r["hvp_s"] as! Double, 3)) s)  one-sided HVP \(Self.fixed(r["hvp_one_sided_tok_s"] as! Double, 1)) tok/s"
          + " (\(Self.fixed(r["hvp_one_sided_s"] as! Double, 3)) s)  vᵀHv per layer \(Self.fixed(r["quadratic_forms_tok_s"] as! Double, 1)) tok/s"
          + " (\(Self.fixed(r["quadratic_forms_s"] as! Double, 3)) s)"
      }
      print(line)
    }
    let mib = { (bytes: Int) in Self.fixed(Double(bytes) / 1_048_576, 1) + " MiB" }
    print("peak RSS: after loading \(mib(peakAfterLoad)) (weights dictionary + model copy), after forward + backward "
      + peakAfterBackward.sorted { $0.key > $1.key }.map { "T=\($0.key) \(mib($0.value))" }.joined(separator: ", ")
      + ", whole run \(mib(peakRSS)) (HVP probes and base gradient included)")
  }

  /// Best wall time of `repeats` runs, in seconds.
  private func best(_ body: () throws -> Void) throws -> Double {
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<repeats {
      let d = try clock.measure(body)
      times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    return times.min()!
  }

  /// 2mnk / best time of a row-major sgemm with seeded inputs.
  static func gemmGFLOPS(m: Int, n: Int, k: Int, repeats: Int) -> Double {
    var rng = SplitMix64(seed: 7)
    let a = (0..<(m * k)).map { _ in Float(rng.next() % 1000) / 1000 }, b = (0..<(k * n)).map { _ in Float(rng.next() % 1000) / 1000 }
    var c = [Float](repeating: 0, count: m * n)
    let clock = ContinuousClock()
    var bestSeconds = Double.infinity
    for _ in 0..<(repeats + 1) {
      let d = c.withUnsafeMutableBufferPointer { cp in
        clock.measure { BLAS.sgemm(m: m, n: n, k: k, a: a, b: b, c: cp.baseAddress!) }
      }
      bestSeconds = min(bestSeconds, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    return 2 * Double(m * n * k) / bestSeconds / 1e9
  }

  /// ru_maxrss (KiB on Linux) in bytes.
  static func peakRSSBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
  }

  /// The ids file's first `count` tokens, or seeded ids when no file is given.
  /// - Throws: `CommandError` when the file has a line that is not an id in `0..<vocab`, or fewer than `count` ids.
  static func window(ids path: String?, vocab: Int, count: Int) throws -> [Int] {
    if let path {
      let text = try TokenWindow.readText(path, option: "--ids")
      var ids: [Int] = []
      for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        guard let id = Int(trimmed), (0..<vocab).contains(id) else {
          throw CommandError("--ids '\(path)': line \(n + 1): '\(trimmed.prefix(40))' is not a token id in 0..<\(vocab)", status: .dataError)
        }
        ids.append(id)
      }
      guard ids.count >= count else {
        throw CommandError("--ids '\(path)': holds \(ids.count) ids, --tokens asks for \(count)", status: .dataError)
      }
      return Array(ids.prefix(count))
    }
    var rng = SplitMix64(seed: 3)
    return [1] + (1..<count).map { _ in Int(rng.next() % UInt64(vocab)) }
  }

  static func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
}
