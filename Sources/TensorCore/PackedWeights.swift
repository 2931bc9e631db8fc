import CKernels
#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A linear layer's weight W [n, k] packed once into the panels `BLAS.sgemm(m:a:lda:packed:…)` reads, so that the
/// forward products Y = X · Wᵀ skip the copy of W that OpenBLAS makes on every call (12% of a 128-token forward
/// on a Zen 3, 19% on an Ice Lake). The kernel is ours (CKernels' sgemm_packed.c): AVX-512 where the CPU has it,
/// else AVX2 + FMA; on other CPUs there is nothing to pack (`kernel == .none`) and callers keep using OpenBLAS.
///
/// Memory: one more copy of W (n rounded up to the panel width × k floats). The packed copy does not follow later
/// changes of W: whoever changes W drops it.
///
/// Numerics: every element is one FMA chain per block of at most 256 k steps, blocks added in order
/// (`bp_packed_sgemm_reference` is the twin, equal bit for bit); it differs from OpenBLAS's order in the last bits.
public final class PackedWeights: @unchecked Sendable {
  /// Which of CKernels' packed GEMMs runs.
  public enum Kernel: Int32, Sendable, CustomStringConvertible {
    /// No packed kernel: OpenBLAS for every product (no AVX2 + FMA, or `BITPLAN_GEMM=openblas`).
    case none = 0
    /// AVX2 + FMA, a 4 × 24 register tile (12 ymm accumulators).
    case avx2 = 1
    /// AVX-512 F/CD/BW/DQ/VL, an 8 × 48 tile (24 zmm accumulators).
    case avx512 = 2
    /// The AVX-512 kernel's text compiled for AVX2 (tests only: checks its indexing on CPUs without AVX-512).
    case wideOnAVX2 = 3
    /// AVX-512 with a 6 × 64 tile, for attention's products (`BLAS.attentionProduct`): 64 columns (the head
    /// dimension) or a multiple of 64, which the 8 × 48 tile covers in 96.
    case avx512N64 = 4
    /// The 6 × 64 kernel's text compiled for AVX2 (tests only).
    case n64OnAVX2 = 5

    public var description: String {
      switch self {
      case .none: "none"
      case .avx2: "AVX2 + FMA, 4×24 tile"
      case .avx512: "AVX-512, 8×48 tile"
      case .wideOnAVX2: "AVX-512 text on AVX2 (test)"
      case .avx512N64: "AVX-512, 6×64 tile"
      case .n64OnAVX2: "AVX-512 6×64 text on AVX2 (test)"
      }
    }

    /// Columns per panel (the tile's width); 0 for `.none`.
    public var panelWidth: Int { Int(bp_packed_sgemm_panel(rawValue)) }
  }

  /// The kernel this process uses, decided once: the best the CPU runs (`bp_packed_sgemm_variant`), unless the
  /// environment says `BITPLAN_GEMM=openblas`, or the kernel failed its start-up check (`selfCheck`). Read by the
  /// engine before packing, and printed by `bitplan bench`.
  public static var kernel: Kernel { choice.kernel }

  /// Why `kernel` is what it is, for `bench`: "AVX2 + FMA, 4×24 tile", or the reason it is none.
  public static var kernelDescription: String { choice.why }

  /// `kernel` and `kernelDescription`, decided together once.
  static let choice: (kernel: Kernel, why: String) = {
    if let value = getenv("BITPLAN_GEMM"), String(cString: value).lowercased() == "openblas" {
      return (.none, "none (BITPLAN_GEMM=openblas)")
    }
    let best = Kernel(rawValue: bp_packed_sgemm_variant()) ?? .none
    if best == .none { return (.none, "none (the CPU has neither AVX-512 nor AVX2 + FMA)") }
    return selfCheck(best) ? (best, best.description) : (.none, "none (the \(best) kernel failed its start-up check)")
  }()

  /// The kernel of attention's products (`BLAS.attentionProduct`): `.avx512N64` where `kernel` is `.avx512` and the
  /// 6 × 64 kernel passes its own start-up check, else `.none` (OpenBLAS). On AVX2 the 4 × 24 kernel was no faster
  /// than OpenBLAS on these shapes (64 GFLOP/s on q·kᵀ blocks, 54 on P·v, in a probe on a Zen 3), so it is not used.
  public static let attentionKernel: Kernel = kernel == .avx512 && selfCheck(.avx512N64) ? .avx512N64 : .none

  /// Rows of W (n: the product's output width).
  public let rows: Int
  /// Columns of W (k: the product's input width).
  public let columns: Int
  /// The kernel these panels are laid out for.
  public let layout: Kernel
  let storage: UnsafeMutablePointer<Float>

