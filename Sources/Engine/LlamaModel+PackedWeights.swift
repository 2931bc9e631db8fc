import TensorCore

/// The forward's linear products on weights packed once (TensorCore's `PackedWeights`).
///
/// OpenBLAS copies W into its panel layout on every call; the forward of a 128-token window spent 12% of its time
/// there on a Zen 3. So a Float model packs each linear weight on the first forward that reads it unperturbed and
/// keeps the panels with the weight's buffer (`Buffer.packed`), which drops them whenever the values change
/// (`replaceWeight`, release). A streamed weight (models bigger than memory) is packed for each product and not
/// kept, so that it goes through the same kernel. Not packed, and so through OpenBLAS as before:
/// - Double models (the reference path of the checks);
/// - passes with a perturbation (W + εV changes with every Hessian-vector product);
/// - the LM head and the embedding (the head's product gained 3% from packing in a probe, for 113 MB on SmolLM2);
/// - CPUs without AVX2 + FMA, or `BITPLAN_GEMM=openblas` in the environment, or `packsWeights = false`.
/// The backward pass's products (dX = dY · W, dW = dYᵀ · X) stay OpenBLAS's.
extension LlamaModel {
  /// The packed copy of linear weight `name` with `shape` [out, in], made now if the model packs and the weight is
  /// resident; nil where the forward uses OpenBLAS.
  func packedWeight(_ buffer: Buffer<Scalar>, _ name: String, _ shape: [Int]) -> PackedWeights? {
    guard Scalar.self == Float.self, packsWeights, PackedWeights.kernel != .none, !buffer.isReleased else { return nil }
    if let packed = buffer.packed { return packed }
    if streamed.readers[name] != nil {
      // a streamed weight is packed for this product only: the same kernel as in memory, so a streamed model
      // computes the dense model's numbers bit for bit, without keeping a copy of what streaming leaves in the file
      return PackedWeights(Self.floats(readable(buffer, name)), rows: shape[0], columns: shape[1])
    }
    guard buffer.count == shape[0] * shape[1] else { return nil }
    buffer.packed = PackedWeights(Self.floats(buffer.constant), rows: shape[0], columns: shape[1])
    return buffer.packed
  }

  /// Drops every packed copy (made again on the next forward that packs).
  func dropPackedWeights() {
    for block in blocks { for buffer in block.linear { buffer.packed = nil } }
  }

  /// Bytes the packed copies hold now.
  public var packedWeightBytes: Int {
    blocks.reduce(0) { sum, block in sum + block.linear.reduce(0) { $0 + ($1.packed?.byteCount ?? 0) } }
  }
}
