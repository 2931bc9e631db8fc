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
  /// Projection mode: instead of storing G, accumulate `projections[name] += coefficient · ⟨v_name, contribution⟩`
  /// (Double), writing each contribution into `scratch`. Used for per-layer quadratic forms vᵀ(Hv) without
  /// materialising any gradient.
  private let projection: (vector: [String: [S]], coefficient: Double, scratch: Buffer<S>)?
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

  /// A sink that folds into copies of `existing` (the caller keeps its arrays; each is copied on first write).
  convenience init(wanted: Set<String>, alpha: S, beta: S, existing: [String: [S]]) {
    self.init(wanted: wanted, alpha: alpha, beta: beta, continuing: GradientSink(boxes: existing.mapValues(Box.init)))
  }

  /// A projecting sink: accumulates coefficient·⟨v, ∂L/∂W⟩ per wanted tensor into `projections`, starting from
  /// `previous`' projections (if any). `scratch` must hold the largest wanted tensor.
  init(wanted: Set<String>, projectingOnto vector: [String: [S]], coefficient: Double, scratch: Buffer<S>, continuing previous: GradientSink? = nil) {
    self.wanted = wanted
    alpha = 1
    beta = 0
    boxes = [:]
    projection = (vector, coefficient, scratch)
    stream = nil
    projections = previous?.projections ?? [:]
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
      if let g0 = initial[name] {
        precondition(g0.count == count, "initial gradient '\(name)' has \(g0.count) values, contribution \(count)")
        g0.withUnsafeBufferPointer { scratch.pointer.update(from: $0.baseAddress!, count: count) }
        body(scratch.pointer, alpha, beta)
      } else {
        body(scratch.pointer, alpha, 0)
      }
      handler(name, UnsafeBufferPointer(start: scratch.pointer, count: count))
      return
    }
    if let (vector, coefficient, scratch) = projection {
      // each contribution in full (β = 0), then its inner product with v: linear, so contributions add up
      precondition(scratch.count >= count, "projection scratch \(scratch.count) < \(count)")
      body(scratch.pointer, 1, 0)
      var dot = 0.0
      if let v = vector[name] {
        v.withUnsafeBufferPointer { v in
          for i in 0..<count { dot += Double(v[i]) * Double(scratch.pointer[i]) }
        }
      }
      projections[name, default: 0] += coefficient * dot
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
    let betaNow = touched.contains(name) ? 1 : beta
    touched.insert(name)
    box.values.withUnsafeMutableBufferPointer { body($0.baseAddress!, alpha, betaNow) }
  }

  /// Adds a dense vector contribution: G ← α·v + β′·G.
  func contribute(_ name: String, vector v: UnsafePointer<S>, count: Int) {
    contribute(name, count: count) { g, a, b in
      for i in 0..<count { g[i] = a * v[i] + (b == 0 ? 0 : b * g[i]) }
    }
  }

  /// The gradients, by tensor name.
  var gradients: [String: [S]] { boxes.mapValues(\.values) }
}
