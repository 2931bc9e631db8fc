import TensorCore

/// The forward's linear products on weights packed once (TensorCore's `PackedWeights`).
///
/// OpenBLAS copies W into its panel layout on every call; the forward of a 128-token window spent 12% of its time
/// there on a Zen 3. So a Float model packs each linear weight on the first forward that reads it unperturbed and
/// keeps the panels with the weight's buffer (`Buffer.packed`), which drops them whenever the values change
/// (`replaceWeight`, release). A streamed weight (models bigger than memory) goes through the same kernel with
/// each panel packed just before its sweep, so a streamed model computes the dense model's numbers bit for bit
/// without keeping anything of W's size. The LM head goes the same panel-at-a-time way (`panelProduct`; packing
/// SmolLM2's 113 MB table once gained nothing over it), and so do the linear layers of a perturbed pass (W + εV
/// changes with every Hessian-vector product) up to `BLAS.packedBlockRows` tokens; past that each panel would be
/// packed once per block of rows, and OpenBLAS was faster (`scripts/sgemm_probe/packed_forward.c`, one thread, Xeon
/// family 6 model 207: SmolLM2's 210 products at T = 128 took 214 ms this way against OpenBLAS's 231, at T = 512
/// 776 against 733–744). Through OpenBLAS as before:
/// - Double models (the reference path of the checks);
/// - perturbed passes over more than `BLAS.packedBlockRows` tokens;
/// - CPUs without AVX2 + FMA, or `BITPLAN_GEMM=openblas` in the environment, or `packsWeights = false`.
/// In the backward pass, the input gradients dX = dY · W and the weight gradients dW = dYᵀ · X of windows up to 256
/// tokens run through the same kernel (`EngineScalar.inputGradient`, `EngineScalar.weightGradient`).
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
    return panelProduct(
      readable(buffer, name), rows: rows, columns: columns, ldw: columns, x, tokens: tokens, y, ldy: ldy,
      accumulate: accumulate)
  }

  /// Y[T, rows] ← X[T, columns] · Wᵀ (+ Y when `accumulate`) with W [rows, columns] as it lies (row stride `ldw`),
  /// through the packed kernel with each panel packed just before its sweep (`BLAS.sgemm(…weights:…)`): the LM head
  /// and the linear layers of a perturbed pass, whose W + εV changes with every product. The bits of the packed
  /// copy's product, so a perturbed pass computes the layers V leaves alone exactly as the unperturbed pass did.
  /// False (nothing done) for Double models, `packsWeights = false`, or no packed kernel.
  func panelProduct(
    _ w: UnsafePointer<Scalar>, rows: Int, columns: Int, ldw: Int, _ x: UnsafePointer<Scalar>, tokens: Int,
    _ y: UnsafeMutablePointer<Scalar>, ldy: Int, accumulate: Bool
  ) -> Bool {
    guard Scalar.self == Float.self, packsWeights else { return false }
    return BLAS.sgemm(
      m: tokens, a: Self.floats(x), lda: columns, weights: Self.floats(w), rows: rows, columns: columns, ldw: ldw,
      accumulate: accumulate, c: Self.floats(y), ldc: ldy)
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
