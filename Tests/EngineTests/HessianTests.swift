import Engine
import _TestSupport
import Testing

/// Hessian-vector products against the exact Hessian of the tiny model over all 1,344 linear weights.
///
/// The exact Hessian is built column by column in Double from the analytic gradient (itself checked against
/// finite differences in `ModelGradientTests`) with the five-point stencil
///   H e_j = (−g(w + 2h e_j) + 8 g(w + h e_j) − 8 g(w − h e_j) + g(w − 2h e_j)) / 12h,
/// whose truncation error is h⁴/30 · |g⁽⁵⁾| and rounding ≈ 1.5 u |g| / h. With h = 1e-3 both are below 1e-12
/// for this O(1) model: "exact" to ~1e-11, four orders below the tightest tolerance used against it.
@Suite(.serialized) struct HessianTests {
  /// Linear weights in model order and the flat Hessian H[i·n + j].
  struct Exact {
    let names: [String]
    let counts: [Int]
    let matrix: [Double]
    var size: Int { counts.reduce(0, +) }

    func times(_ v: [Double]) -> [Double] {
      (0..<size).map { i in (0..<size).reduce(0.0) { $0 + matrix[i * size + $1] * v[$1] } }
    }
  }

  static let stencilStep = 1e-3

  /// Built once: 4 gradients per column, ~5,400 tiny gradient passes.
  static let exact: Exact = {
    let model: LlamaModel<Double> = try! TinyModel.model(tied: true)
    let names = model.linearWeightNames
    let counts = model.linearLayers.map(\.parameterCount)
    let n = counts.reduce(0, +)
    var matrix = [Double](repeating: 0, count: n * n)
    var column = 0
    for name in names {
      let w = try! model.weight(named: name)
      for j in w.indices {
        var g: [[Double]] = []
        for k in [2.0, 1, -1, -2] {
          var shifted = w
          shifted[j] += k * stencilStep
          try! model.replaceWeight(name: name, with: shifted)
          let grads = try! model.gradients(tokens: TinyModel.tokens, of: Set(names)).gradients
          g.append(names.flatMap { grads[$0]! })
        }
        for i in 0..<n { matrix[i * n + column] = (-g[0][i] + 8 * g[1][i] - 8 * g[2][i] + g[3][i]) / (12 * stencilStep) }
        column += 1
      }
      try! model.replaceWeight(name: name, with: w)
    }
    return Exact(names: names, counts: counts, matrix: matrix)
  }()

