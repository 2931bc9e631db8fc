import ArgumentParser
import TensorCore

@main
struct BitPlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bitplan",
    abstract: "Per-layer sensitivity, exact bit allocation and validation for quantizing LLMs.",
    discussion: """
      Errors are one line on stderr naming the file or option. No command writes over one of its inputs, a \
      folder, or anything but a regular file: outputs are written beside their target and renamed into place.
      """ + " " + ExitStatus.table,
    version: "0.1.0",
    subcommands: [
      Inspect.self, Ppl.self, Measure.self, Allocate.self, Validate.self, ReportCommand.self, Run.self, Quantize.self,
      Export.self, Bench.self,
      TinyModel.self,
    ])

  /// Before any command: OpenBLAS must run the kernels this CPU allows (a relaunch with `OPENBLAS_CORETYPE` set
  /// when the library did not recognise the CPU; see `BLASKernels.relaunchWithBestKernelsIfNeeded`). Then the
  /// command, with every error mapped to its exit status (`ExitStatus.swift`).
  static func main() {
    BLASKernels.relaunchWithBestKernelsIfNeeded()
    // an interrupted command removes the temporaries of the outputs it was writing (FileChecks registers them)
    FileChecks.removeTemporariesOnInterrupt()
    runMappingErrors()
  }
}
