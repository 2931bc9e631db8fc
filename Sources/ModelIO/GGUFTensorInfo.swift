import GGML

/// One tensor described in a GGUF header, validated against the file.
///
/// GGUF lists dimensions fastest-first (`ne[0]` is the length of a row), the reverse of PyTorch: a weight stored
/// as `ne = [in, out]` is the PyTorch tensor `[out, in]`. `dimensions` keeps the file's order; `shape` is PyTorch's.
public struct GGUFTensorInfo: Sendable, Equatable {
  /// The name in the file (`blk.0.attn_q.weight`).
  public var name: String
  /// `ne[0], ne[1], …` as stored: innermost first, each ≥ 1, at most 4 (`GGML_MAX_DIMS`).
  public var dimensions: [Int]
  /// Element type.
  public var type: GGMLType
  /// Byte offset of the data from the start of the data section; a multiple of the file's alignment.
  public var offset: Int
  /// Bytes of data: `ne[0] / blockSize · typeSize · ne[1] · ne[2] · ne[3]`.
  public var sizeInBytes: Int

  /// PyTorch order, outermost first: `dimensions` reversed.
  public var shape: [Int] { dimensions.reversed() }

  /// Number of values: the product of the dimensions (1 for a scalar with no dimensions).
  public var elementCount: Int { dimensions.reduce(1, *) }

  /// Values per row, `ne[0]` (1 for a scalar).
  public var rowLength: Int { dimensions.first ?? 1 }

  /// Creates an info after checking the shape and type, as ggml's `gguf_init_from_file_impl` does.
  /// - Throws: `.badShape` for more than 4 dimensions, a dimension below 1, or a value count or byte count that
  ///   overflows; `.sizeMismatch` when a row is not a whole number of blocks; `.misaligned` when `offset` is not a
  ///   multiple of `alignment`.
  init(name: String, dimensions: [Int], type: GGMLType, offset: Int, alignment: Int) throws(ModelIOError) {
    guard dimensions.count <= 4 else {
      throw ModelIOError(.badShape, "tensor '\(name)': \(dimensions.count) dimensions, GGUF allows at most 4")
    }
    var count = 1
    for d in dimensions {
      guard d > 0 else { throw ModelIOError(.badShape, "tensor '\(name)': dimension \(d) in \(dimensions)") }
      let (product, overflow) = count.multipliedReportingOverflow(by: d)
      guard !overflow else { throw ModelIOError(.badShape, "tensor '\(name)': \(dimensions) has too many values") }
      count = product
    }
    let rowLength = dimensions.first ?? 1
    guard let rowBytes = type.rowSizeInBytes(rowLength) else {
      throw ModelIOError(
        .sizeMismatch, "tensor '\(name)': rows of \(rowLength) values are not whole \(type.name) blocks of \(type.blockSize)")
    }
    let (bytes, overflow) = rowBytes.multipliedReportingOverflow(by: count / rowLength)
    guard !overflow else { throw ModelIOError(.badShape, "tensor '\(name)': byte size of \(dimensions) overflows") }
    guard offset % alignment == 0 else {
      throw ModelIOError(.misaligned, "tensor '\(name)': offset \(offset) is not a multiple of the alignment \(alignment)")
    }
    self.name = name
    self.dimensions = dimensions
    self.type = type
    self.offset = offset
    self.sizeInBytes = bytes
  }
}