  /// Splits a flat vector into per-weight arrays and back.
  static func split<S: EngineScalar>(_ flat: [Double], as _: S.Type = S.self) -> [String: [S]] {
    var result: [String: [S]] = [:], offset = 0
    for (name, count) in zip(exact.names, exact.counts) {
      result[name] = flat[offset..<offset + count].map { S($0) }
      offset += count
    }
    return result
  }
  static func flatten<S: EngineScalar>(_ parts: [String: [S]]) -> [Double] {
    exact.names.flatMap { parts[$0]!.map(Double.init) }
  }
  static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    let diff = zip(a, b).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    return (diff / b.reduce(0.0) { $0 + $1 * $1 }).squareRoot()
  }
  static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0.0) { $0 + $1.0 * $1.1 } }

  @Test func exactHessianIsSymmetric() {
    let (h, n) = (Self.exact.matrix, Self.exact.size)
    let scale = h.map(abs).max()!
    var worst = 0.0
    for i in 0..<n { for j in 0..<i { worst = max(worst, abs(h[i * n + j] - h[j * n + i])) } }
    #expect(n == 1344 && scale > 0.1)
    #expect(worst <= 1e-9 * scale, "asymmetry \(worst) vs scale \(scale)")
  }

  /// Double: with κ = u^(1/3)/4 = 1.2e-6 the truncation term is κ²·C₃ with C₃ ≈ 50 on this model (measured: the
  /// error is 4.8e-5 at κ = 1e-3 and scales as κ²), ≈ 7e-11, and rounding u·C/κ ≈ 1e-10: bound 1e-7, measured ~1e-10.
  static let doubleTolerance = 1e-7

  /// Float: κ = u^(1/3)/4 = 9.7e-4 gives truncation ≈ 50·κ² ≈ 5e-5 and rounding ≈ C·u/κ with the gradient's
  /// rounding constant C ≲ 500 (depth × cancellation), ≈ 3e-5: bound 1e-3, measured ~6e-5.
  static let floatTolerance = 1e-3

  @Test(arguments: [11, 12, 13] as [UInt64])
  func doubleHVPMatchesExactHessian(seed: UInt64) throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let v = randomDoubles(Self.exact.size, seed: seed)
    let hv = Self.flatten(try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: Self.split(v, as: Double.self)))
    let error = Self.relativeError(hv, Self.exact.times(v))
    print("Double HVP relative error (seed \(seed)): \(error)")
    #expect(error <= Self.doubleTolerance)
  }

  @Test(arguments: [11, 12, 13] as [UInt64])
  func floatHVPMatchesExactHessian(seed: UInt64) throws {
    let model: LlamaModel<Float> = try TinyModel.model(tied: true)
    let v = randomDoubles(Self.exact.size, seed: seed).map { $0 < 0 ? -1.0 : 1.0 }  // Rademacher, as Hutchinson uses
    let hv = Self.flatten(try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: Self.split(v, as: Float.self)))
    let error = Self.relativeError(hv, Self.exact.times(v))
    print("Float HVP relative error (seed \(seed)): \(error)")
    #expect(error <= Self.floatTolerance)
  }

  /// One-sided variant against a base gradient: first-order truncation κ·C₂ plus rounding u·C/κ at κ = √u.
  /// Double (κ = 1.5e-8): both ~1.5e-8·C with C ≈ 5 → bound 1e-6 (measured 5e-8). Float (κ = 2.4e-4):
  /// ~2.4e-4·C → bound 1e-2 (measured 1e-3).
  static let oneSidedTolerance = (double: 1e-6, float: 1e-2)

  @Test func oneSidedHVPMatchesExactHessian() throws {
    let v = randomDoubles(Self.exact.size, seed: 41).map { $0 < 0 ? -1.0 : 1.0 }
    let want = Self.exact.times(v)
    func error<S: EngineScalar>(_ model: LlamaModel<S>) throws -> Double {
      let base = try model.gradients(tokens: TinyModel.tokens, of: Set(model.linearWeightNames)).gradients
      let before = base
      let hv = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: Self.split(v, as: S.self), baseGradient: base)
      #expect(base == before, "the caller's base gradient must not change")
      return Self.relativeError(Self.flatten(hv), want)
    }
    let (d, f) = (try error(try TinyModel.model(tied: true, as: Double.self)), try error(try TinyModel.model(tied: true, as: Float.self)))
    print("one-sided HVP relative error: Double \(d), Float \(f)")
    #expect(d <= Self.oneSidedTolerance.double)
    #expect(f <= Self.oneSidedTolerance.float)
  }

  /// The streamed one-sided HVP hands over every linear weight exactly once, with the very values the returned
  /// product has (same GEMM, same base, same step), for a full probe and for one that moves a single layer.
  @Test func streamedHVPEqualsReturnedHVP() throws {
    let model: LlamaModel<Float> = try TinyModel.model(tied: true, as: Float.self)
    let names = Set(model.linearWeightNames)
    let base = try model.gradients(tokens: TinyModel.tokens, of: names).gradients
    let full = Self.split(randomDoubles(Self.exact.size, seed: 43).map { $0 < 0 ? -1.0 : 1.0 }, as: Float.self)
    let one = [model.linearWeightNames[3]: full[model.linearWeightNames[3]]!]
    for vector in [full, one] {
      let want = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: vector, baseGradient: base)
      var got: [String: [Float]] = [:]
      try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: vector, baseGradient: base) { name, block in
        #expect(got[name] == nil, "\(name) handed over twice")
        got[name] = Array(block)
      }
      #expect(Set(got.keys) == names)
      for name in names { #expect(got[name] == want[name], "\(name)") }
    }
  }

  /// The one-sided HVP along a regenerated probe (`StreamedVector`) hands over each block of the probe once, with v's
  /// block beside it, bit for bit the dense product's blocks and v itself: a ±1 probe's ‖v‖² is its count, so ε,
  /// W + εV and every GEMM are the same. Tied and untied, Float and Double, every linear weight and a single one; a
  /// zero probe gives zero blocks.
  @Test(arguments: [true, false])
  func regeneratedProbeHVPEqualsDenseHVP(tied: Bool) throws {
    func check<S: EngineScalar>(_ model: LlamaModel<S>) throws {
      let names = model.linearWeightNames
      let base = try model.gradients(tokens: TinyModel.tokens, of: Set(names)).gradients
      let full = Self.split(randomDoubles(Self.exact.size, seed: 47).map { $0 < 0 ? -1.0 : 1.0 }, as: S.self)
      let zero = full.mapValues { $0.map { _ in S(0) } }
      for (vector, moved) in [(full, names), ([names[2]: full[names[2]]!], [names[2]]), (zero, names)] {
        var want: [String: [S]] = [:]
        try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: vector, baseGradient: base) { name, block in
          want[name] = Array(block)
        }
        var fills = 0
        let probe = StreamedVector<S>(names: moved, squaredNorm: Double(moved.reduce(0) { $0 + vector[$1]!.count { $0 != 0 } })) { name, out in
          fills += 1
          _ = out.initialize(from: vector[name]!)
        }
        var got: [String: (v: [S], hv: [S])] = [:]
        try model.hessianVectorProduct(tokens: TinyModel.tokens, probe: probe, baseGradient: base) { name, v, hv in
          #expect(got[name] == nil, "\(name) handed over twice")
          got[name] = (Array(v), Array(hv))
        }
        #expect(Set(got.keys) == Set(moved))
        #expect(fills <= 2 * moved.count, "\(fills) fills for \(moved.count) blocks")
        for name in moved {
          #expect(got[name]!.v == vector[name]!, "\(S.self) v of \(name)")
          #expect(got[name]!.hv.map { Double($0).bitPattern } == want[name]!.map { Double($0).bitPattern }, "\(S.self) Hv of \(name)")
        }
      }
    }
    try check(try TinyModel.model(tied: tied, as: Float.self))
    try check(try TinyModel.model(tied: tied, as: Double.self))
  }

  /// The regenerated-probe HVP refuses the embedding, a weight named twice and a block the base gradient lacks,
  /// by name.
  @Test func regeneratedProbeHVPRefusesBadProbes() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let (name, embedding) = (model.linearWeightNames[0], "model.embed_tokens.weight")
    let base = try model.gradients(tokens: TinyModel.tokens, of: [name, embedding]).gradients
    func probe(_ names: [String]) -> StreamedVector<Double> {
      StreamedVector(names: names, squaredNorm: 1) { _, out in out.initialize(repeating: 1) }
    }
    for (names, gradient, error) in [
      ([embedding], base, EngineError(.unknownTensor, "'\(embedding)' is not a linear weight, or is named twice")),
      ([name, name], base, EngineError(.unknownTensor, "'\(name)' is not a linear weight, or is named twice")),
      ([name], [:], EngineError(.missingTensor, "baseGradient has no block '\(name)'")),
    ] {
      #expect(throws: error) {
        try model.hessianVectorProduct(tokens: TinyModel.tokens, probe: probe(names), baseGradient: gradient) { _, _, _ in }
      }
    }
  }

  /// The streamed quadratic forms (the probe regenerated block by block, the base gradient only through its
  /// projections) equal the one-sided product's blocks dotted with v, up to where the difference is taken: both
  /// subtract gradients that agree to ε, so each carries a rounding of ~u/κ relative to ‖v_W‖‖(Hv)_W‖ (Double:
  /// 1.1e-16/1.5e-8 ≈ 7e-9, measured up to 4e-9; bound 1e-7), and Float within the HVP's own error; with and without the
  /// embedding as a variable, tied and untied. Every block is filled on demand, and the streamed gradient equals
  /// the returned one bit for bit.
  @Test(arguments: [true, false])
  func streamedQuadraticFormsEqualOneSidedProducts(tied: Bool) throws {
    func check<S: EngineScalar>(_ model: LlamaModel<S>, tolerance: Double) throws {
      let embedding = "model.embed_tokens.weight"
      for names in [model.linearWeightNames, model.linearWeightNames + [embedding]] {
        let sizes = Dictionary(uniqueKeysWithValues: names.map { ($0, try! model.weight(named: $0).count) })
        let flat = randomDoubles(sizes.values.reduce(0, +), seed: 61).map { $0 < 0 ? S(-1) : S(1) }
        var vector: [String: [S]] = [:], offset = 0
        for name in names {
          vector[name] = Array(flat[offset..<offset + sizes[name]!])
          offset += sizes[name]!
        }
        var streamed: [String: [S]] = [:]
        try model.gradients(tokens: TinyModel.tokens, of: Set(names)) { name, block in
          #expect(streamed[name] == nil, "\(name) handed over twice")
          streamed[name] = Array(block)
        }
        let base = try model.gradients(tokens: TinyModel.tokens, of: Set(names)).gradients
        #expect(streamed == base, "the streamed gradient must equal the returned one")
        let hv = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: vector, baseGradient: base, of: Set(names))
        let projections = Dictionary(uniqueKeysWithValues: names.map { name in
          (name, zip(vector[name]!, base[name]!).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
        })
        let linear = names.filter { $0 != embedding }.count
        // the table is formed a chunk of rows at a time: one chunk (the default), then several (not a whole number
        // of rows per chunk boundary of the dot's sums); with and without a range form of the probe
        for (chunkElements, ranged) in [(model.tableChunkElements, true), (3 * model.configuration.hidden, true), (3 * model.configuration.hidden, false)] {
          model.tableChunkElements = chunkElements
          defer { model.tableChunkElements = 1 << 22 }
          var (fills, rangeFills) = (0, 0)
          let fillRange: ((String, Int, UnsafeMutableBufferPointer<S>) -> Void)? = ranged ? { name, offset, out in
            rangeFills += 1
            for i in out.indices { out[i] = vector[name]![offset + i] }
          } : nil
          let probe = StreamedVector<S>(names: names, squaredNorm: Double(flat.count), fillRange: fillRange) { name, out in
            fills += 1
            for i in out.indices { out[i] = vector[name]![i] }
          }
          let forms = try model.hessianQuadraticForms(tokens: TinyModel.tokens, probe: probe, baseProjections: projections)
          #expect(Set(forms.keys) == Set(names))
          if ranged {
            #expect(fills >= linear && fills <= 2 * linear, "\(fills) fills for \(linear) linear blocks")
            #expect((rangeFills > 0) == (names.count > linear), "\(rangeFills) table ranges")
          }
          for name in names {
            let v = vector[name]!.map(Double.init), h = hv[name]!.map(Double.init)
            let want = Self.dot(v, h)
            let scale = Self.dot(v, v).squareRoot() * Self.dot(h, h).squareRoot()
            #expect(abs(forms[name]! - want) <= tolerance * scale, "\(S.self) \(name) (\(chunkElements)): \(forms[name]!) vs \(want)")
          }
        }
      }
    }
    try check(try TinyModel.model(tied: tied, as: Double.self), tolerance: 1e-7)
    try check(try TinyModel.model(tied: tied, as: Float.self), tolerance: Self.oneSidedTolerance.float)
  }

  /// A streamed probe that names a tensor twice or lacks a base projection is refused by name.
  @Test func streamedQuadraticFormsRefuseBadProbes() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let name = model.linearWeightNames[0]
    let twice = StreamedVector<Double>(names: [name, name], squaredNorm: 1) { _, out in out.initialize(repeating: 1) }
    #expect(throws: EngineError.self) {
      try model.hessianQuadraticForms(tokens: TinyModel.tokens, probe: twice, baseProjections: [name: 0])
    }
    let once = StreamedVector<Double>(names: [name], squaredNorm: 1) { _, out in out.initialize(repeating: 1) }
    #expect(throws: EngineError.self) {
      try model.hessianQuadraticForms(tokens: TinyModel.tokens, probe: once, baseProjections: [:])
    }
  }

  /// Per-layer quadratic forms vᵀ_W (Hv)_W against the exact Hessian's blocks; they sum to vᵀHv. Each block's error
  /// is at most the HVP's relative error times ‖v_W‖‖(Hv)_W‖ (Cauchy–Schwarz), so the bound is the HVP tolerance
  /// on that scale.
  @Test func quadraticFormsMatchExactHessian() throws {
    let v = randomDoubles(Self.exact.size, seed: 51).map { $0 < 0 ? -1.0 : 1.0 }
    let hv = Self.split(Self.exact.times(v), as: Double.self), parts = Self.split(v, as: Double.self)
    func check<S: EngineScalar>(_ model: LlamaModel<S>, tolerance: Double) throws {
      let forms = try model.hessianQuadraticForms(tokens: TinyModel.tokens, vector: Self.split(v, as: S.self))
      #expect(Set(forms.keys) == Set(Self.exact.names))
      for name in Self.exact.names {
        let want = Self.dot(parts[name]!, hv[name]!)
        let scale = Self.dot(parts[name]!, parts[name]!).squareRoot() * Self.dot(hv[name]!, hv[name]!).squareRoot()
        #expect(abs(forms[name]! - want) <= tolerance * scale, "\(S.self) \(name): \(forms[name]!) vs \(want)")
      }
    }
    try check(try TinyModel.model(tied: true, as: Double.self), tolerance: Self.doubleTolerance)
    try check(try TinyModel.model(tied: true, as: Float.self), tolerance: Self.floatTolerance)
  }

  /// uᵀ(Hv) = vᵀ(Hu): each side carries the HVP's relative error, so the bound is the same tolerance relative to
  /// ‖u‖‖Hv‖ (Cauchy–Schwarz).
  @Test func symmetry() throws {
    let u = randomDoubles(Self.exact.size, seed: 21), v = randomDoubles(Self.exact.size, seed: 22)
    let double: LlamaModel<Double> = try TinyModel.model(tied: true)
    let float: LlamaModel<Float> = try TinyModel.model(tied: true)
    func sides<S: EngineScalar>(_ model: LlamaModel<S>) throws -> (Double, Double, Double) {
      let hv = Self.flatten(try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: Self.split(v, as: S.self)))
      let hu = Self.flatten(try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: Self.split(u, as: S.self)))
      let norm = { (x: [Double]) in Self.dot(x, x).squareRoot() }
      return (Self.dot(u, hv), Self.dot(v, hu), norm(u) * norm(hv))
    }
    let (ud, vd, scaleD) = try sides(double)
    let (uf, vf, scaleF) = try sides(float)
    print("symmetry Double \(ud) vs \(vd); Float \(uf) vs \(vf)")
    #expect(abs(ud - vd) <= Self.doubleTolerance * scaleD)
    #expect(abs(uf - vf) <= Self.floatTolerance * scaleF)
  }

  /// A direction in one weight only, and a subset of outputs: the matching block of H, and nothing else returned.
  @Test func partialDirectionAndOutputs() throws {
    let model: LlamaModel<Double> = try TinyModel.model(tied: true)
    let name = "model.layers.0.self_attn.k_proj.weight", out = "model.layers.1.mlp.down_proj.weight"
    var flat = [Double](repeating: 0, count: Self.exact.size)
    let offset = Self.exact.counts[..<Self.exact.names.firstIndex(of: name)!].reduce(0, +)
    let local = randomDoubles(64, seed: 31)
    flat.replaceSubrange(offset..<offset + 64, with: local)
    let before = try model.weight(named: name)
    let result = try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: [name: local], of: [out])
    #expect(Array(result.keys) == [out])
    let want = Self.split(Self.exact.times(flat), as: Double.self)[out]!
    #expect(Self.relativeError(result[out]!, want) <= Self.doubleTolerance)
    #expect(try model.weight(named: name) == before, "HVP must leave the weights bit-for-bit unchanged")
    #expect(throws: EngineError.self) {
      try model.hessianVectorProduct(tokens: TinyModel.tokens, vector: ["model.norm.weight": [0]])
    }
  }
}