  /// Packs W [rows, columns] (row stride `columns`) for `kernel`, the panels split over the workers; nil when there
  /// is no packed kernel.
  public convenience init?(_ w: UnsafePointer<Float>, rows: Int, columns: Int) {
    self.init(w, rows: rows, columns: columns, layout: Self.kernel)
  }

  /// Packs for a given kernel (tests pick `.wideOnAVX2`); nil for `.none` or a kernel this CPU cannot run.
  public init?(_ w: UnsafePointer<Float>, rows: Int, columns: Int, layout: Kernel) {
    precondition(rows >= 0 && columns >= 0, "negative shape \(rows)×\(columns)")
    guard bp_packed_sgemm_runnable(layout.rawValue) == 1 else { return nil }
    let floats = bp_packed_sgemm_size(layout.rawValue, rows, columns)
    guard let raw = aligned_alloc(64, (max(floats, 1) * 4 + 63) / 64 * 64) else { return nil }
    (self.rows, self.columns, self.layout) = (rows, columns, layout)
    storage = raw.bindMemory(to: Float.self, capacity: max(floats, 1))
    let width = layout.panelWidth, panels = (rows + width - 1) / width
    let pieces = Parallel.isInsideWorker ? 1 : max(1, min(Parallel.workers, panels))
    let out = storage
    Parallel.forEach(pieces) { p in
      let rc = bp_packed_sgemm_pack(layout.rawValue, w, columns, rows, columns, out, p * panels / pieces, (p + 1) * panels / pieces)
      precondition(rc == 0, "bp_packed_sgemm_pack failed")
    }
  }

  deinit { free(storage) }

  /// Calls `body` with the panels (for CKernels' functions directly: tests of other splits).
  public func withUnsafePanels<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R { try body(storage) }

  /// Bytes of the packed copy.
  public var byteCount: Int { bp_packed_sgemm_size(layout.rawValue, rows, columns) * 4 }

  /// Runs `kernel` on a small product with ragged edges against the plain twin; false if any element differs.
  /// Guards a kernel whose instruction set the build machine could not run (AVX-512 on an AVX2 builder).
  static func selfCheck(_ kernel: Kernel) -> Bool {
    let (m, n, k) = (13, kernel.panelWidth * 2 + 5, 517)
    var state: UInt64 = 0x5EED_BA5E
    func next() -> Float {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return Float(Int32(truncatingIfNeeded: state >> 32)) / 0x1p31
    }
    let a = (0..<m * k).map { _ in next() }, w = (0..<n * k).map { _ in next() }
    var fast = [Float](repeating: 0, count: m * n), plain = fast
    let packed = w.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, rows: n, columns: k, layout: kernel) }
    guard let packed else { return false }
    let rc = fast.withUnsafeMutableBufferPointer { c in
      a.withUnsafeBufferPointer {
        bp_packed_sgemm(kernel.rawValue, m, n, k, $0.baseAddress!, k, packed.storage, 0, c.baseAddress!, n, 0, n)
      }
    }
    bp_packed_sgemm_reference(m, n, k, Int(BP_PACKED_KC), a, k, w, k, 0, &plain, n)
    // bp_sgemm_tn on the same numbers, A read as [k, m] and W as B [k, n]
    var fastTN = [Float](repeating: 0, count: m * n), plainTN = fastTN
    let rcTN = fastTN.withUnsafeMutableBufferPointer { c in
      bp_sgemm_tn(kernel.rawValue, m, n, k, a, m, w, n, 0, c.baseAddress!, n, 0, n)
    }
    bp_sgemm_tn_reference(m, n, k, Int(BP_PACKED_KC), a, m, w, n, 0, &plainTN, n)
    func same(_ x: [Float], _ y: [Float]) -> Bool { zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern } }
    return rc == 0 && rcTN == 0 && same(fast, plain) && same(fastTN, plainTN)
  }
}

extension BLAS {
  /// C[m, n] ← A[m, k] · Wᵀ, or += when `accumulate`, with W [n, k] packed (`PackedWeights`); A and C row-major
  /// with row strides `lda` ≥ k and `ldc` ≥ n. C is split over `Parallel.workers` (`inParts`: rows when m is
  /// large, else columns at panel boundaries; one piece inside a worker or for a small product); the result does not
  /// depend on the split.
  /// - Complexity: O(m·n·k).
  public static func sgemm(
    m: Int, a: UnsafePointer<Float>, lda: Int, packed: PackedWeights, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    let (n, k, layout, storage) = (packed.rows, packed.columns, packed.layout, UnsafePointer(packed.storage))
    precondition(lda >= k && ldc >= n, "packed sgemm: lda \(lda) < k \(k) or ldc \(ldc) < n \(n)")
    inParts(m: m, n: n, k: k, kernel: layout) { i0, i1, j0, j1 in
      bp_packed_sgemm(layout.rawValue, i1 - i0, n, k, a + i0 * lda, lda, storage, accumulate ? 1 : 0, c + i0 * ldc, ldc, j0, j1)
    }
  }

