#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Dispatch
import TensorCore

/// Throughput of the packed kernels on this machine, with fp32 BLAS GEMV and measured memory bandwidth beside them
/// (`bitplan bench kernels`). Single-threaded; best of several timed repetitions; every result feeds a sink so the
/// optimizer cannot drop the work.
///
/// Sizes are named after the cache level the *packed* weights of a GEMV fit in (L1 4096, L2 65,536, L3 655,360, DRAM 65,536,000 — test-quantize-perf's sizes
/// values, as STYLE §8). A DRAM-size tensor repeats one quantized 1M-value tile (kernel time does not depend on the
/// values), so building it does not take minutes for the K-quants.
public enum KernelBenchmark {
  /// A named working-set size.
  public struct Size: Sendable, Codable, Hashable {
    /// `L1`, `L2`, `L3`, `DRAM`.
    public var name: String
    /// Weights in the matrix.
    public var elements: Int
    /// Row length of the GEMV matrix (divisible by 256 so every format fits).
    public var columns: Int

    /// The four standard sizes.
    public static let standard: [Size] = [
      Size(name: "L1", elements: 4096, columns: 1024), Size(name: "L2", elements: 65_536, columns: 4096),
      Size(name: "L3", elements: 655_360, columns: 4096), Size(name: "DRAM", elements: 65_536_000, columns: 4096),
    ]
  }

  /// One measured line.
  public struct Row: Sendable, Codable, Equatable {
    /// `quantize`, `dequantize`, `gemv-f32act`, `quantize-act`, `gemv-q8act` (`KernelVariant.best`),
    /// `gemv-q8act-swift` (the Swift `simd` kernel, where `best` runs `CKernels` instead), `gemv-q8act-2t` (DRAM, two threads),
    /// `read-packed` and `read-packed-2t` (DRAM: the same packed bytes read plainly, timed alternately with the GEMV
    /// of that thread count), `blas-sgemv`, `memory-read`, `memory-read-2t`; for T tokens (`gemm(format:)`, size
    /// named by the shape) `gemm-q8act`, `gemm-q8act-gemv`, `gemm-f32act`, `blas-sgemm`, `packed-sgemm`.
    public var kernel: String
    /// Format name (`f32` for BLAS and memory rows).
    public var format: String
    /// Size name.
    public var size: String
    /// Values processed per call.
    public var elements: Int
    /// Bytes of weights read per call (packed bytes; 4·n for Float).
    public var bytes: Int
    /// Best time of one call.
    public var seconds: Double
    /// Nanoseconds per value.
    public var nsPerElement: Double { seconds * 1e9 / Double(max(elements, 1)) }
    /// Float-equivalent throughput (4 bytes per value, as ggml's test-quantize-perf reports), GB/s.
    public var floatGBps: Double { 4 * Double(elements) / seconds / 1e9 }
    /// Throughput in bytes actually read (packed weights), GB/s.
    public var packedGBps: Double { Double(bytes) / seconds / 1e9 }
    /// 2 flops per weight for GEMV rows and per multiply-add for GEMM rows (`gemm-…`, `blas-sgemm`, `packed-sgemm`), GFLOP/s; 0
    /// otherwise.
    public var gflops: Double {
      kernel.hasPrefix("gemv") || kernel.hasPrefix("gemm") || kernel.hasPrefix("blas-sgem") ? 2 * Double(elements) / seconds / 1e9 : 0
    }
  }

  nonisolated(unsafe) static var sink: Float = 0

