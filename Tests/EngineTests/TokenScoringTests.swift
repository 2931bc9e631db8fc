import Engine
import _TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// NLL, KL divergence and top-1 agreement (`TokenScoring`, `ReferenceDistribution`) against brute-force Double
/// computations on seeded random logits, for both storage precisions, and the cache format's round trip.
@Suite struct TokenScoringTests {
  static let (rows, vocabulary) = (7, 300)

  /// Logits uniform in ±`scale` (log-probabilities then span about 2·scale nats).
  static func logits(seed: UInt64, scale: Float = 6) -> [Float] {
    randomFloats(rows * vocabulary, seed: seed, scale: scale)
  }

  static let targets: [Int] = {
    var rng = SplitMix64(seed: 11)
    return (0..<rows).map { _ in Int(rng.next() % UInt64(vocabulary)) }
  }()

  /// log-softmax of row r in Double, the obvious way.
  static func logSoftmax(_ z: [Float], row r: Int) -> [Double] {
    let x = (0..<vocabulary).map { Double(z[r * vocabulary + $0]) }
    let m = x.max()!
    let lse = m + log(x.map { exp($0 - m) }.reduce(0, +))
    return x.map { $0 - lse }
  }

  /// (e^s − 1)², the bound on KL(p̂‖p) of a `.uint16` row with grid step s (see `ReferenceDistribution`).
  static func selfBound(_ s: Double) -> Double { (exp(s) - 1) * (exp(s) - 1) }

  /// Double rounding slack of a 300-term KL sum of O(10) terms.
  static let rounding = 1e-12

  @Test func nllIsExact() throws {
    let z = Self.logits(seed: 1)
    let reference = ReferenceDistribution(logits: z, rows: Self.rows, vocabulary: Self.vocabulary)
    let scores = try TokenScoring.score(logits: z, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: reference)
    let alone = TokenScoring.nll(logits: z, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets)
    #expect(scores.nll == alone)
    for r in 0..<Self.rows {
      let want = -Self.logSoftmax(z, row: r)[Self.targets[r]]
      #expect(abs(scores.nll[r] - want) <= 1e-14 * abs(want), "row \(r): \(scores.nll[r]) vs \(want)")
    }
  }

