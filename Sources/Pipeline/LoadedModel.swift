import Engine
import ModelIO
import TensorCore

/// A model read from disk and ready to run: the engine in Float, its tokenizer, and where it came from.
public struct LoadedModel {
  /// The file or folder it was read from.
  public let file: ModelFile
  /// The llama hyper-parameters as stored.
  public let config: LlamaConfig
  /// The Float engine holding the dequantized weights.
  public let model: LlamaModel<Float>
  /// The model's tokenizer.
  public let tokenizer: BPETokenizer

  /// Reads `path` (GGUF or HF folder), dequantizes every tensor the llama architecture needs to Float and builds
  /// the engine. The weights are copied once into the engine; the dequantized tensors are dropped as they go.
  /// - Throws: `ModelIOError` for a bad file, `EngineError` for a model the engine cannot run (missing tensor,
  ///   wrong shape), each naming the file or tensor.
  public static func load(path: String) throws -> LoadedModel {
    try load(path: path, deferring: { _ in [] })
  }

  /// `load(path:)` without reading the layers `deferring` names (module paths of `LlamaModel.plannableLayers`,
  /// given the engine's configuration before any weight is read): they start released, and the caller installs
  /// their packed operators (`PackedModel.install`, `installFileTypes`) before running. So a packed model never
  /// holds the Float values of its packed layers, not even while loading.
  /// - Parameter streaming: leave every weight matrix that is not deferred in the file and read it whenever a pass
  ///   reaches it (`LlamaModel(…streamed:)`; the file is memory-mapped, and a matrix's pages leave the resident set
  ///   once it is read, so the file's pages do not accumulate). Same numbers as the dense model, bit for bit; slower by one read and dequantization per weight and
  ///   pass. A reader that fails later (the file changed under the run) gives NaN, which losses and gradients report.
  public static func load(
    path: String, deferring: (LlamaConfiguration) throws -> Set<String>, streaming: Bool = false
  ) throws -> LoadedModel {
    let file = try ModelFile(path: path)
    let config = try file.llamaConfig()
    let configuration = engineConfiguration(config)
    let deferredLayers = try deferring(configuration)
    let matrices = LlamaModel<Float>.plannableLayers(of: configuration)
    let deferred = Set(matrices.filter { deferredLayers.contains($0.name) }.map(\.weightName))
    let streamedNames = streaming ? Set(matrices.map(\.weightName)).subtracting(deferred) : []
    var weights: LlamaModel<Float>.Weights = [:]
    var readers: [String: WeightReader] = [:]
    let stored = Set(file.tensorInfos.map(\.name))
    for (name, _) in configuration.expectedTensors {
      guard stored.contains(name) else {
        throw ModelIOError(.missingTensor, "the llama architecture needs '\(name)', which the model lacks", path: path)
      }
      if deferred.contains(name) { continue }
      if streamedNames.contains(name) {
        // the file's pages leave the resident set once read: the pass holds the expanded values
        readers[name] = WeightReader(into: { out in (try? file.readValuesDroppingPages(ofTensor: name, into: out)) != nil })
        continue
      }
      weights[name] = WeightTensor(try file.tensor(named: name))
    }
    let model = try LlamaModel<Float>(configuration: configuration, weights: weights, deferred: deferred, streamed: readers)
    return LoadedModel(file: file, config: config, model: model, tokenizer: try file.tokenizer())
  }

  /// ModelIO's hyper-parameters in the engine's terms.
  public static func engineConfiguration(_ c: LlamaConfig) -> LlamaConfiguration {
    LlamaConfiguration(
      hidden: c.hiddenSize, intermediate: c.intermediateSize, layers: c.layerCount, heads: c.headCount,
      kvHeads: c.kvHeadCount, headDim: c.headDim, vocab: c.vocabSize, rmsEps: Double(c.rmsNormEpsilon),
      ropeTheta: Double(c.ropeTheta), tied: c.tieWordEmbeddings)
  }
}