  /// The same product, bit for bit, with W [n, k] as stored (row stride `ldw` ≥ k) and `PackedWeights.kernel`
  /// packing each panel just before its sweep: no copy of W's size (a streamed weight, an embedding table). False,
  /// with C untouched, when there is no packed kernel (`PackedWeights.kernel == .none`).
  /// - Complexity: O(m·n·k).
  @discardableResult
  public static func sgemm(
    m: Int, a: UnsafePointer<Float>, lda: Int, weights w: UnsafePointer<Float>, rows n: Int, columns k: Int, ldw: Int,
    accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
  ) -> Bool {
    let layout = PackedWeights.kernel
    guard layout != .none else { return false }
    precondition(ldw >= k && lda >= k && ldc >= n, "packed sgemm: ldw \(ldw), lda \(lda) < k \(k) or ldc \(ldc) < n \(n)")
    inParts(m: m, n: n, k: k, kernel: layout) { i0, i1, j0, j1 in
      bp_packed_sgemm_rows(layout.rawValue, i1 - i0, n, k, a + i0 * lda, lda, w, ldw, accumulate ? 1 : 0, c + i0 * ldc, ldc, j0, j1)
    }
    return true
  }

  /// C[m, n] ← Aᵀ · B, or += when `accumulate`, through the packed kernel (CKernels' `bp_sgemm_tn`): A stored
  /// [k, m] (row stride `lda`), B stored [k, n] (row stride `ldb`); a weight gradient dW = dYᵀ · X. Split over the
  /// workers as the forward's products (`inParts`); the result does not depend on the split, and equals
  /// `bp_sgemm_tn_reference` bit for bit. False, with C untouched, when there is no packed kernel
  /// (`PackedWeights.kernel == .none`, e.g. `BITPLAN_GEMM=openblas`).
  /// - Parameter streaming: C is written once and not read soon (a fresh gradient array): with k ≤
  ///   `weightGradientDepth` and C overwritten, the AVX-512 kernel writes it with non-temporal stores
  ///   (`BP_GEMM_STREAM`), which skip reading each line of C into cache first (the AVX2 kernel, whose tile rows are
  ///   a line and a half, keeps ordinary stores). The same values either way.
  /// - Complexity: O(m·n·k).
  @discardableResult
  public static func sgemmTN(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int, streaming: Bool = false
  ) -> Bool {
    productOnStoredB(
      aTransposed: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
      flags: Int32((accumulate ? BP_GEMM_ACCUMULATE : 0) | (streaming ? BP_GEMM_STREAM : 0)), c: c, ldc: ldc)
  }

  /// C[m, n] ← A · B, or += when `accumulate`, through the packed kernel (CKernels' `bp_sgemm_nn`): A stored
  /// [m, k] (row stride `lda`), B stored [k, n] (row stride `ldb`); an input gradient dX = dY · W with W [out, in] as
  /// it lies. Split as `sgemmTN`; the same bits as `bp_sgemm_nn_reference`. False, with C untouched, when there is
  /// no packed kernel.
  /// - Complexity: O(m·n·k).
  @discardableResult
  public static func sgemmNN(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, accumulate: Bool,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) -> Bool {
    productOnStoredB(
      aTransposed: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
      flags: Int32(accumulate ? BP_GEMM_ACCUMULATE : 0), c: c, ldc: ldc)
  }

  /// `sgemmTN` (A stored [k, m]) or `sgemmNN` (A stored [m, k]): B stored [k, n], split over the workers by
  /// `inParts`; `flags` as CKernels' `bp_sgemm_tn` takes them.
  private static func productOnStoredB(
    aTransposed: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    flags: Int32, c: UnsafeMutablePointer<Float>, ldc: Int
  ) -> Bool {
    let layout = PackedWeights.kernel
    guard layout != .none else { return false }
    precondition(
      lda >= max(aTransposed ? m : k, 1) && ldb >= max(n, 1) && ldc >= max(n, 1),
      "packed sgemm on B [k, n]: leading dimensions lda=\(lda) ldb=\(ldb) ldc=\(ldc) too small for m=\(m) n=\(n) k=\(k)")
    inParts(m: m, n: n, k: k, kernel: layout) { i0, i1, j0, j1 in
      aTransposed
        ? bp_sgemm_tn(layout.rawValue, i1 - i0, n, k, a + i0, lda, b, ldb, flags, c + i0 * ldc, ldc, j0, j1)
        : bp_sgemm_nn(layout.rawValue, i1 - i0, n, k, a + i0 * lda, lda, b, ldb, flags, c + i0 * ldc, ldc, j0, j1)
    }
    return true
  }

