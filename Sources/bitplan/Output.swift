import ArgumentParser
import Foundation
import Reporting
import TensorCore

/// Encodes `value` as pretty JSON with snake_case keys on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  encoder.keyEncodingStrategy = .convertToSnakeCase
  let data = try encoder.encode(value)
  FileHandle.standardOutput.write(data)
  FileHandle.standardOutput.write(Data("\n".utf8))
}

/// `1234567` → `1,234,567` (`ReportText.grouped`, the reports' own).
func grouped(_ n: Int) -> String { ReportText.grouped(n) }

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

extension String {
  func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// The CPU's model name (`/proc/cpuinfo`), or "unknown CPU".
var cpuModelName: String {
  guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
    let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
    let colon = line.firstIndex(of: ":")
  else { return "unknown CPU" }
  return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
}

/// Three lines for benchmarks: the CPU with its features, the BLAS library with the kernels it runs (a warning
/// when they are weaker than the CPU allows), and the engine's own GEMM on packed weights.
var machineSummary: String {
  "CPU: \(cpuModelName), \(ProcessInfo.processInfo.activeProcessorCount) cores; \(CPUFeatures.current)\n"
    + BLASKernels.summary + "\n" + packedGEMMSummary
}

/// Which products the packed kernel runs: "GEMM on packed weights: AVX2 + FMA, 4×24 tile (the forward's linear
/// layers and LM head; perturbed passes and gradients of windows up to 256 tokens; OpenBLAS for the rest)", or why
/// OpenBLAS does them all.
var packedGEMMSummary: String {
  PackedWeights.kernel == .none
    ? "GEMM on packed weights: \(PackedWeights.kernelDescription); OpenBLAS runs every product"
    : "GEMM on packed weights: \(PackedWeights.kernelDescription) (the forward's linear layers and LM head; perturbed passes and gradients of windows up to \(BLAS.packedBlockRows) tokens; OpenBLAS for the rest); attention: "
      + (PackedWeights.attentionKernel == .none ? "OpenBLAS" : PackedWeights.attentionKernel.description)
}

/// One line on standard error.
func printToStandardError(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
