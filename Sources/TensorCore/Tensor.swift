/// A contiguous, row-major tensor of `Float` values.
///
/// The last dimension is the fastest-varying one. For a weight matrix the shape is `[out, in]`, as in PyTorch
/// and Hugging Face checkpoints.
public struct Tensor: Sendable, Equatable {
  /// Dimensions, outermost first.
  public var shape: [Int]
  /// `shape.reduce(1, *)` values, row-major.
  public var storage: [Float]

  /// Creates a tensor from its values.
  /// - Precondition: `storage.count == shape.reduce(1, *)`.
  public init(shape: [Int], storage: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
    precondition(storage.count == shape.reduce(1, *), "storage has \(storage.count) values, shape \(shape) needs \(shape.reduce(1, *))")
    self.shape = shape
    self.storage = storage
  }

  /// A tensor of zeros.
  public init(zeros shape: [Int]) {
    self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
  }

  /// Number of values.
  public var count: Int { storage.count }
  /// Number of dimensions.
  public var rank: Int { shape.count }
  /// Rows of a matrix view: every dimension but the last, multiplied together (1 for a scalar).
  public var rows: Int { shape.dropLast().reduce(1, *) }
  /// Columns of a matrix view: the last dimension (1 for a scalar).
  public var columns: Int { shape.last ?? 1 }
}
