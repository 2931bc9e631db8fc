#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// Owned, zero-initialised storage with a stable base pointer: the engine's activations, caches and weights.
///
/// Swift arrays cannot hand out a pointer that outlives a closure; the forward and backward passes touch a dozen
/// buffers per block, so they keep them here and pass raw pointers to the kernels (one `withUnsafe…` site per
/// buffer instead of nested closures). Freed when the last reference goes.
final class Buffer<Scalar: EngineScalar>: @unchecked Sendable {
  /// Number of elements (0 after `release()`).
  @exclusivity(unchecked) private(set) var count: Int
  /// Base address of `count` initialised elements. Replaced by `release()`: callers must not keep it across a
  /// release (the model releases only weights, and only between passes).
  @exclusivity(unchecked) private(set) var pointer: UnsafeMutablePointer<Scalar>

  /// `count` zeros. All-zero bytes are +0 in both scalar types, so this is one memset even where the generic code
  /// is not specialized (model loading: element-by-element initialisation took ~1% of a `bench engine` run).
  init(count: Int) {
    precondition(count >= 0, "negative buffer size \(count)")
    self.count = count
    pointer = Self.allocate(max(count, 1))
    memset(pointer, 0, count * MemoryLayout<Scalar>.stride)
  }

  /// A copy of `values` (one memcpy, no zeroing first).
  init(_ values: [Scalar]) {
    count = values.count
    pointer = Self.allocate(max(count, 1))
    values.withUnsafeBufferPointer { if let base = $0.baseAddress { pointer.initialize(from: base, count: count) } }
  }

  /// An empty buffer in the released state (a weight whose operator will be installed; see `release()`).
  static func released() -> Buffer {
    let b = Buffer(count: 0)
    b.pointer.initialize(to: 0)
    b.isReleased = true
    return b
  }

  deinit { pointer.deallocate() }

  /// `count` uninitialised elements on a 64-byte boundary (a cache line, one AVX-512 vector).
  ///
  /// Why: malloc puts a large block 16 bytes past a page boundary, so every row of a weight or activation whose
  /// length is a multiple of 16 floats started 16 bytes into a cache line, and each 64-byte vector load or store the
  /// kernels make on it (a weight read where it lies by dX = dY · W, a tile of C) straddled two lines. In a probe of
  /// SmolLM2's 210 input-gradient products at 128 tokens (scripts/sgemm_probe/input_gradient_split.c, Xeon family 6
  /// model 207, two threads) weights 16 bytes off a line took 119–125 ms against 105–113 aligned.
  private static func allocate(_ count: Int) -> UnsafeMutablePointer<Scalar> {
    UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Scalar>.stride, alignment: 64)
      .bindMemory(to: Scalar.self, capacity: count)
  }

  /// Whether `release()` has freed the storage.
  private(set) var isReleased = false

  /// A weight's values packed for the forward GEMM (`LlamaModel.packedProduct`), made on first use. Every method
  /// here that changes the values drops it; nothing else writes a weight's buffer.
  var packed: PackedWeights?

  /// Frees the storage (a weight replaced by a forward-only operator), leaving an empty buffer whose `pointer` is a
  /// one-element placeholder. Idempotent. Every `Block` and the model's tensor table share this object, so one call
  /// frees the tensor everywhere.
  func release() {
    guard !isReleased else { return }
    packed = nil
    pointer.deallocate()
    pointer = Self.allocate(1)
    pointer.initialize(to: 0)
    count = 0
    isReleased = true
  }

  /// Makes an empty (not released) buffer hold `values`, or overwrites a buffer of their size: a streamed weight
  /// that `replaceWeight` gives dense values (`LlamaModel+Streaming.swift`).
  func hold(_ values: [Scalar]) {
    packed = nil
    precondition(!isReleased, "a released buffer cannot hold values again")
    if count != values.count {
      pointer.deallocate()
      count = values.count
      pointer = Self.allocate(max(count, 1))
    }
    values.withUnsafeBufferPointer { if let base = $0.baseAddress { pointer.update(from: base, count: count) } }
  }

  /// Frees the values of a buffer that `hold` filled, leaving it empty (not released): the streamed weight is read
  /// from its source again.
  func empty() {
    packed = nil
    guard !isReleased, count > 0 else { return }
    pointer.deallocate()
    pointer = Self.allocate(1)
    pointer.initialize(to: 0)
    count = 0
  }

  /// Read-only view of the base address.
  var constant: UnsafePointer<Scalar> { UnsafePointer(pointer) }

  /// The values as an array (a copy).
  var array: [Scalar] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

  /// Sets every element to zero.
  func zero() {
    packed = nil
    pointer.update(repeating: 0, count: count)
  }

  /// Overwrites the contents with `values`.
  /// - Precondition: `values.count == count`.
  func copy(from values: [Scalar]) {
    packed = nil
    precondition(values.count == count, "copying \(values.count) values into a buffer of \(count)")
    values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
  }
}

/// A dense row-major matrix of scalars: activations handed to callers (inputs of a linear layer, logits).
public struct Matrix<Scalar: EngineScalar>: Sendable, Equatable {
  /// Number of rows (tokens, for activations).
  public var rows: Int
  /// Number of columns (features).
  public var columns: Int
  /// `rows · columns` values, row-major.
  public var storage: [Scalar]

  /// Wraps `storage`.
  /// - Precondition: `storage.count == rows · columns`.
  public init(rows: Int, columns: Int, storage: [Scalar]) {
    precondition(storage.count == rows * columns, "\(storage.count) values for a \(rows)x\(columns) matrix")
    self.rows = rows
    self.columns = columns
    self.storage = storage
  }

  /// Element `(row, column)`.
  public subscript(row: Int, column: Int) -> Scalar { storage[row * columns + column] }
}
