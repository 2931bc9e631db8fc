import Foundation
import GGML
import ModelIO
import Sensitivity
import TensorCore
import Testing

@testable import Reporting

/// The importance matrix read the way llama.cpp reads it. Consumer: llama.cpp (llama-cpp-python 0.3.36's vendored
/// copy) `common/imatrix-loader.cpp` `common_imatrix_load` (the GGUF form: `imatrix.datasets` an array of strings,
/// `imatrix.chunk_count` and `imatrix.chunk_size` u32, all three or the file is refused by `load_imatrix`; tensors
/// `<name>.in_sum2` and `<name>.counts`, both F32, paired by name) and `tools/quantize/quantize.cpp` `load_imatrix`
/// (the weights of tensor `<name>` are `in_sum2[j] / counts`).
@Suite struct LlamaCppImatrixTests {
  /// The tiny run of ReportFixtures with seeded input statistics, the last layer left without (an untied lookup).
  static func run() -> MeasuredRun {
    var run = ReportFixtures.run(blocks: 2)
    var rng = SplitMix64(seed: 11)
    for (i, layer) in run.layers.enumerated() where i < run.layers.count - 1 {
      run.inputSquareMeans[i] = (0..<layer.columns).map { _ in pow(10, Double.random(in: -4...2, using: &rng)) }
    }
    return run
  }

  /// llama.cpp's view of the file: name → weights `in_sum2/counts`, and the three metadata values.
  static func load(_ bytes: [UInt8]) throws -> (weights: [String: [Float]], datasets: [String], chunks: UInt32, chunkSize: UInt32) {
    let file = try GGUFFile(bytes: bytes)
    guard case .string("imatrix") = file.metadata["general.type"] else { throw ExportError(.unsupportedModel, "general.type") }
    guard case .array(.string, let names) = file.metadata["imatrix.datasets"],
      case .uint32(let chunks) = file.metadata["imatrix.chunk_count"],
      case .uint32(let size) = file.metadata["imatrix.chunk_size"]
    else { throw ExportError(.unsupportedModel, "imatrix metadata missing or mistyped") }
    var sums: [String: [Float]] = [:], counts: [String: [Float]] = [:]
    for t in file.tensors {
      #expect(t.type == .f32, "\(t.name) must be F32")
      let values = try file.tensor(named: t.name).storage
      if t.name.hasSuffix(".in_sum2") { sums[String(t.name.dropLast(8))] = values }
      if t.name.hasSuffix(".counts") { counts[String(t.name.dropLast(7))] = values }
    }
    #expect(Set(sums.keys) == Set(counts.keys), "every in_sum2 has its counts")
    var weights: [String: [Float]] = [:]
    for (name, s) in sums {
      let c = try #require(counts[name])
      #expect(c.count == 1 && c[0] > 0)
      weights[name] = s.map { $0 / c[0] }
    }
    return (weights, names.map { if case .string(let s) = $0 { s } else { "" } }, chunks, size)
  }

  @Test func llamaCppReadsTheRunsInputMeanSquares() throws {
    let run = Self.run()
    let imatrix = try LlamaCppImatrix(run: run)
    let (weights, datasets, chunks, size) = try Self.load(try imatrix.serialized())
    #expect(datasets.count == 1 && chunks == 1 && size == UInt32(run.provenance.tokens))
    #expect(weights.count == run.layers.count - 1)
    for (layer, means) in zip(run.layers, run.inputSquareMeans) where !means.isEmpty {
      let name = try #require(NameMapping.ggufName(forHF: layer.name + ".weight"))
      let w = try #require(weights[name], "\(name) missing")
      #expect(w.count == layer.columns)
      // in_sum2 = n·mean in F32, then divided by n in F32: within two F32 roundings of the mean
      #expect(zip(w, means).allSatisfy { abs(Double($0) - $1) <= 3e-7 * $1 }, "\(name)")
    }
  }

  /// A tied embedding gets an entry under the model's own name (llama-imatrix never writes one), with the LM
  /// head's width; the model's names win over the llama mapping.
  @Test func theTiedEmbeddingIsNamedByTheModel() throws {
    var run = Self.run()
    let hidden = run.layers[0].columns
    run.layers.append(.init(name: "model.embed_tokens", rows: 100, columns: hidden))
    run.inputSquareMeans.append([Double](repeating: 0.25, count: hidden))
    var tensors = run.layers.dropLast().map {
      TensorInfo(
        fileName: NameMapping.ggufName(forHF: $0.name + ".weight")!, name: $0.name + ".weight", shape: [$0.rows, $0.columns],
        dtype: "F32", sizeInBytes: 4 * $0.parameterCount)
    }
    tensors.append(TensorInfo(fileName: "token_embd.weight", name: "model.embed_tokens.weight", shape: [100, hidden], dtype: "F32", sizeInBytes: 400 * hidden))
    let (weights, _, _, _) = try Self.load(try LlamaCppImatrix(run: run, tensors: tensors).serialized())
    #expect(weights["token_embd.weight"] == [Float](repeating: 0.25, count: hidden))
    // a model whose tensor has another width is not the run's
    tensors[tensors.count - 1].shape = [100, hidden + 1]
    #expect(throws: ExportError.self) { try LlamaCppImatrix(run: run, tensors: tensors) }
  }

  /// A run measured before `/hessian/input_diagonal` existed has nothing to write: refused with one line.
  @Test func aRunWithoutStatisticsIsRefused() {
    let run = ReportFixtures.run(blocks: 1)
    #expect { try LlamaCppImatrix(run: run) } throws: { ($0 as? ExportError)?.message.contains("measure again") == true }
  }
}
