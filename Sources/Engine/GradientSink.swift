import TensorCore

/// Where the backward pass writes parameter gradients: G ← α·∂L/∂θ + β·G for each wanted tensor.
///
/// The (α, β) form lets one backward pass either produce a gradient (α = 1, β = 0) or fold a second gradient into a
/// first one in place, as the central-difference HVP does: (g₊ − g₋)/(2ε) = α·g₋ + β·g₊ with α = −1/(2ε),
/// β = 1/(2ε), with no third buffer. Tensors not in `wanted` cost nothing: their weight-gradient GEMMs are skipped
/// (gradients with respect to activations are always formed; they are needed upstream).
final class GradientSink<S: EngineScalar> {
  /// A gradient array that can be mutated in place through the dictionary.
  final class Box {
    var values: [S]
    init(_ values: [S]) { self.values = values }
  }

  let wanted: Set<String>
  let alpha: S
  let beta: S
  private(set) var boxes: [String: Box]
  private var touched: Set<String> = []
  /// Whether the boxes are the caller's arrays (`init(wanted:alpha:beta:existing:)`): the first contribution to
  /// each then writes β·G₀ into a fresh array and adds with β′ = 1 instead of copying and scaling in two passes.
  private var scalesOnCopy = false
  /// Projection mode: instead of storing G, accumulate `projections[name] += coefficient · ⟨v_name, contribution⟩`
  /// (Double), writing each contribution into `scratch`. Used for per-layer quadratic forms vᵀ(Hv) without
  /// materialising any gradient.
  private let projection: (dot: (String, UnsafePointer<S>, Int) -> Double?, coefficient: Double, scratch: Buffer<S>)?
  private(set) var projections: [String: Double] = [:]
  /// Streaming mode: each wanted tensor's single contribution is formed in `scratch` as α·contribution + β·G₀
  /// (G₀ = `initial[name]`, or nothing when it has none) and handed to `handler` at once; nothing is stored. Used
  /// for Hessian-vector products consumed layer by layer, so no model-sized gradient is ever materialised.
  private let stream: (initial: [String: [S]], scratch: Buffer<S>, handler: (String, UnsafeBufferPointer<S>) -> Void)?

  /// - Parameters:
  ///   - previous: with β ≠ 0, the sink whose gradients to fold into (it must hold every wanted tensor); its
  ///     arrays are taken over, not copied.
  init(wanted: Set<String>, alpha: S = 1, beta: S = 0, continuing previous: GradientSink? = nil) {
    self.wanted = wanted
    self.alpha = alpha
    self.beta = beta
    boxes = previous?.boxes ?? [:]
    projection = nil
    stream = nil
    precondition(beta == 0 || wanted.allSatisfy { boxes[$0] != nil }, "β ≠ 0 needs every wanted gradient")
  }

  /// A sink that folds into copies of `existing` (the caller keeps its arrays; each is copied on first write, as
  /// β·G₀ in one pass, like the streaming sink's).
  convenience init(wanted: Set<String>, alpha: S, beta: S, existing: [String: [S]]) {
    self.init(wanted: wanted, alpha: alpha, beta: beta, continuing: GradientSink(boxes: existing.mapValues(Box.init)))
    scalesOnCopy = true
  }

  /// A projecting sink: accumulates coefficient·⟨v, ∂L/∂W⟩ per wanted tensor into `projections`, starting from
  /// `previous`' projections (if any). `scratch` must hold the largest wanted tensor.
  init(wanted: Set<String>, projectingOnto vector: [String: [S]], coefficient: Double, scratch: Buffer<S>, continuing previous: GradientSink? = nil) {
    self.wanted = wanted
    alpha = 1
    beta = 0
    boxes = [:]
    // in order, one product at a time (the sums these forms have always had)
    projection = ({ name, contribution, count in
      guard let v = vector[name] else { return 0 }
      var dot = 0.0
      v.withUnsafeBufferPointer { v in
        for i in 0..<count { dot += Double(v[i]) * Double(contribution[i]) }
      }
      return dot
    }, coefficient, scratch)
    stream = nil
    projections = previous?.projections ?? [:]
  }

