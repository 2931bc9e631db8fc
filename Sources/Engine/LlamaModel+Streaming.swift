/// Weight matrices left in their file's form and expanded when a pass reaches them (issue 18).
///
/// `LlamaModel(configuration:weights:deferred:streamed:)` takes a reader per streamed matrix instead of its values.
/// The model then holds nothing of it: a pass that reaches the weight expands it into one layer-sized buffer that
/// the next streamed linear weight reuses, so a forward + backward pass reads most weights twice and never holds
/// more than one linear weight's values, plus the token embedding and an untied LM head, which are kept once read
/// (the lookup, the head and its backward read them at both ends of every pass). Every result is bit for bit the
/// dense model's: the same values reach the same GEMMs.
///
/// `replaceWeight` gives a streamed weight dense values (the audit's quantized layer); replacing them with what
/// the reader gives makes it streamed again. `weight(named:)` reads it. A reader that fails gives NaN values,
/// which every loss and gradient then reports as non-finite.
///
/// A reader writes the values straight into the buffer the model keeps them in (`init(into:)`), so a table read
/// once and kept costs its own size only, not a second copy for a moment; `init(values:)` wraps a reader that
/// returns an array (tests, small models).
public struct WeightReader {
  /// Writes the tensor's values into the buffer (exactly its count); false when it cannot.
  let fill: (UnsafeMutableBufferPointer<Float>) -> Bool

  /// A reader that writes the values into the buffer it is given and says whether it could.
  public init(into fill: @escaping (UnsafeMutableBufferPointer<Float>) -> Bool) {
    self.fill = fill
  }

  /// A reader that returns the values (nil, or another count, when it cannot); they are copied into the buffer.
  public init(values read: @escaping () -> [Float]?) {
    fill = { out in
      guard let values = read(), values.count == out.count else { return false }
      _ = out.update(fromContentsOf: values)
      return true
    }
  }

  /// The values as a new array of `count`, or nil when the reader cannot give them.
  func values(count: Int) -> [Float]? {
    var values = [Float](repeating: 0, count: count)
    return values.withUnsafeMutableBufferPointer { fill($0) } ? values : nil
  }
}

/// The readers and the expansion buffers of the streamed weights of one model.
final class StreamedWeights<S: EngineScalar> {
  /// Reader and value count per streamed tensor.
  var readers: [String: (count: Int, read: WeightReader)] = [:]
  /// The linear weight held in `linear` now.
  private var current: String?
  /// One buffer for the linear weights, grown to the largest.
  private var linear: Buffer<S>?
  /// The embedding and an untied LM head, once read.
  private var tables: [String: Buffer<S>] = [:]

  /// Whether `name` is a table (read at both ends of a pass, so kept).
  static func isTable(_ name: String) -> Bool {
    name == "model.embed_tokens.weight" || name == "lm_head.weight"
  }

  /// The values of streamed tensor `name`, expanded unless they are the ones held.
  func values(_ name: String) -> UnsafePointer<S> {
    let (count, read) = readers[name]!
    let buffer: Buffer<S>
    if Self.isTable(name) {
      if let b = tables[name] { return b.constant }
      buffer = Buffer(count: count)
      tables[name] = buffer
    } else {
      if current == name, let b = linear { return b.constant }
      if linear == nil || linear!.count < count { linear = Buffer(count: count) }
      buffer = linear!
      current = name
    }
    Self.expand(read, count: count, into: buffer.pointer)
    return buffer.constant
  }

  /// Forgets what is held of `name` (its values were replaced or released).
  func drop(_ name: String) {
    if current == name { current = nil }
    tables[name] = nil
  }

  /// The reader's values as `S`, or NaN everywhere when it fails. Float models are written in place; a Double
  /// model's values go through one Float array.
  static func expand(_ read: WeightReader, count: Int, into out: UnsafeMutablePointer<S>) {
    let filled: Bool
    if S.self == Float.self {
      filled = UnsafeMutableRawPointer(out).withMemoryRebound(to: Float.self, capacity: count) {
        read.fill(UnsafeMutableBufferPointer(start: $0, count: count))
      }
    } else {
      let values = read.values(count: count)
      filled = values != nil
      if let values { for i in 0..<count { out[i] = S(values[i]) } }
    }
    if !filled { out.update(repeating: S.nan, count: count) }
  }
}

extension LlamaModel {
  /// Tensor names of the weights read from their files when a pass reaches them, in model order.
  public var streamedWeightNames: [String] {
    configuration.expectedTensors.map(\.name).filter { streamed.readers[$0] != nil }
  }

  /// Whether tensor `name` (held in `buffer`) is read from its reader: streamed and not given dense values.
  func isStreaming(_ buffer: Buffer<Scalar>, _ name: String) -> Bool {
    buffer.count == 0 && !buffer.isReleased && streamed.readers[name] != nil
  }

  /// The values a pass reads for tensor `name`: its buffer's, or the streamed expansion (valid until the next
  /// streamed linear weight is expanded).
  @inline(__always)
  func readable(_ buffer: Buffer<Scalar>, _ name: String) -> UnsafePointer<Scalar> {
    isStreaming(buffer, name) ? streamed.values(name) : buffer.constant
  }

  /// Number of values of tensor `name` (its shape's product; the buffer may be empty while it streams).
  func valueCount(_ name: String) -> Int {
    streamed.readers[name]?.count ?? tensors[name]!.count
  }
}
