import TensorCore

/// One named parameter as handed to `LlamaModel(configuration:weights:)`: shape plus row-major values.
///
/// Linear weights are `[out, in]` (PyTorch/HF layout); norm weights are `[n]`. Q and K rows must already be in HF
/// rotate-half order (GGUF's interleaved-RoPE permutation undone by the loader).
public struct WeightTensor<Scalar: EngineScalar>: Sendable, Equatable {
  /// Dimensions, outermost first.
  public var shape: [Int]
  /// `shape.reduce(1, *)` values, row-major.
  public var values: [Scalar]

  /// Wraps `values`; the count is checked against `shape` by `LlamaModel.init`, which names the tensor.
  public init(shape: [Int], values: [Scalar]) {
    self.shape = shape
    self.values = values
  }
}

extension WeightTensor where Scalar == Float {
  /// A TensorCore tensor (what ModelIO returns), shape and values unchanged.
  public init(_ tensor: Tensor) { self.init(shape: tensor.shape, values: tensor.storage) }
}

extension WeightTensor where Scalar == Double {
  /// A TensorCore tensor widened to Double (exact).
  public init(_ tensor: Tensor) { self.init(shape: tensor.shape, values: tensor.storage.map(Double.init)) }
}

/// A linear layer of the model: its HF module path, its weight's tensor name and its `[out, in]` shape.
///
/// Naming rule of the engine: *layers* (input capture, plans, reports) are module paths such as
/// `model.layers.0.self_attn.q_proj`; *tensors* (weights, gradients, HVP vectors, `replaceWeight`) are tensor names
/// with the `.weight` suffix, `model.layers.0.self_attn.q_proj.weight`. `weightName == name + ".weight"`.
public struct LinearLayer: Sendable, Hashable, Codable {
  /// HF module path, e.g. `model.layers.3.mlp.down_proj`.
  public var name: String
  /// Tensor name of the weight, `name + ".weight"`.
  public var weightName: String { name + ".weight" }
  /// Block index `N` in `model.layers.N`.
  public var block: Int
  /// Output features (rows of the weight).
  public var outFeatures: Int
  /// Input features (columns of the weight; width of the captured input activations).
  public var inFeatures: Int
  /// Number of weights, `outFeatures · inFeatures`.
  public var parameterCount: Int { outFeatures * inFeatures }
}