  /// One of attention's products on one thread (`CausalAttention` runs them inside its own tasks): C[m, n] ← A · Bᵀ
  /// (q·kᵀ, dO·vᵀ; B stored [n, k], packed a panel at a time as `bp_packed_sgemm_rows` does) or A · B (P·v, dS·k;
  /// B stored [k, n], as `sgemmNN` computes it), or += when `accumulate`, row-major with row strides `lda`, `ldb`,
  /// `ldc` as `sgemm` takes them, through `PackedWeights.attentionKernel`. Each equals its plain twin bit for bit.
  /// False, with C untouched, when there is no attention kernel or for a transposed A: the caller then uses `sgemm`.
  ///
  /// Why (scripts/sgemm_probe/attention.c, one thread, Xeon family 6 model 207, SmolLM2's heads over 10 layers): at
  /// T = 512 q·kᵀ took 13.5–14.1 ms on the 6 × 64 kernel against 18.9–20.8 on OpenBLAS, P·v 11.5–11.8 against
  /// 14.7–15.2 (at T = 128: 1.1 against 1.6–1.7, and 0.9–1.0 against 0.8–0.9); the backward's Pᵀ·dO ran no faster
  /// at 512 (17.7–18.1 against 17.0–17.4) and slower at 128 (1.3–1.4 against 0.8–0.9), so Aᵀ · B stays OpenBLAS's.
  /// - Complexity: O(m·n·k).
  @discardableResult
  public static func attentionProduct(
    transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
  ) -> Bool {
    attentionProduct(
      kernel: PackedWeights.attentionKernel, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
      accumulate: accumulate, c: c, ldc: ldc)
  }

  /// `attentionProduct` on a given kernel (tests run every kernel this CPU can; false for `.none`).
  public static func attentionProduct(
    kernel: PackedWeights.Kernel, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
  ) -> Bool {
    guard kernel != .none else { return false }
    precondition(m >= 0 && n >= 0 && k >= 0, "attention product: m \(m), n \(n), k \(k)")
    precondition(
      lda >= max(k, 1) && ldb >= max(transposeB ? k : n, 1) && ldc >= max(n, 1),
      "attention product: leading dimensions lda=\(lda) ldb=\(ldb) ldc=\(ldc) too small for m=\(m) n=\(n) k=\(k)")
    let (v, add) = (kernel.rawValue, Int32(accumulate ? BP_GEMM_ACCUMULATE : 0))
    let rc =
      transposeB
      ? bp_packed_sgemm_rows(v, m, n, k, a, lda, b, ldb, add, c, ldc, 0, n)
      : bp_sgemm_nn(v, m, n, k, a, lda, b, ldb, add, c, ldc, 0, n)
    precondition(rc == 0, "attention product failed (kernel \(kernel))")
    return true
  }

  /// An input gradient C[m, n] ← A · B + β · C (A = dY [m, k], B = W [k, n] as it lies), the backward's dX = dY · W.
  /// With β = 0 or 1 and m ≤ `packedBlockRows` it runs through the packed kernel (`sgemmNN`, when there is one);
  /// otherwise `sgemm`. Past one block of rows, the kernel packs each k block of B once per block of rows, and
  /// OpenBLAS was faster (`scripts/sgemm_probe/input_gradient.c`, one thread, Xeon family 6 model 207: SmolLM2's 210
  /// products at 128 tokens took 197–200 ms against OpenBLAS's 222–227, the LM head's 54 against 63–65; at 512,
  /// 760–774 against 705–721 before A and whole panels of B were read where they lie; with the next panel of W
  /// fetched into L2 during each panel's sweep, 200 → 180 ms at 128 tokens and the head's 54 → 49, and 705 against
  /// OpenBLAS's 730 at 512, too close to move the limit).
  /// - Complexity: O(m·n·k).
  public static func inputGradient(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if beta == 0 || beta == 1, m <= packedBlockRows,
      sgemmNN(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1, c: c, ldc: ldc)
    {
      return
    }
    sgemm(
      transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
      c: c, ldc: ldc)
  }

