import Dispatch
import TensorCore

/// Running a packed tensor: dequantize, GEMV and GEMM.
extension PackedTensor {
  /// All weights as Float, row-major `[rows, columns]`.
  public func dequantize(variant: KernelVariant = .best) -> [Float] {
    var out = [Float](repeating: 0, count: rows * columns)
    out.withUnsafeMutableBufferPointer { dequantizeRows(0..<rows, into: $0, variant: variant) }
    return out
  }

  /// Dequantizes rows `range` into `out` (`range.count · columns` values).
  public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutableBufferPointer<Float>, variant: KernelVariant = .best) {
    precondition(range.lowerBound >= 0 && range.upperBound <= rows && out.count == range.count * columns,
      "rows \(range) of \(rows) into \(out.count) values")
    let size = rowSizeInBytes
    withRows(range) { src in
      for r in 0..<range.count {
        RowCodec.dequantizeRow(
          format, UnsafeRawBufferPointer(rebasing: src[(r * size)..<((r + 1) * size)]),
          UnsafeMutableBufferPointer(rebasing: out[(r * columns)..<((r + 1) * columns)]), variant: variant)
      }
    }
  }

  /// `y = W x` for one activation vector (`x.count == columns`, `y.count == rows`).
  ///
  /// - `.float`: each row is dequantized into a scratch row and dotted with x (reference: reference dequantizer and
  ///   a Double dot; simd: block dequantizer and a 4 × SIMD8 dot).
  /// - `.int8`: x is quantized once to `Q8Activations`; each row's codes meet it in Int32 block sums (reference:
  ///   generic decode + Double; simd: fused kernels for q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q6_K, int4 and int8, else decode +
  ///   Float; intrinsics and portableC: int4 and int8 through `CKernels`, other formats as simd).
  ///   Formats without integer codes use `.float`.
  /// `threads` > 1 splits the rows over that many workers (`DispatchQueue.concurrentPerform`); results are identical.
  public func gemv(
    _ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>,
    activations: ActivationPrecision = .float, variant: KernelVariant = .best, threads: Int = 1
  ) {
    precondition(x.count == columns && y.count == rows, "gemv: W [\(rows), \(columns)], x \(x.count), y \(y.count)")
    guard rows > 0 else { return }
    if activations == .int8 && format.hasIntegerCodes && columns > 0 {
      gemvInt8(Q8Activations(x, blockSize: activationBlockSize), into: y, variant: variant, threads: threads)
      return
    }
    splitRows(threads: threads, y) { range, out in
      let size = rowSizeInBytes
      withUnsafeTemporaryAllocation(of: Float.self, capacity: max(columns, 1)) { scratch in
        let row = UnsafeMutableBufferPointer(rebasing: scratch[0..<columns])
        withRows(range) { src in
          for r in 0..<range.count {
            RowCodec.dequantizeRow(format, UnsafeRawBufferPointer(rebasing: src[(r * size)..<((r + 1) * size)]), row, variant: variant)
            guard let w = row.baseAddress, let xs = x.baseAddress else { out[r] = 0; continue }
            out[r] = variant == .reference ? Float(FloatDot.reference(w, xs, count: columns)) : FloatDot.simd(w, xs, count: columns)
          }
        }
      }
    }
  }

  /// Calls `body` on `threads` contiguous row ranges in parallel (`DispatchQueue.concurrentPerform`), each with its
  /// slice of `y`. Rows are computed identically however they are split.
  func splitRows(
    threads: Int, _ y: UnsafeMutableBufferPointer<Float>, _ body: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void
  ) {
    let parts = max(1, min(threads, rows))
    if parts == 1 { return body(0..<rows, y) }
    let chunk = (rows + parts - 1) / parts
    nonisolated(unsafe) let out = y
    withoutActuallyEscaping(body) { body in
      nonisolated(unsafe) let work = body
      DispatchQueue.concurrentPerform(iterations: parts) { t in
        let range = (t * chunk)..<min(rows, (t + 1) * chunk)
        if !range.isEmpty { work(range, UnsafeMutableBufferPointer(rebasing: out[range])) }
      }
    }
  }

  /// `gemv` for arrays.
  public func gemv(
    _ x: [Float], activations: ActivationPrecision = .float, variant: KernelVariant = .best, threads: Int = 1
  ) -> [Float] {
    var y = [Float](repeating: 0, count: rows)
    x.withUnsafeBufferPointer { xs in
      y.withUnsafeMutableBufferPointer { gemv(xs, into: $0, activations: activations, variant: variant, threads: threads) }
    }
    return y
  }

  /// Whether the int8-activation GEMV has a fused kernel for this format (q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q6_K,
  /// int4 and int8 at any group size). Other integer formats go through the generic decode, which is slower than
  /// the Float path, so an engine should pick `.int8` only when this is true.
  public var hasFusedInt8Kernel: Bool {
    switch format.scheme {
    case .ggml(let type): return [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K].contains(type)
    case .integer(let bits): return bits == 4 || bits == 8
    default: return false
    }
  }

  /// The activation block the int8 path uses for this format: 32 for GGML types (as ggml's q8_0), `nil` (one
  /// scale per vector) for the integer and ternary formats.
  public var activationBlockSize: Int? {
    if case .ggml = format.scheme { return 32 }
    return nil
  }

  /// The int8-activation GEMV against already quantized activations (`a.count == columns`; any block size works,
  /// the fused kernels need `activationBlockSize`).
  public func gemvInt8(
    _ a: Q8Activations, into y: UnsafeMutableBufferPointer<Float>, variant: KernelVariant = .best, threads: Int = 1
  ) {
    precondition(format.hasIntegerCodes, "\(format.name) has no integer codes")
    precondition(a.count == columns && y.count == rows, "gemv: W [\(rows), \(columns)], a \(a.count), y \(y.count)")
    if let kernels = IntDot.cKernels(variant),
      let call = IntDot.cCall(format, columns: columns, rowBytes: rowSizeInBytes, activationBlock: a.blockSize) {
      return gemvInt8C(call, a, kernels, into: y, threads: threads)
    }
    a.codes16.withUnsafeBufferPointer { codes16 in
      a.codes.withUnsafeBufferPointer { codes in
        a.scales.withUnsafeBufferPointer { scales in
          a.sums16.withUnsafeBufferPointer { sums in
            a.nibblePlanes.withUnsafeBufferPointer { planes in
              a.bytePlanes.withUnsafeBufferPointer { bytePlanes in
                let act = IntDot.Activations(
                  codes: codes.baseAddress!, scales: scales.baseAddress!, sums16: sums.baseAddress!,
                  codes16: codes16.baseAddress!, blockSize: a.blockSize, planes: planes.isEmpty ? nil : planes.baseAddress,
                  bytePlanes: bytePlanes.isEmpty ? nil : bytePlanes.baseAddress)
                splitRows(threads: threads, y) { range, out in
                  withRows(range) { src in
                    if variant == .reference || !fusedRows(src, act, out) { decodedRows(src, act, out, variant: variant) }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// Runs the fused kernel for this format and activation block over the `y.count` rows in `src`; false when there
  /// is none.
  func fusedRows(_ src: UnsafeRawBufferPointer, _ act: IntDot.Activations, _ y: UnsafeMutableBufferPointer<Float>) -> Bool {
    guard let base = src.baseAddress else { return true }
    let size = rowSizeInBytes
    switch format.scheme {
    case .ggml(.q4_0) where act.blockSize == 32:
      for r in 0..<y.count { y[r] = IntDot.q4_0(base + r * size, blocks: columns / 32, act) }
    case .ggml(.q8_0) where act.blockSize == 32:
      for r in 0..<y.count { y[r] = IntDot.q8_0(base + r * size, blocks: columns / 32, act) }
    case .ggml(.q4_K) where act.blockSize == 32:
      for r in 0..<y.count { y[r] = IntDot.q4_K(base + r * size, superBlocks: columns / 256, act) }
    case .ggml(.q6_K) where act.blockSize == 32:
      for r in 0..<y.count { y[r] = IntDot.q6_K(base + r * size, superBlocks: columns / 256, act) }
    case .ggml(let type) where (type == .q4_1 || type == .q5_0 || type == .q5_1) && act.blockSize == 32:
      for r in 0..<y.count { y[r] = IntDot.legacy(type, base + r * size, blocks: columns / 32, act) }
    case .integer(let bits) where (bits == 4 || bits == 8) && act.blockSize >= columns:
      let length = format.groupSize ?? columns
      let chunkValues = (length + 31) / 32 * 32
      withUnsafeTemporaryAllocation(of: Int32.self, capacity: columns / length) { groupSums in
        // Σ a per weight group, once per activation vector (the zero-point correction of every row).
        for g in 0..<(columns / length) { groupSums[g] = IntDot.activationSum(act, from: g * chunkValues, count: chunkValues) }
        let planes = bits == 4 && IntDot.usesNibblePlanes(columns: columns, length: length) ? act.planes : nil
        if let planes, length % 128 == 0, length < columns, length <= IntDot.int4GroupsMaxLength {
          for r in 0..<y.count {
            y[r] = IntDot.int4Groups(base + r * size, columns: columns, length: length, symmetric: format.symmetric, act, planes: planes)
          }
          return
        }
        for r in 0..<y.count {
          y[r] = IntDot.integer(base + r * size, columns: columns, length: length, bits: bits, symmetric: format.symmetric,
            act, groupSums: groupSums.baseAddress!, planes: planes)
        }
      }
    default: return false
    }
    return true
  }

  /// Any integer format through `DecodedIntRow`: Double sums (reference) or Float sums (simd).
  func decodedRows(
    _ src: UnsafeRawBufferPointer, _ act: IntDot.Activations, _ y: UnsafeMutableBufferPointer<Float>, variant: KernelVariant
  ) {
    let size = rowSizeInBytes
    let units = (columns + 15) / 16
    let codes = UnsafeMutablePointer<Int16>.allocate(capacity: 16 * units)
    let factors = UnsafeMutablePointer<Float>.allocate(capacity: 2 * units)
    defer { codes.deallocate(); factors.deallocate() }
    codes.initialize(repeating: 0, count: 16 * units)
    let decoded = DecodedIntRow(codes: codes, scales: factors, offsets: factors + units)
    for r in 0..<y.count {
      RowCodec.decodeIntRow(format, UnsafeRawBufferPointer(rebasing: src[(r * size)..<((r + 1) * size)]), columns: columns, into: decoded)
      y[r] = variant == .reference
        ? Float(IntDot.decodedReference(decoded, columns: columns, act))
        : IntDot.decodedFast(decoded, columns: columns, act)
    }
  }

  /// `Y = X Wᵀ` for a batch of tokens: X `[tokens, columns]`, Y `[tokens, rows]`, row-major.
  ///
  /// simd (and the C variants): `gemmFloat` (tiles of rows dequantized by the block decoders, `BLAS.sgemm`);
  /// reference: `gemv(.float, .reference)` per token.
  public func gemm(_ X: [Float], tokens: Int, variant: KernelVariant = .best) -> [Float] {
    precondition(X.count == tokens * columns, "gemm: X has \(X.count) values, [\(tokens), \(columns)] expected")
    var Y = [Float](repeating: 0, count: tokens * rows)
    guard tokens > 0, rows > 0 else { return Y }
    if variant == .reference || columns == 0 {
      for t in 0..<tokens {
        let y = gemv(Array(X[(t * columns)..<((t + 1) * columns)]), activations: .float, variant: .reference)
        for r in 0..<rows { Y[t * rows + r] = y[r] }
      }
      return Y
    }
    X.withUnsafeBufferPointer { x in Y.withUnsafeMutableBufferPointer { gemmFloat(x.baseAddress!, tokens: tokens, into: $0.baseAddress!) } }
    return Y
  }
}