  @Test(arguments: [ReferenceDistribution.Precision.exact, .uint16])
  func kldOfADistributionWithItselfIsZeroToStorageRounding(precision: ReferenceDistribution.Precision) throws {
    let z = Self.logits(seed: 2)
    let reference = ReferenceDistribution(logits: z, rows: Self.rows, vocabulary: Self.vocabulary, precision: precision)
    let scores = try TokenScoring.score(logits: z, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: reference)
    for r in 0..<Self.rows {
      let bound = Self.selfBound(reference.step(row: r)) + Self.rounding
      #expect(scores.kld[r] >= -Self.rounding && scores.kld[r] <= bound, "row \(r): \(scores.kld[r]) > \(bound)")
    }
    #expect(scores.top1Agrees.allSatisfy { $0 } && scores.top1Agreement == 1)
    if precision == .uint16 { #expect(reference.step(row: 0) > 0 && reference.step(row: 0) < 12.5 / 65535) }
  }

  /// KL(p‖q) of two different windows against Σ p (log p − log q) in Double: within rounding for `.exact`, within
  /// (eˢ − 1)² + (eˢ − 1)·Σ p |log p − log q| for `.uint16`.
  @Test(arguments: [ReferenceDistribution.Precision.exact, .uint16])
  func kldMatchesBruteForce(precision: ReferenceDistribution.Precision) throws {
    let p = Self.logits(seed: 3)
    let noise = Self.logits(seed: 4, scale: 0.5)
    let q = zip(p, noise).map { $0 + $1 }
    let reference = ReferenceDistribution(logits: p, rows: Self.rows, vocabulary: Self.vocabulary, precision: precision)
    let scores = try TokenScoring.score(logits: q, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: reference)
    let twin = try TokenScoring.scoreReference(logits: q, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: reference)
    #expect(scores.nll == twin.nll && scores.top1Agrees == twin.top1Agrees)
    for r in 0..<Self.rows {
      let (lp, lq) = (Self.logSoftmax(p, row: r), Self.logSoftmax(q, row: r))
      let want = zip(lp, lq).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) }
      let spread = zip(lp, lq).reduce(0) { $0 + exp($1.0) * abs($1.0 - $1.1) }
      let s = reference.step(row: r)
      let bound = Self.selfBound(s) + (exp(s) - 1) * spread + Self.rounding
      #expect(abs(scores.kld[r] - want) <= bound, "row \(r): \(scores.kld[r]) vs \(want), bound \(bound)")
      #expect(abs(scores.kld[r] - twin.kld[r]) <= Self.rounding, "fast vs reference twin, row \(r)")
      #expect(want > 1e-3, "the windows differ")
      let argmax = { (z: [Float]) in (0..<Self.vocabulary).max { z[r * Self.vocabulary + $0] < z[r * Self.vocabulary + $1] }! }
      #expect(scores.top1Agrees[r] == (argmax(p) == argmax(q)))
      #expect(Int(reference.argmax[r]) == argmax(p))
    }
  }

  @Test func topOneDisagreementIsSeen() throws {
    var p = [Float](repeating: 0, count: 2 * 5)
    p[0 * 5 + 3] = 4
    p[1 * 5 + 1] = 4
    var q = p
    q[1 * 5 + 1] = 0
    q[1 * 5 + 4] = 4
    let reference = ReferenceDistribution(logits: p, rows: 2, vocabulary: 5)
    let scores = try TokenScoring.score(logits: q, rows: 2, vocabulary: 5, targets: [3, 4], reference: reference)
    #expect(scores.top1Agrees == [true, false] && scores.top1Agreement == 0.5)
  }

  /// The cached form scores bit-identically to the fresh one; malformed bytes are typed errors.
  @Test(arguments: [ReferenceDistribution.Precision.exact, .uint16])
  func serializedReferenceScoresIdentically(precision: ReferenceDistribution.Precision) throws {
    let p = Self.logits(seed: 5), q = Self.logits(seed: 6)
    let reference = ReferenceDistribution(logits: p, rows: Self.rows, vocabulary: Self.vocabulary, precision: precision)
    let bytes = reference.serialized()
    let perEntry = precision == .uint16 ? 2 : 8
    #expect(bytes.count == 32 + Self.rows * (4 + (precision == .uint16 ? 16 : 8)) + Self.rows * Self.vocabulary * perEntry)
    let loaded = try ReferenceDistribution(serialized: bytes)
    #expect(loaded == reference)
    let a = try TokenScoring.score(logits: q, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: reference)
    let b = try TokenScoring.score(logits: q, rows: Self.rows, vocabulary: Self.vocabulary, targets: Self.targets, reference: loaded)
    #expect(a == b)

    func code(_ bytes: [UInt8]) -> EngineError.Code? {
      do {
        _ = try ReferenceDistribution(serialized: bytes)
        return nil
      } catch { return error.code }
    }
    #expect(code(Array(bytes.dropLast())) == .badReference, "truncated")
    #expect(code(bytes + [0]) == .badReference, "trailing byte")
    #expect(code(Array(bytes.prefix(20))) == .badReference, "short header")
    var bad = bytes
    bad[0] = 0x58
    #expect(code(bad) == .badReference, "magic")
    bad = bytes
    bad[4] = 2
    #expect(code(bad) == .badReference, "version")
    bad = bytes
    bad[8] = 7
    #expect(code(bad) == .badReference, "precision")
    bad = bytes
    bad[32] = 0xFF
    bad[33] = 0xFF
    #expect(code(bad) == .badReference, "argmax outside the vocabulary")
    bad = bytes
    bad[23] = 0x7F
    #expect(code(bad) == .badReference, "rows out of range")
  }

  @Test func mismatchedWindowsAreTypedErrors() throws {
    let z = Self.logits(seed: 7)
    let reference = ReferenceDistribution(logits: z, rows: Self.rows, vocabulary: Self.vocabulary)
    let shorter = Array(z.prefix((Self.rows - 1) * Self.vocabulary))
    #expect { try TokenScoring.score(logits: shorter, rows: Self.rows - 1, vocabulary: Self.vocabulary, targets: Array(Self.targets.dropLast()), reference: reference) } throws: {
      ($0 as? EngineError)?.code == .badReference
    }
    #expect { try TokenScoring.score(logits: z, rows: Self.rows, vocabulary: Self.vocabulary, targets: [1], reference: reference) } throws: {
      ($0 as? EngineError)?.code == .badTokens
    }
  }

  /// Scores of a model's own logits: a Double model's exact reference gives KL 0 and the model's NLL.
  @Test func modelLogitsScoreAsTheModel() throws {
    let model: LlamaModel<Double> = try TinyModel.model()
    let logits = try model.logits(tokens: TinyModel.tokens)
    let reference = ReferenceDistribution(logits: logits, precision: .exact)
    let scores = try TokenScoring.score(logits: logits, targets: Array(TinyModel.tokens.dropFirst()), reference: reference)
    let nll = try model.tokenNLL(tokens: TinyModel.tokens)
    for (a, b) in zip(scores.nll, nll) { #expect(abs(a - b) <= 1e-13) }
    #expect(scores.kld.allSatisfy { abs($0) <= 1e-14 })
  }
}
