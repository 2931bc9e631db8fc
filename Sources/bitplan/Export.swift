import ArgumentParser
import Foundation
import ModelIO
import Pipeline
import Reporting
import Sensitivity
import TensorCore

extension ExportFormat: ExpressibleByArgument {}

/// `bitplan export`: writes a plan in the form one runtime reads (Sources/Reporting/README.md lists them). A plan
/// the runtime cannot express is refused with one line naming the layer and the format, and nothing is written.
struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a plan for llama.cpp, MLX, GPTQModel or llm-compressor (or as JSON with tensor names).",
    discussion: """
      llama-cpp: a --tensor-type-file recipe with one rule per quantizable tensor of the model (tensors the plan \
      leaves out keep their type), so it reads the GGUF model: --model, else the plan's "model"; its sha256 must be \
      the plan's model_sha256. The llama-quantize command line that applies the recipe is printed on stderr (with \
      RECIPE.txt standing for the recipe when it goes to stdout). mlx: the config.json "quantization" and \
      "quantization_config" blocks. gptqmodel: a QuantizeConfig JSON with "dynamic" rules (a warning on stderr for \
      each block whose q/k/v or gate/up differ, which vLLM loads fused). llm-compressor: a recipe YAML (siblings \
      that vLLM fuses must share a format). json: PLAN.json with each layer's HF and GGUF tensor names. With \
      --model, the others also check the layers against the model (existence, groups that divide the rows). Without -o the export goes to stdout; -o must \
      not name the plan or the model. llama-cpp with --imatrix FILE --run RUN.h5: also writes the run's activation \
      statistics (diag(XᵀX)/n of every measured layer's calibration inputs, the tied token embedding's from the LM \
      head) as the importance matrix GGUF that llama-quantize --imatrix reads, and the printed command uses it.
      """)

  @OptionGroup var planArgument: PlanArgument
  var plan: String { planArgument.plan }
  @Option(help: "What to write (each is described above).") var format: ExportFormat
  // Not OutputFile: -o is optional here (the export goes to stdout without it).
  @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the export (default: stdout).", valueName: "file")) var output: String?
  // Not ModelArgument: an optional option here, only to check the plan against (and to read for llama-cpp).
  @Option(help: "The model the plan was made for (default for llama-cpp: the plan's \"model\").") var model: String?
  @Option(help: ArgumentHelp("llama-cpp: also write the run's importance matrix here (needs --run).", valueName: "file"))
  var imatrix: String?
  @Option(
    name: .customLong("run"),
    help: ArgumentHelp("The measurement of the plan's model whose activation statistics --imatrix writes.", valueName: "RUN.h5"))
  var runFile: String?

  func run() throws {
    do { try export() } catch let error as ExportError {
      throw CommandError("'\(plan)': \(error.message)", status: .usage)
    }
  }

  private func export() throws {
    if imatrix != nil && format != .llamaCpp {
      throw CommandError("--imatrix: an importance matrix is llama.cpp's; it goes with --format llama-cpp", status: .usage)
    }
    if (imatrix == nil) != (runFile == nil) {
      throw CommandError(
        imatrix == nil ? "--run: give --imatrix FILE too (where to write the importance matrix)"
          : "--imatrix: give --run RUN.h5 too (the measurement whose statistics it holds)", status: .usage)
    }
    let outputs = (output.map { [OutputPath(option: "-o", path: $0)] } ?? [])
      + (imatrix.map { [OutputPath(option: "--imatrix", path: $0)] } ?? [])
    let planInput = InputPath(option: "PLAN.json", path: plan)
    try FileChecks.check(
      inputs: [planInput] + (model.map { [InputPath(option: "--model", path: $0, allowsFolder: true)] } ?? [])
        + (runFile.map { [InputPath(option: "--run", path: $0)] } ?? []),
      outputs: outputs)
    let document = try PlanFile.read(plan)
    try format.checkFormats(document)  // a plan in another runtime's formats is refused before the model is read
    var modelPath = model
    if modelPath == nil && format.needsModel {
      guard let named = document.model, !named.isEmpty else {
        throw CommandError("--model: the llama-cpp recipe needs the model's tensors and '\(plan)' names no model; give --model MODEL.gguf")
      }
      try FileChecks.check(inputs: [planInput, InputPath(option: "the plan's model", path: named)], outputs: outputs)
      modelPath = named
    }
    var tensors: [TensorInfo] = []
    if let path = modelPath {
      let option = model == nil ? "the plan's model" : "--model"
      let sha = try Measurement.modelSHA256(path: path)
      if let recorded = document.modelSHA256, !recorded.isEmpty, recorded.lowercased() != sha {
        throw CommandError(
          "\(option) '\(path)': its sha256 \(sha.prefix(12))… is not the plan's model_sha256 \(recorded.prefix(12))…; the plan was made for another model")
      }
      let file = try ModelFile(path: path)
      if format == .llamaCpp, case .gguf = file {} else if format == .llamaCpp {
        throw CommandError("\(option) '\(path)': llama-quantize reads GGUF files; convert the model with convert_hf_to_gguf.py first")
      }
      tensors = file.tensorInfos
    }
    let (data, warnings) = try format.render(document, tensors: tensors)
    // Everything is computed before anything is written: a refusal leaves no file.
    var importance: [UInt8]?
    if let runFile {
      let measured = try RunStore.read(runFile)
      if let recorded = document.modelSHA256, !recorded.isEmpty,
        recorded.lowercased() != measured.provenance.modelSHA256.lowercased()
      {
        throw CommandError(
          "--run '\(runFile)': measured on a model with sha256 \(measured.provenance.modelSHA256.prefix(12))…, not the plan's \(recorded.prefix(12))…")
      }
      importance = try LlamaCppImatrix(run: measured, tensors: tensors).serialized()
    }
    if let imatrix, let importance { try FileChecks.write(Data(importance), to: imatrix, option: "--imatrix") }
    if let output {
      try FileChecks.write(data, to: output, option: "-o")
    } else {
      FileHandle.standardOutput.write(data)
    }
    for line in warnings { printToStandardError(line) }
    if format == .llamaCpp, let modelPath {
      let recipe = try LlamaCppRecipe(plan: document, tensors: tensors)
      let stem = modelPath.hasSuffix(".gguf") ? String(modelPath.dropLast(5)) : modelPath
      printToStandardError(
        recipe.command(
          recipePath: output ?? "RECIPE.txt", modelPath: modelPath, outputPath: stem + "-bitplan.gguf", imatrixPath: imatrix))
    }
  }
}
