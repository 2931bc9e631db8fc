// swift-tools-version: 6.1
// BitPlan: per-layer sensitivity, exact bit allocation and validation for quantizing LLMs.
// Modules import only downward (each target lists exactly the modules its files import; see its README.md):
//   TensorCore (BLAS, threads, file rules) ← GGML (block types) ← ModelIO (GGUF, safetensors, tokenizers)
//   TensorCore, GGML, CKernels ← Quantization (formats, calibration, packed GEMV/GEMM)
//   TensorCore ← Engine (forward, backward, HVP, operator seam, NLL/KLD scoring)
//   TensorCore, HDF5 ← Sensitivity (estimators, the run file);  Allocation (solvers; numbers only)
//   Engine, Quantization ← Validation (packed plans, windows, intervals, baselines)
//   Allocation, Quantization, GGML, ModelIO, Sensitivity, Validation ← Reporting (exports for llama.cpp, MLX,
//     GPTQModel, llm-compressor; the Markdown/HTML report of a run, plan and validation)
//   all of them ← Pipeline (loading, measure, validate, quantize) ← bitplan (the command line)
// See ../shared/DESIGN.md and Documentation/Internals.md.
import PackageDescription

let package = Package(
  name: "BitPlan",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "bitplan", targets: ["bitplan"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // MARK: - System libraries
    .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    // MARK: - Leaves
    .target(name: "TensorCore", dependencies: ["CBLAS", "CKernels"], exclude: ["README.md"]),
    .target(name: "CKernels"),
    .target(name: "Allocation"),
    .target(name: "HDF5", dependencies: ["CHDF5"], exclude: ["README.md"]),
    // MARK: - Layers
    .target(name: "GGML", dependencies: ["TensorCore"], exclude: ["README.md"]),
    .target(name: "ModelIO", dependencies: ["TensorCore", "GGML"], exclude: ["README.md"]),
    .target(name: "Quantization", dependencies: ["TensorCore", "GGML", "CKernels"], exclude: ["README.md"]),
    .target(name: "Engine", dependencies: ["TensorCore"], exclude: ["README.md"]),
    .target(name: "Sensitivity", dependencies: ["HDF5", "TensorCore"], exclude: ["README.md"]),
    .target(name: "Validation", dependencies: ["Engine", "Quantization", "TensorCore"], exclude: ["README.md"]),
    .target(
      name: "Reporting", dependencies: ["Allocation", "Quantization", "GGML", "ModelIO", "Sensitivity", "Validation"],
      exclude: ["README.md"]),
    .target(
      name: "Pipeline", dependencies: ["ModelIO", "GGML", "Engine", "Quantization", "Sensitivity", "Allocation", "Validation", "TensorCore"],
      exclude: ["README.md"]),
    // MARK: - Command line
    .executableTarget(
      name: "bitplan",
      dependencies: [
        "TensorCore", "HDF5", "ModelIO", "Quantization", "Engine", "Sensitivity", "Allocation", "Validation", "Pipeline", "Reporting",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    // MARK: - Tests
    .target(name: "_TestSupport", dependencies: ["TensorCore"], path: "Tests/_TestSupport"),
    .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "_TestSupport"]),
    .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "_TestSupport"]),
    .testTarget(name: "GGMLTests", dependencies: ["GGML", "_TestSupport"]),
    .testTarget(name: "ModelIOTests", dependencies: ["ModelIO", "GGML", "_TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(
      name: "QuantizationTests", dependencies: ["Quantization", "GGML", "_TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "EngineTests", dependencies: ["Engine", "ModelIO", "Pipeline", "_TestSupport"]),
    .testTarget(name: "SensitivityTests", dependencies: ["Sensitivity", "HDF5", "_TestSupport"]),
    .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Validation", "_TestSupport"]),
    .testTarget(name: "AllocationTests", dependencies: ["Allocation", "_TestSupport"]),
    .testTarget(name: "ValidationTests", dependencies: ["Validation", "Engine", "Quantization", "_TestSupport"]),
    .testTarget(name: "ReportingTests",
      dependencies: [
        "Reporting", "Allocation", "Quantization", "GGML", "ModelIO", "Sensitivity", "Validation", "TensorCore", "_TestSupport",
      ]),
    .testTarget(
      name: "CLITests",
      dependencies: ["bitplan", "_TestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      exclude: ["HelpSnapshots"]),
  ]
)
