import ArgumentParser
import Foundation
import Pipeline
import Quantization
import Sensitivity
import TensorCore

/// `bitplan quantize MODEL PLAN.json -o OUT.gguf`: a mixed-precision GGUF that llama.cpp runs.
struct Quantize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write the model as a mixed-precision GGUF: every planned layer in its planned llama.cpp type.",
    discussion: """
      MODEL is a .gguf file (a Hugging Face folder must be converted with llama.cpp's convert_hf_to_gguf.py \
      first). PLAN.json comes from bitplan allocate --target llama-cpp: every format must be a GGML type (q2_k … \
      q6_k, q4_0, q4_1, q5_0, q5_1, q8_0) or f16, bf16, f32 that the layer's rows can hold. Planned tensors are \
      decoded to f32 and re-encoded with ggml's quantizers, as llama-quantize --allow-requantize does: without an \
      importance matrix by ggml's reference quantizers; with --imatrix (llama-imatrix's file, GGUF or legacy .dat) \
      each tensor that has an entry is weighed by it, as llama-quantize --imatrix does (an entry of the wrong size \
      is refused; tensors without one, and q8_0 and float types, are encoded as without the matrix). A tensor \
      already in its planned type, and every unplanned one, is copied byte for byte. Tensors keep the source's \
      order, names and shapes; the metadata is copied in order, with general.quantization_version, \
      general.file_type and the quantize.imatrix.* keys set as llama-quantize sets them. Layers the plan (or \
      --quantizer gptq) gives to GPTQ get codes chosen by GPTQ from their inputs on the calibration text (--calib; \
      --run supplies the run's text and token count); AWQ layers cannot be written to a GGUF yet and are refused.
      """)

  // Not ModelArgument: quantize reads only GGUF (a Hugging Face folder is refused, as the discussion says).
  @Argument(help: "The model: a .gguf file.") var model: String
  @OptionGroup var planArgument: PlanArgument
  var plan: String { planArgument.plan }
  @OptionGroup var outputFile: OutputFile<GGUFOutput>
  var output: String { outputFile.output }
  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }
  @Option(help: ArgumentHelp("Quantizer of every planned layer: rtn or gptq (default: as the plan says per layer).", valueName: "name"))
  var quantizer: String?
  // Not CalibrationText: needed only for GPTQ layers, and --run can supply it.
  @Option(help: ArgumentHelp("Calibration text GPTQ takes layer inputs from (default: the --run file's calib_path).", valueName: "file"))
  var calib: String?
  @Option(name: .customLong("run"), help: ArgumentHelp("The run file the plan came from: its calibration text and token count.", valueName: "RUN.h5"))
  var runFile: String?
  @Option(help: ArgumentHelp("llama.cpp importance matrix (llama-imatrix's output) to weigh the re-encoded tensors by, as llama-quantize --imatrix.", valueName: "file"))
  var imatrix: String?

  func validate() throws {
    if let quantizer, QuantizerChoice(quantizer) == nil {
      throw ValidationError("--quantizer '\(quantizer)': expected \(QuantizerChoice.names)")
    }
  }

  func run() throws {
    let progress = ProgressLine(stages: ["quantize"])
    let started = Date()
    let summary: QuantizeSummary
    do {
      // Every input before anything is read: -o must name none of them (the run file and the calibration text
      // included, which GGUFQuantize sees only as a text path).
      var inputs = [
        InputPath(option: "MODEL", path: model, allowsFolder: true), InputPath(option: "PLAN.json", path: plan),
      ]
      if let runFile { inputs.append(InputPath(option: "--run", path: runFile)) }
      if let calib { inputs.append(InputPath(option: "--calib", path: calib)) }
      if let imatrix { inputs.append(InputPath(option: "--imatrix", path: imatrix)) }
      try FileChecks.check(inputs: inputs, outputs: [OutputPath(option: "-o", path: output)])
      let run = try runFile.map { try RunStore.read($0) }
      let recorded = run.map(\.provenance.calibrationPath).flatMap { $0.isEmpty ? nil : $0 }
      summary = try GGUFQuantize.run(
        model: model, plan: plan, output: output, importanceMatrix: imatrix,
        quantizer: quantizer.flatMap { QuantizerChoice($0) },
        calibrationText: calib ?? recorded, calibrationTokens: run?.provenance.tokens ?? 512,
        status: { progress.status($0) }
      ) { done, total, _ in
        // Small models finish in well under a second: draw only once the work has taken one.
        if Date().timeIntervalSince(started) > 1 { progress.update(stage: "quantize", done: done, total: total) }
      }
    } catch {
      progress.finish()
      throw error
    }
    progress.finish()
    if json {
      try printJSON(summary)
      return
    }
    let requantized = summary.planned.filter { !$0.copied }
    var byChange: [String: Int] = [:]
    for t in requantized { byChange["\(t.from) → \(t.to)", default: 0] += 1 }
    print("\(output): \(summary.tensorCount) tensors, \(summary.planned.count) planned (\(requantized.count) re-encoded, "
      + "\(summary.planned.count - requantized.count) already in their type), file type \(summary.fileTypeName) (\(summary.fileType))")
    for (change, count) in byChange.sorted(by: { $0.key < $1.key }) { print("  \(change) ×\(count)") }
    if let matrix = summary.importanceMatrix, let entries = summary.importanceEntries {
      let used = summary.planned.filter(\.importance).count
      print("importance matrix \(matrix) (\(entries) entries): \(used) of the \(requantized.count) re-encoded tensors "
        + "quantized with it")
    }
    print("tensor bytes \(grouped(summary.sourceTensorBytes)) → \(grouped(summary.outputTensorBytes)), "
      + String(format: "%.1f s", summary.elapsedSeconds))
  }
}
