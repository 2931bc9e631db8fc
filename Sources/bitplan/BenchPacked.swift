import ArgumentParser
import Engine
import Foundation
import ModelIO
import Pipeline
import TensorCore
import Validation

/// `bitplan bench packed A.gguf [B.gguf …]`: prompt-evaluation speed of each GGUF run from its stored types
/// (packed, int8 activations as llama.cpp runs them), beside the fp32 engine on the first file, with resident memory
/// against the packed bytes. `scripts/bench_packed_vs_llamacpp.sh` runs llama.cpp's `llama-perplexity` on the same
/// files in the same session.
struct BenchPacked: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "packed",
    abstract: "Tokens/s of GGUF models run packed (their stored types) beside the fp32 forward; resident memory.")

  @Argument(help: "GGUF files (e.g. pure q4_0, q4_1 and q8_0 requantizations of one model).") var models: [String]
  @Option(parsing: .unconditional, help: "Tokens per window (prompt length).") var tokens = 512
  @OptionGroup var threadsOption: ThreadsOption
  var threads: Int { threadsOption.threads }
  @Option(parsing: .unconditional, help: "Timed forward passes per model (best is reported).") var repeats = 3
  @OptionGroup var activationsOption: ActivationsOption
  var activations: String { activationsOption.activations }
  @Flag(help: "Skip the fp32 reference row.") var noF32 = false
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  func validate() throws {
    guard !models.isEmpty else { throw ValidationError("name at least one GGUF file") }
    guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2, got \(tokens)") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
    guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be in 1...1000, got \(repeats)") }
    guard ActivationMode(rawValue: activations) != nil else { throw ValidationError("--activations must be int8 or f32") }
  }

  func run() throws {
    // No `HeapPolicy.keepLargeArraysInHeap()`: the dense weights that the packed layers replace must go back to
    // the system, or the resident figure would count them.
    try FileChecks.check(inputs: models.map { InputPath(option: "MODEL", path: $0) }, outputs: [])
    for m in models { try Preflight.check(model: m, tokens: tokens, workload: .perplexity) }
    Parallel.setWorkers(threads)
    let baseline = Self.residentBytes()
    var rows: [[String: Any]] = []
    for (i, path) in models.enumerated() {
      // Without the f32 row, the packed layers are never expanded to Float (the resident size is the packed model's).
      let loaded = try LoadedModel.load(path: path) { configuration in
        i == 0 && !noF32 ? [] : try PackedModel.storedTypeLayers(path: path, configuration: configuration)
      }
      var rng = SplitMix64(seed: 3)
      let window = [loaded.tokenizer.bosTokenId ?? 1] + (1..<tokens).map { _ in Int(rng.next() % UInt64(loaded.config.vocabSize)) }
      if i == 0 && !noF32 {
        var nll = 0.0
        let seconds = try best { nll = try loaded.model.meanNLL(tokens: window) }
        rows.append(["model": path, "weights": "f32 (dequantized)", "tokens_per_s": Double(tokens) / seconds, "seconds": seconds, "mean_nll": nll])
      }
      loaded.model.releaseWorkspace()
      let residentLoaded = Self.residentBytes()  // tokenizer, norms, f32 tensors: everything but the packed layers
      try PackedModel(loaded, activations: ActivationMode(rawValue: activations)!).installFileTypes()
      let residentModel = Self.residentBytes()
      let packedBytes = try Self.storedBytes(path)
      let packedLayerBytes = try Self.storedBytes(path, f32: false)
      var nll = 0.0
      let seconds = try best { nll = try loaded.model.meanNLL(tokens: window) }
      rows.append([
        "model": path, "weights": "stored types, packed, \(activations) activations", "tokens_per_s": Double(tokens) / seconds,
        "seconds": seconds, "mean_nll": nll, "resident_bytes": Self.residentBytes(), "resident_before_forward_bytes": residentModel,
        "packed_bytes": packedBytes, "resident_loaded_bytes": residentLoaded, "packed_layer_bytes": packedLayerBytes,
      ])
    }
    if json {
      let object: [String: Any] = ["cpu": cpuModelName, "threads": threads, "tokens": tokens, "baseline_resident_bytes": baseline, "rows": rows]
      print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
      return
    }
    print(machineSummary)
    print("base resident size of this process before loading: \(BenchEngine.fixed(Double(baseline) / 1_048_576, 1)) MiB")
    print("prompt evaluation, \(tokens) tokens, \(threads) threads (best of \(repeats)); seeded random ids, so NLL is not a quality figure")
    for r in rows {
      var line = "\(FileChecks.split(r["model"] as! String).name)  \(r["weights"] as! String): "
        + "\(BenchEngine.fixed(r["tokens_per_s"] as! Double, 1)) tok/s (\(BenchEngine.fixed(r["seconds"] as! Double, 3)) s)"
      if let resident = r["resident_bytes"] as? Int, let before = r["resident_before_forward_bytes"] as? Int,
        let packed = r["packed_bytes"] as? Int
      {
        let mib = { (b: Int) in BenchEngine.fixed(Double(b) / 1_048_576, 1) + " MiB" }
        line += "  resident \(mib(before)) before the first pass, \(mib(resident)) after, for \(mib(packed)) of tensors"
        // the model's share: what loading it added to the process, tokenizer and norms included, over its tensor bytes
        line += " (model \(BenchEngine.fixed(Double(before - baseline) / Double(max(packed, 1)), 3))× its tensors)"
        if let loaded = r["resident_loaded_bytes"] as? Int, let layers = r["packed_layer_bytes"] as? Int, layers > 0 {
          line += "; installing the packed layers (\(mib(layers)) of GGML blocks) added \(mib(before - loaded)) ("
            + "\(BenchEngine.fixed(Double(before - loaded) / Double(layers), 2))×) to the \(mib(loaded)) of the rest"
        }
      }
      print(line)
    }
  }

  /// Sum of the GGUF's tensor bytes (with `f32: false`, of the tensors stored in another type: what runs packed).
  static func storedBytes(_ path: String, f32: Bool = true) throws -> Int {
    try ModelFile(path: path).tensorInfos.filter { f32 || $0.dtype.lowercased() != "f32" }.reduce(0) { $0 + $1.sizeInBytes }
  }

  /// VmRSS of this process now, from /proc/self/status (0 where unavailable).
  static func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
      return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
    return 0
  }

  private func best(_ body: () throws -> Void) throws -> Double {
    let clock = ContinuousClock()
    try body()  // warm-up: first-touch of activation buffers
    var times: [Double] = []
    for _ in 0..<repeats {
      let d = try clock.measure(body)
      times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    return times.min()!
  }
}
