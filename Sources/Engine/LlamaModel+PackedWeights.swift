import TensorCore

/// The forward's linear products on weights packed once (TensorCore's `PackedWeights`).
///
/// OpenBLAS copies W into its panel layout on every call; the forward of a 128-token window spent 12% of its time
/// there on a Zen 3. So a Float model packs each linear weight on the first forward that reads it unperturbed and
/// keeps the panels with the weight's buffer (`Buffer.packed`), which drops them whenever the values change
/// (`replaceWeight`, release). A streamed weight (models bigger than memory) goes through the same kernel with
/// each panel packed just before its sweep, so a streamed model computes the dense model's numbers bit for bit
/// without keeping anything of W's size. Through OpenBLAS as before:
/// - Double models (the reference path of the checks);
/// - passes with a perturbation (W + εV changes with every Hessian-vector product);
/// - the LM head and the embedding (packing SmolLM2's 113 MB table gained nothing measurable in alternated runs of
///   `bench engine` on a Zen 3: T = 512 forward 0.963–1.353 s packed, 0.938–1.030 s not);
/// - CPUs without AVX2 + FMA, or `BITPLAN_GEMM=openblas` in the environment, or `packsWeights = false`.
/// In the backward pass, dX = dY · W stays OpenBLAS's; the weight gradients dW = dYᵀ · X of windows up to 256 tokens
/// run through the same kernel (`EngineScalar.weightGradient`).
extension LlamaModel {
  /// Y[T, rows] ← X[T, columns] · Wᵀ (+ Y when `accumulate`; Y's row stride `ldy`) through the packed kernel, for
  /// the weight `name` held in `buffer`, when this model packs; false (nothing done) where the caller uses OpenBLAS.
  /// A resident weight is packed on first use and the copy kept with its buffer; a streamed one is multiplied with
  /// each panel packed just before its sweep (the same bits, nothing of W's size kept).
  func packedProduct(
    _ buffer: Buffer<Scalar>, _ name: String, rows: Int, columns: Int, _ x: UnsafePointer<Scalar>, tokens: Int,
    _ y: UnsafeMutablePointer<Scalar>, ldy: Int, accumulate: Bool
  ) -> Bool {
    guard Scalar.self == Float.self, packsWeights, PackedWeights.kernel != .none, !buffer.isReleased else { return false }
    let streams = streamed.readers[name] != nil
    if buffer.packed == nil, !streams, buffer.count == rows * columns {
      buffer.packed = PackedWeights(Self.floats(buffer.constant), rows: rows, columns: columns)
    }
    if let packed = buffer.packed {
      BLAS.sgemm(m: tokens, a: Self.floats(x), lda: columns, packed: packed, accumulate: accumulate, c: Self.floats(y), ldc: ldy)
      return true
    }
    guard streams else { return false }
    return BLAS.sgemm(
      m: tokens, a: Self.floats(x), lda: columns, weights: Self.floats(readable(buffer, name)), rows: rows,
      columns: columns, ldw: columns, accumulate: accumulate, c: Self.floats(y), ldc: ldy)
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