  /// A projecting sink whose direction comes from a streamed perturbation: `dot(name, contribution, count)` gives
  /// ⟨v_name, contribution⟩, or nil for a tensor v has no block of (then nothing is accumulated for it). With
  /// `rowDot`, a tensor given by rows (`contributeRows`) is projected a chunk at a time: `rowDot(name, rows,
  /// contribution, count, &sum)` adds ⟨v_name[rows], contribution⟩ to `sum`, or returns false when v has no block.
  init(
    wanted: Set<String>, projectingWith dot: @escaping (String, UnsafePointer<S>, Int) -> Double?,
    rowDot: ((String, Range<Int>, UnsafePointer<S>, Int, inout Double) -> Bool)? = nil, coefficient: Double, scratch: Buffer<S>
  ) {
    self.wanted = wanted
    alpha = 1
    beta = 0
    boxes = [:]
    projection = (dot, coefficient, scratch)
    projectionRows = rowDot
    stream = nil
  }

  /// `rowDot` of a streamed projecting sink.
  private var projectionRows: ((String, Range<Int>, UnsafePointer<S>, Int, inout Double) -> Bool)?

  /// Whether contributions land in the arrays handed back to the caller (`gradients`), which nothing reads again
  /// during the pass: the weight-gradient GEMMs may then write them past the cache (`EngineScalar.weightGradient`'s
  /// `streaming`). Not for the streaming and projecting modes, whose scratch is read at once.
  var storesArrays: Bool { stream == nil && projection == nil }

  /// Adds one contribution to the `[rows, columns]` tensor `name`, which `body(rowRange, pointer, α, β′)` forms for
  /// a range of rows (pointer at the range's first row), as `contribute`'s body does for the whole: whole, except
  /// that a streamed projecting sink with a `rowDot` takes it `chunkRows` rows at a time into a chunk-sized scratch
  /// and projects each chunk, so the tensor (the embedding table) is never formed whole.
  func contributeRows(
    _ name: String, rows: Int, columns: Int, chunkRows: Int, _ body: (Range<Int>, UnsafeMutablePointer<S>, S, S) -> Void
  ) {
    guard wanted.contains(name) else { return }
    guard let (_, coefficient, _) = projection, let rowDot = projectionRows else {
      return contribute(name, count: rows * columns) { g, alpha, beta in body(0..<rows, g, alpha, beta) }
    }
    let chunk = Buffer<S>(count: min(chunkRows, rows) * columns)
    var sum = 0.0
    for start in stride(from: 0, to: rows, by: chunkRows) {
      let range = start..<min(start + chunkRows, rows)
      body(range, chunk.pointer, 1, 0)
      guard rowDot(name, range, chunk.constant, range.count * columns, &sum) else { return }
    }
    projections[name, default: 0] += coefficient * sum
  }

  /// A streaming sink (see `stream`): `scratch` must hold the largest wanted tensor, and each wanted tensor must
  /// receive exactly one contribution (true of linear weights, whose gradient is one GEMM).
  init(
    wanted: Set<String>, alpha: S, beta: S, initial: [String: [S]], scratch: Buffer<S>,
    handler: @escaping (String, UnsafeBufferPointer<S>) -> Void
  ) {
    self.wanted = wanted
    self.alpha = alpha
    self.beta = beta
    boxes = [:]
    projection = nil
    stream = (initial, scratch, handler)
  }

  private init(boxes: [String: Box]) {
    wanted = []
    alpha = 1
    beta = 0
    projection = nil
    stream = nil
    self.boxes = boxes
  }

