import ArgumentParser
import Quantization

/// `--target llama-cpp|mlx|gptqmodel|llm-compressor|any` (case-insensitive).
extension Target: ExpressibleByArgument {
  public init?(argument: String) { self.init(name: argument) }
  public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