  /// A weight gradient C[m, n] ← α · Aᵀ · B + β · C (A stored [k, m], e.g. dY; B stored [k, n], e.g. X), the
  /// backward's dW = dYᵀ · X. With α = 1, β = 0 or 1 and k ≤ `weightGradientDepth` it runs through the packed
  /// kernel (`sgemmTN`, when there is one): every element is then one FMA chain written once, where OpenBLAS first
  /// zeroes all of C in a pass of its own (β = 0) and copies both operands. Otherwise `sgemm`.
  ///
  /// Why only then (`scripts/sgemm_probe/weight_gradient.c`: SmolLM2's 210 gradients and its tied table's, cut as
  /// the engine cuts them, one thread, four rounds, Zen 3): at k = 128 tokens the packed kernel took 305–379 ms
  /// against OpenBLAS's 354–365 (the table 77–81 against 98–106); at 256, 626–649 against 644–692 (the table 154–157
  /// against 177–193); at 512, 5–8% longer than OpenBLAS (1289–1362 against 1212–1257 ms).
  ///
  /// `streaming` (see `sgemmTN`), for gradients handed back to the caller: an ordinary store to a line not in cache
  /// first reads the line from memory, and SmolLM2's 210 fresh gradients are 425 MB
  /// (`scripts/sgemm_probe/weight_gradient_stream.c`, one thread, 128 tokens, Xeon family 6 model 207: 179–184 ms
  /// with ordinary stores into arrays on a cache line, 216–221 into arrays 48 bytes past one, as a large Swift
  /// array's elements lie; non-temporal stores 145–160 and 149–153. The AVX2 kernel's 24-float tile rows left half
  /// lines to non-temporal stores: 500 and 1118–1162 ms against 338–345 and 352–354, so it ignores `streaming`).
  /// - Complexity: O(m·n·k).
  public static func weightGradient(
    m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, streaming: Bool = false
  ) {
    if alpha == 1, beta == 0 || beta == 1, k <= weightGradientDepth,
      sgemmTN(
        m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1, c: c, ldc: ldc, streaming: streaming)
    {
      return
    }
    sgemm(
      transposeA: true, transposeB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
      c: c, ldc: ldc)
  }

  /// The longest inner dimension `weightGradient` gives the packed kernel: one k block (CKernels' `BP_PACKED_KC`).
  public static let weightGradientDepth = Int(BP_PACKED_KC)

  /// Rows of A the kernel packs at a time (CKernels' `BP_PACKED_MC`): a product of more rows sweeps W once per block.
  public static let packedBlockRows = Int(BP_PACKED_MC)

  /// Calls `part(i0, i1, j0, j1)` over the pieces of C[m, n] that the workers take, one each (one piece, all of C, on
  /// the calling thread for a small product or inside a worker); each call must return 0.
  ///
  /// Every worker that takes a column range packs all of A's rows and sweeps its share of W once per block of
  /// `packedBlockRows` rows. Up to one block, columns are the cheaper cut: W is read once in all, A packed once per
  /// worker. Past one block, W is read once per block either way, so rows are the cheaper cut: A is packed once in
  /// all instead of once per worker (at 512 tokens on a Zen 3 that packing was 7% of the kernel's time). Rows are
  /// cut at multiples of the tile height, so only the last piece can end in a ragged tile.
  static func inParts(
    m: Int, n: Int, k: Int, kernel: PackedWeights.Kernel, _ part: (Int, Int, Int, Int) -> Int32
  ) {
    precondition(m >= 0 && n >= 0 && k >= 0, "packed sgemm: m \(m), n \(n), k \(k)")
    if m == 0 || n == 0 { return }
    let width = kernel.panelWidth, panels = (n + width - 1) / width
    let byRows = m > packedBlockRows
    // a multiple of the tile height of every kernel that comes here (4 rows on AVX2, 8 on AVX-512; attention's
    // 6-row kernel runs on one thread, `attentionProduct`)
    let height = 8
    let tiles = (m + height - 1) / height
    let pieces = min(Parallel.workers, byRows ? tiles : panels)
    func run(_ p: Int, of pieces: Int) {
      let rc = byRows
        ? part(p * tiles / pieces * height, min(m, (p + 1) * tiles / pieces * height), 0, n)
        : part(0, m, p * panels / pieces * width, min(n, (p + 1) * panels / pieces * width))
      precondition(rc == 0, "packed sgemm failed")
    }
    guard pieces > 1, 2 * m * n * k >= minimumParallelFlops, !Parallel.isInsideWorker else {
      run(0, of: 1)  // all of C either way
      return
    }
    Parallel.forEach(pieces) { run($0, of: pieces) }
  }
}