  /// Adds one contribution to tensor `name` of `count` values. `body(pointer, α, β′)` must perform
  /// G ← α·contribution + β′·G, where β′ is β for the first contribution and 1 afterwards.
  func contribute(_ name: String, count: Int, _ body: (UnsafeMutablePointer<S>, S, S) -> Void) {
    guard wanted.contains(name) else { return }
    if let (initial, scratch, handler) = stream {
      precondition(touched.insert(name).inserted, "streamed gradient '\(name)' received a second contribution")
      precondition(scratch.count >= count, "stream scratch \(scratch.count) < \(count)")
      if let g0 = initial[name], beta != 0 {
        precondition(g0.count == count, "initial gradient '\(name)' has \(g0.count) values, contribution \(count)")
        // β·G₀ formed here in the copy, then the contribution added with β′ = 1: OpenBLAS would otherwise copy G₀
        // and scale it in a second pass over the block (its β operation `c = β·c`, the same single rounding: bit
        // for bit the same result where OpenBLAS takes its level-3 path, as every dW GEMM of SmolLM2 at the default
        // 128 tokens; its small-matrix kernel, under 100³ multiply-adds, fuses β·C and the product in one FMA, so
        // there the last bit of some values of such tiny products can differ).
        g0.withUnsafeBufferPointer { Self.scaledCopy($0.baseAddress!, by: beta, into: scratch.pointer, count: count) }
        body(scratch.pointer, alpha, 1)
      } else if let g0 = initial[name] {
        precondition(g0.count == count, "initial gradient '\(name)' has \(g0.count) values, contribution \(count)")
        body(scratch.pointer, alpha, 0)
      } else {
        body(scratch.pointer, alpha, 0)
      }
      handler(name, UnsafeBufferPointer(start: scratch.pointer, count: count))
      return
    }
    if let (dot, coefficient, scratch) = projection {
      // each contribution in full (β = 0), then its inner product with v: linear, so contributions add up
      precondition(scratch.count >= count, "projection scratch \(scratch.count) < \(count)")
      body(scratch.pointer, 1, 0)
      if let product = dot(name, scratch.constant, count) { projections[name, default: 0] += coefficient * product }
      return
    }
    let box: Box
    if let b = boxes[name] { box = b } else {
      // uninitialised: the first contribution runs with β = 0 and writes every element without reading it
      // (GEMM with β = 0, the vector form, and the embedding scatter all overwrite)
      box = Box([S](unsafeUninitializedCapacity: count) { _, initialized in initialized = count })
      boxes[name] = box
    }
    precondition(box.values.count == count, "gradient '\(name)' has \(box.values.count) values, contribution \(count)")
    var betaNow = touched.contains(name) ? 1 : beta
    if scalesOnCopy && betaNow != 0 && betaNow != 1 {
      let g0 = box.values
      box.values = [S](unsafeUninitializedCapacity: count) { out, initialized in
        g0.withUnsafeBufferPointer { Self.scaledCopy($0.baseAddress!, by: betaNow, into: out.baseAddress!, count: count) }
        initialized = count
      }
      betaNow = 1
    }
    touched.insert(name)
    box.values.withUnsafeMutableBufferPointer { body($0.baseAddress!, alpha, betaNow) }
  }

  /// Adds a dense vector contribution: G ← α·v + β′·G.
  func contribute(_ name: String, vector v: UnsafePointer<S>, count: Int) {
    contribute(name, count: count) { g, a, b in
      for i in 0..<count { g[i] = a * v[i] + (b == 0 ? 0 : b * g[i]) }
    }
  }

  /// `target[i] = β · source[i]` for `i < count`, in parallel chunks (one rounding per element, as BLAS's β
  /// operation).
  static func scaledCopy(_ source: UnsafePointer<S>, by beta: S, into target: UnsafeMutablePointer<S>, count: Int) {
    Parallel.forEachChunk(count) { range in
      for i in range { target[i] = beta * source[i] }
    }
  }

  /// The gradients, by tensor name.
  var gradients: [String: [S]] { boxes.mapValues(\.values) }
}
