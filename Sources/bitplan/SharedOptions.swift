import ArgumentParser

// Options that several commands take, declared once: one spelling, one help text, one default. A command includes
// one with `@OptionGroup` and, to keep its body unchanged, reads it through a computed property of the old name:
//
//     @OptionGroup var modelArgument: ModelArgument
//     var model: String { modelArgument.model }
//
// A command whose option means something else keeps its own declaration, with a comment saying why.

/// `MODEL`: the model file or folder every model-reading command takes first.
struct ModelArgument: ParsableArguments {
  @Argument(help: "A .gguf file, or a Hugging Face folder (config.json + *.safetensors).") var model: String
}

/// `PLAN`: a plan written by `bitplan allocate`.
struct PlanArgument: ParsableArguments {
  @Argument(help: "PLAN.json from bitplan allocate.") var plan: String
}

/// `--calib FILE`: the text whose tokens the sensitivities are measured on.
struct CalibrationText: ParsableArguments {
  @Option(help: ArgumentHelp("UTF-8 calibration text.", valueName: "file")) var calib: String
}

/// `--eval FILE`: held-out text that plans are scored on.
struct EvaluationText: ParsableArguments {
  @Option(help: ArgumentHelp("UTF-8 evaluation text (not the calibration text).", valueName: "file")) var eval: String
}

/// `--seed N`: every random stream of a command (probes, audits, bootstrap resamples) starts from it.
struct SeedOption: ParsableArguments {
  @Option(parsing: .unconditional, help: "Seed of every random stream (the same seed gives the same numbers).")
  var seed: UInt64 = 0
}

/// `--threads N`: worker threads of the timed runs.
struct ThreadsOption: ParsableArguments {
  @Option(parsing: .unconditional, help: "Worker threads (GEMMs are split over them; OpenBLAS runs one thread per part).")
  var threads = 2
}

/// `--activations int8|f32`: how packed layers take their input.
struct ActivationsOption: ParsableArguments {
  @Option(help: "Activations of the packed layers: int8 (quantized per token, as llama.cpp does) or f32 (w8a8 layers then run their smoothed int8 weights on Float inputs).")
  var activations = "int8"
}

/// `--json`: the same result as JSON on stdout, for scripts.
struct JSONFlag: ParsableArguments {
  @Flag(help: "Print the result as JSON on stdout instead of text.") var json = false
}

/// What a command's `-o` writes: the help text and the value name in the usage line.
protocol OutputKind {
  static var help: String { get }
  static var valueName: String { get }
}

/// `-o, --output FILE`: the one file a command writes (beside its target, then renamed into place; never over an
/// input). `Kind` says what the file is.
struct OutputFile<Kind: OutputKind>: ParsableArguments {
  @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(Kind.help, valueName: Kind.valueName))
  var output: String
}

enum RunFileOutput: OutputKind {
  static let help = "The run file to write (HDF5, Documentation/RunFormat.md)."
  static let valueName = "RUN.h5"
}

enum PlanOutput: OutputKind {
  static let help = "Where to write the plan."
  static let valueName = "PLAN.json"
}

enum ValidationOutput: OutputKind {
  static let help = "Where to write the validation table."
  static let valueName = "VALIDATION.json"
}

enum GGUFOutput: OutputKind {
  static let help = "The GGUF to write."
  static let valueName = "MODEL.gguf"
}

enum ReportFolderOutput: OutputKind {
  static let help = "Folder for report.md and report.html (created if absent)."
  static let valueName = "DIR"
}

enum RunFolderOutput: OutputKind {
  static let help = "The run folder: run.h5, plan.json, VALIDATION.json, the report and the exports (created if absent)."
  static let valueName = "DIR"
}