  /// Wall-clock seconds (CLOCK_MONOTONIC).
  static func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }

  /// Best time of one call of `body`: the best mean over at least 3 timed samples and at least `minimumSeconds` in
  /// total. Without `flush`, a sample is a batch of calls lasting about 20 µs, so the two clock reads around it
  /// (tens of ns) do not count toward a call that takes 100 ns at the L1 size. With `flush`, a sample is one call,
  /// and a 128 MiB buffer (4× the 32 MiB L3) is read before it, untimed, so DRAM-size working sets really come
  /// from DRAM rather than partly from L3.
  static func best(minimumSeconds: Double = 0.2, flush: Bool = false, _ body: () -> Void) -> Double {
    body()  // warm caches and pages
    var batch = 1
    if !flush {
      let start = now()
      body()
      batch = max(1, min(10_000, Int(20e-6 / max(now() - start, 1e-9))))
    }
    var best = Double.infinity, total = 0.0, samples = 0
    while samples < 3 || total < minimumSeconds {
      if flush { evictCaches() }
      let start = now()
      for _ in 0..<batch { body() }
      let t = now() - start
      best = min(best, t / Double(batch))
      total += t
      samples += 1
      if samples >= 1000 || (flush && samples >= 5) { break }
    }
    return best
  }

  /// Best times of `first` and `second` at DRAM sizes, timed alternately, each sample one call after a cache flush,
  /// `samples` of each. This host's memory bandwidth drifts by a quarter from one second to the next (a shared
  /// machine: one GEMV's samples spread 12.6–26.4 GB/s in one C harness run), so a kernel is set against a read
  /// of the same bytes taken at the same moments rather than against a bandwidth measured earlier.
  static func bestInterleaved(samples: Int = 20, _ first: () -> Void, _ second: () -> Void) -> (Double, Double) {
    first()
    second()  // warm pages
    var best = (Double.infinity, Double.infinity)
    for _ in 0..<samples {
      evictCaches()
      var start = now()
      first()
      best.0 = min(best.0, now() - start)
      evictCaches()
      start = now()
      second()
      best.1 = min(best.1, now() - start)
    }
    return best
  }

  /// Reads `count` bytes at `base` (wrapping 64-bit sums in four 512-bit accumulators; a trailing partial vector is
  /// not read), the memory side of `bestInterleaved`. Integer sums, so arbitrary packed bytes cost the same as any.
  static func readBytes(_ base: UnsafeRawPointer, count: Int) -> UInt64 {
    typealias V = SIMD8<UInt64>
    var s = (V(), V(), V(), V())
    var i = 0
    while i + 256 <= count {
      s.0 &+= base.loadUnaligned(fromByteOffset: i, as: V.self)
      s.1 &+= base.loadUnaligned(fromByteOffset: i + 64, as: V.self)
      s.2 &+= base.loadUnaligned(fromByteOffset: i + 128, as: V.self)
      s.3 &+= base.loadUnaligned(fromByteOffset: i + 192, as: V.self)
      i += 256
    }
    while i + 64 <= count {
      s.0 &+= base.loadUnaligned(fromByteOffset: i, as: V.self)
      i += 64
    }
    return ((s.0 &+ s.1) &+ (s.2 &+ s.3)).wrappedSum()
  }

  /// `readBytes` over `bytes`, split into `threads` contiguous parts run concurrently.
  static func readBytes(_ bytes: UnsafeRawBufferPointer, threads: Int) {
    nonisolated(unsafe) let base = bytes.baseAddress!
    let count = bytes.count, part = count / threads / 64 * 64
    DispatchQueue.concurrentPerform(iterations: threads) { k in
      let s = readBytes(base + k * part, count: k == threads - 1 ? count - k * part : part)
      if s == 1 { sink += 1 }  // almost never true; keeps the sum live
    }
  }

  static let evictionBuffer = [Float](repeating: 1, count: 32 << 20)

  /// Reads `evictionBuffer` (128 MiB) so that earlier data leaves the caches.
  static func evictCaches() {
    evictionBuffer.withUnsafeBufferPointer { sink += FloatDot.simd($0.baseAddress!, $0.baseAddress!, count: $0.count) }
  }

  /// Read bandwidth: a 4-accumulator SIMD sum over `bytes` (default 512 MiB, far beyond L3), split over `threads`
  /// contiguous parts, GB/s.
  public static func memoryReadBandwidth(bytes: Int = 512 << 20, threads: Int = 1) -> Row {
    let n = bytes / 4
    let data = [Float](repeating: 1, count: n)
    let t = data.withUnsafeBufferPointer { p in
      nonisolated(unsafe) let base = p.baseAddress!
      return best {
        let part = n / threads
        DispatchQueue.concurrentPerform(iterations: threads) { k in
          let s = FloatDot.simd(base + k * part, base + k * part, count: k == threads - 1 ? n - k * part : part)
          if s == -1 { sink += s }  // never true; keeps the sum live
        }
      }
    }
    return Row(kernel: threads == 1 ? "memory-read" : "memory-read-\(threads)t", format: "f32", size: "DRAM",
      elements: n, bytes: bytes, seconds: t)
  }

  /// fp32 GEMV through OpenBLAS (`BLAS.sgemv`, single thread) at one size.
  public static func blasGEMV(_ size: Size) -> Row {
    let rows = size.elements / size.columns
    let a = [Float](repeating: 0.01, count: size.elements), x = [Float](repeating: 1, count: size.columns)
    var y = [Float](repeating: 0, count: rows)
    let t = a.withUnsafeBufferPointer { pa in
      x.withUnsafeBufferPointer { px in
        y.withUnsafeMutableBufferPointer { py in
          best(flush: size.name == "DRAM") {
            BLAS.sgemv(rows: rows, columns: size.columns, a: pa.baseAddress!, x: px.baseAddress!, y: py.baseAddress!)
            sink += py[0]
          }
        }
      }
    }
    return Row(kernel: "blas-sgemv", format: "f32", size: size.name, elements: size.elements, bytes: 4 * size.elements, seconds: t)
  }

  /// Quantize, dequantize and both GEMVs of one format at the given sizes (quantize is timed at the L2 size only,
  /// single-threaded per row block).
  public static func run(format: QuantFormat, sizes: [Size] = Size.standard) throws -> [Row] {
    var rows = [Row]()
    var tileWeights = [Float]()
    for size in sizes {
      let m = size.elements / size.columns
      let flush = size.name == "DRAM"
      let tileRows = min(m, max(1, (1 << 20) / size.columns))
      if tileWeights.count != tileRows * size.columns {
        tileWeights = (0..<(tileRows * size.columns)).map { Float(sin(Double($0) * 0.7)) * 0.05 }
      }
      let tile = try quantize(tileWeights, rows: tileRows, columns: size.columns, format: format)
      var bytes = [UInt8]()
      bytes.reserveCapacity(format.sizeInBytes(rows: m, columns: size.columns))
      while bytes.count < format.sizeInBytes(rows: m, columns: size.columns) { bytes += tile.bytes }
      bytes.removeLast(bytes.count - format.sizeInBytes(rows: m, columns: size.columns))  // whole rows: tiles hold whole rows
      let packed = try PackedTensor(format: format, rows: m, columns: size.columns, bytes: bytes)
      if size.name == "L2" {
        let w = (0..<size.elements).map { Float(sin(Double($0) * 0.3)) * 0.05 }
        let t = best { if let q = try? quantizeSerial(w, rows: m, columns: size.columns, format: format) { sink += Float(q.bytes[0]) } }
        rows.append(Row(kernel: "quantize", format: format.name, size: size.name, elements: size.elements, bytes: packed.bytes.count, seconds: t))
      }
      if size.elements <= 1 << 20 || size.name == "DRAM" {
        var out = [Float](repeating: 0, count: size.elements)
        let t = out.withUnsafeMutableBufferPointer { o in best(flush: flush) { packed.dequantizeRows(0..<m, into: o, variant: .simd); sink += o[0] } }
        rows.append(Row(kernel: "dequantize", format: format.name, size: size.name, elements: size.elements, bytes: packed.bytes.count, seconds: t))
      }
      let x = (0..<size.columns).map { Float(cos(Double($0))) }
      var y = [Float](repeating: 0, count: m)
      let tf = x.withUnsafeBufferPointer { px in
        y.withUnsafeMutableBufferPointer { py in best(flush: flush) { packed.gemv(px, into: py, activations: .float, variant: .simd); sink += py[0] } }
      }
      rows.append(Row(kernel: "gemv-f32act", format: format.name, size: size.name, elements: size.elements,
        bytes: packed.bytes.count, seconds: tf))
      if format.hasIntegerCodes {
        // Activations are quantized once per token and shared by every matrix that reads them, so the kernel row
        // (the counterpart of ggml's vec_dot_q) takes them pre-quantized; `quantize-act` times that step alone.
        let activations = Q8Activations(x, blockSize: packed.activationBlockSize)
        let ta = best { sink += Q8Activations(x, blockSize: packed.activationBlockSize).scales[0] }
        rows.append(Row(kernel: "quantize-act", format: format.name, size: size.name, elements: size.columns,
          bytes: 4 * size.columns, seconds: ta))
        let gemv = { (threads: Int) in
          y.withUnsafeMutableBufferPointer { py in packed.gemvInt8(activations, into: py, variant: .best, threads: threads); sink += py[0] }
        }
        if size.name == "DRAM" {
          // Each thread count against a read of the same packed bytes by as many threads, sample by sample.
          for threads in [1, 2] {
            let suffix = threads == 1 ? "" : "-\(threads)t"
            let (tq, tr) = packed.bytes.withUnsafeBytes { raw in
              bestInterleaved({ gemv(threads) }, { readBytes(raw, threads: threads) })
            }
            rows.append(Row(kernel: "gemv-q8act" + suffix, format: format.name, size: size.name, elements: size.elements,
              bytes: packed.bytes.count, seconds: tq))
            rows.append(Row(kernel: "read-packed" + suffix, format: format.name, size: size.name, elements: size.elements,
              bytes: packed.bytes.count, seconds: tr))
          }
        } else {
          rows.append(Row(kernel: "gemv-q8act", format: format.name, size: size.name, elements: size.elements,
            bytes: packed.bytes.count, seconds: best { gemv(1) }))
        }
        if KernelVariant.best != .simd && IntDot.cCall(format, columns: size.columns, rowBytes: packed.rowSizeInBytes,
          activationBlock: activations.blockSize) != nil {
          // The Swift kernel the C one replaces, in the same run.
          let ts = y.withUnsafeMutableBufferPointer { py in best(flush: flush) { packed.gemvInt8(activations, into: py, variant: .simd); sink += py[0] } }
          rows.append(Row(kernel: "gemv-q8act-swift", format: format.name, size: size.name, elements: size.elements,
            bytes: packed.bytes.count, seconds: ts))
        }
      }
    }
    return rows
  }

  /// Single-threaded quantize (the benchmark measures one core).
  static func quantizeSerial(_ w: [Float], rows: Int, columns: Int, format: QuantFormat) throws -> PackedTensor {
    let rowSize = format.rowSizeInBytes(columns: columns)
    var bytes = [UInt8](repeating: 0, count: rows * rowSize)
    w.withUnsafeBufferPointer { x in
      bytes.withUnsafeMutableBytes { out in
        for r in 0..<rows {
          RowCodec.quantizeRow(format, UnsafeBufferPointer(rebasing: x[(r * columns)..<((r + 1) * columns)]),
            UnsafeMutableRawBufferPointer(rebasing: out[(r * rowSize)..<((r + 1) * rowSize)]), clip: .none, variant: .simd)
        }
      }
    }
    return try PackedTensor(format: format, rows: rows, columns: columns, bytes: bytes)
  }

  /// The formats `bitplan bench kernels` measures by default.
  public static let defaultFormats: [QuantFormat] = ["q4_0", "q8_0", "int4", "int4-g32", "int4-g128", "int8", "int8-g128", "int4-g128-asym", "q4_1", "q5_0", "q5_1",
    "q4_k", "q6_k", "q2_k", "q3_k", "q5_k", "int3-g128", "int8-g128-asym", "nf4-g64", "ternary-g64", "f16", "bf16"]
    .map { try! QuantFormat(parsing: $0) }
}
