import ArgumentParser
import Foundation
import Quantization
import TensorCore

/// `bitplan bench kernels`: quantize / dequantize / GEMV throughput per format and cache level, with fp32 BLAS GEMV
/// and the measured memory read bandwidth beside them. Build with
/// `swift build -c release -Xswiftc -target-cpu -Xswiftc native` for meaningful numbers.
struct BenchKernels: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kernels",
    abstract: "Throughput of the quantized kernels on this machine, with fp32 BLAS and memory bandwidth beside them.")

  @Option(help: "Comma-separated formats (default: the ggml types, int8/int4/int3 and nf4, ternary, f16, bf16).")
  var formats: String?

  @Option(help: "Comma-separated working-set sizes: L1, L2, L3 (each fits that cache), DRAM (fits none).")
  var sizes: String = "L1,L2,L3,DRAM"

  @OptionGroup var jsonFlag: JSONFlag
  var json: Bool { jsonFlag.json }

  @Option(help: "Comma-separated formats of the T-token GEMM rows (gemm-q8act beside the per-token GEMV loop, the float path and fp32 BLAS sgemm at [576→1536], [1536→576], [576→49152]; about 8 s per format). Default: none, or q4_0,q4_1,q8_0 with --gemm-only.")
  var gemmFormats: String?

  @Option(help: "Tokens per GEMM (the prompt window; 1...8192).")
  var tokens: Int = 512

  @Option(help: "Threads of the GEMM rows (1...256).")
  var gemmThreads: Int = 2

  @Flag(help: "Only the GEMM rows (skip the per-format GEMV table).")
  var gemmOnly = false

  private var chosenSizes: [KernelBenchmark.Size] {
    let names = sizes.split(separator: ",").map { String($0).uppercased() }
    return KernelBenchmark.Size.standard.filter { names.contains($0.name.uppercased()) }
  }

  func validate() throws {
    let names = sizes.split(separator: ",").map { String($0).uppercased() }
    guard !names.isEmpty, names.allSatisfy({ ["L1", "L2", "L3", "DRAM"].contains($0) }) else {
      throw ValidationError("--sizes: expected a comma list of L1, L2, L3, DRAM, got '\(sizes)'")
    }
    if let formats {
      do { _ = try QuantFormat.parseList(formats) } catch { throw ValidationError("--formats '\(formats)': \(error)") }
    }
    if let gemmFormats {
      do { _ = try QuantFormat.parseList(gemmFormats) } catch { throw ValidationError("--gemm-formats '\(gemmFormats)': \(error)") }
    }
    // [T, 49152] Float outputs and as many inputs: 8192 tokens take about 1.7 GB, more would be a request for
    // memory rather than a prompt window
    guard (1...8192).contains(tokens) else { throw ValidationError("--tokens must be in 1...8192, got \(tokens)") }
    guard (1...256).contains(gemmThreads) else {
      throw ValidationError("--gemm-threads must be in 1...256, got \(gemmThreads)")
    }
  }

  func run() throws {
    let chosenFormats = gemmOnly ? [] : try formats.map { try QuantFormat.parseList($0) } ?? KernelBenchmark.defaultFormats
    let chosenSizes = gemmOnly ? [] : self.chosenSizes
    var rows = gemmOnly ? [] : [KernelBenchmark.memoryReadBandwidth(), KernelBenchmark.memoryReadBandwidth(threads: 2)]
    rows += chosenSizes.map(KernelBenchmark.blasGEMV)
    if json { printToStandardError(machineSummary) } else { print(machineSummary) }
    if !json { printHeader(); rows.forEach(printRow) }
    for format in chosenFormats {
      let formatRows = try KernelBenchmark.run(format: format, sizes: chosenSizes)
      if !json { formatRows.forEach(printRow) }
      rows += formatRows
    }
    let gemmFormatList = try QuantFormat.parseList(gemmFormats ?? (gemmOnly ? "q4_0,q4_1,q8_0" : ""))
    if !json && !gemmFormatList.isEmpty {
      print("\nT = \(tokens) tokens, \(gemmThreads) threads; elements = multiply-adds, size = [columns→rows]")
    }
    for format in gemmFormatList {
      let formatRows = try KernelBenchmark.gemm(format: format, tokens: tokens, threads: gemmThreads)
      if !json { formatRows.forEach(printRow) }
      rows += formatRows
    }
    if json {
      struct Line: Encodable {
        var kernel, format, size: String
        var elements, bytes: Int
        var seconds, nsPerElement, floatGBps, packedGBps, gflops: Double
      }
      let lines = rows.map { Line(kernel: $0.kernel, format: $0.format, size: $0.size, elements: $0.elements, bytes: $0.bytes,
        seconds: $0.seconds, nsPerElement: $0.nsPerElement, floatGBps: $0.floatGBps, packedGBps: $0.packedGBps, gflops: $0.gflops) }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try encoder.encode(lines), as: UTF8.self))
    } else if !gemmOnly, let bandwidth = rows.first?.packedGBps {
      print("\nmemory read bandwidth \(format(bandwidth)) GB/s (1 thread), \(format(rows[1].packedGBps)) GB/s (2 threads);"
        + " a DRAM GEMV reaches GB/s(packed) ÷ bandwidth of it.")
      let shares = dramShares(rows)
      if !shares.isEmpty {
        print("DRAM int8-activation GEMV as a share of a plain read of the same packed bytes, timed alternately with it"
          + " (1 thread, 2 threads):")
        for line in shares { print("  " + line) }
      }
    }
  }

  private func format(_ x: Double) -> String { String(format: "%.2f", x) }

  /// One line per format with DRAM GEMV rows: `gemv-q8act` ÷ `read-packed` for each thread count.
  private func dramShares(_ rows: [KernelBenchmark.Row]) -> [String] {
    var formats = [String]()
    for r in rows where r.size == "DRAM" && r.kernel == "read-packed" && !formats.contains(r.format) { formats.append(r.format) }
    return formats.map { name in
      let shares = ["", "-2t"].compactMap { suffix -> String? in
        func speed(_ kernel: String) -> Double? {
          rows.first { $0.size == "DRAM" && $0.format == name && $0.kernel == kernel }?.packedGBps
        }
        guard let gemv = speed("gemv-q8act" + suffix), let read = speed("read-packed" + suffix) else { return nil }
        return String(format: "%.0f%% (%.1f of %.1f GB/s)", 100 * gemv / read, gemv, read)
      }
      return name + ": " + shares.joined(separator: ", ")
    }
  }

  private func printHeader() {
    print("kernel            format          size   elements    ns/elem   GB/s(f32)  GB/s(packed)  GFLOP/s")
  }

  private func printRow(_ r: KernelBenchmark.Row) {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func num(_ x: Double, _ n: Int) -> String { let s = String(format: "%.3f", x); return String(repeating: " ", count: max(0, n - s.count)) + s }
    print(pad(r.kernel, 18) + pad(r.format, 16) + pad(r.size, r.size.count > 6 ? 11 : 6) + num(Double(r.elements), 10).replacingOccurrences(of: ".000", with: "    ")
      + num(r.nsPerElement, 11) + num(r.floatGBps, 12) + num(r.packedGBps, 14) + num(r.gflops, 9))
  }
}
