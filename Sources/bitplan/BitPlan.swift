import ArgumentParser

@main
struct BitPlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bitplan",
    abstract: "Per-layer sensitivity, exact bit allocation and validation for quantizing LLMs.",
    version: "0.1.0",
    subcommands: [Inspect.self, Ppl.self, Measure.self, Allocate.self, Bench.self, TinyModel.self])
}
