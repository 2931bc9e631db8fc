import Quantization

/// One planned linear layer as the baselines see it: its HF module path and shape.
public struct LayerShape: Sendable, Equatable {
  /// `model.layers.N.self_attn.q_proj`.
  public var name: String
  /// Output dimension.
  public var rows: Int
  /// Input dimension.
  public var columns: Int

  public init(name: String, rows: Int, columns: Int) {
    self.name = name
    self.rows = rows
    self.columns = columns
  }

  /// The block index `N` of `model.layers.N.…`, or nil.
  public var block: Int? {
    let parts = name.split(separator: ".")
    guard parts.count > 2, parts[0] == "model", parts[1] == "layers" else { return nil }
    return Int(parts[2])
  }

  /// The last path component (`q_proj`, `down_proj`, …).
  public var kind: Substring { name.split(separator: ".").last ?? "" }
}

/// How a layer's bytes are counted and which formats a layer may take: the `QuantFormat` grammar's exact sizes
/// (`grammar`, the default), or a runtime's (`Target.storedBytes`, `Target.canStore`) for a plan made with
/// `--target`, so that the plan and its "same-size" baselines are sized in the bytes the runtime stores.
public struct ByteModel: Sendable {
  /// `any` for the grammar, else the target's name (`gptqmodel`, …).
  public var name: String
  /// The bytes of `layer` in `format`. Called only where `canStore(format, layer)` holds.
  public var bytes: @Sendable (QuantFormat, LayerShape) -> Int
  /// Whether `format` may be given to `layer`.
  public var canStore: @Sendable (QuantFormat, LayerShape) -> Bool

  public init(
    name: String, bytes: @escaping @Sendable (QuantFormat, LayerShape) -> Int,
    canStore: @escaping @Sendable (QuantFormat, LayerShape) -> Bool
  ) {
    self.name = name
    self.bytes = bytes
    self.canStore = canStore
  }

  /// The grammar: `QuantFormat.sizeInBytes(rows:columns:)` and `canQuantize(rows:columns:)` (what BitPlan counts
  /// without a target; `Target.any` counts the same).
  public static let grammar = ByteModel(
    name: Target.any.rawValue, bytes: { f, l in f.sizeInBytes(rows: l.rows, columns: l.columns) },
    canStore: { f, l in f.canQuantize(rows: l.rows, columns: l.columns) })

  /// The bytes `target` stores (`Target.storedBytes`) and the formats it stores (`Target.canStore`); the layer
  /// named `model.embed_tokens` is the token embedding. `.any` is `grammar`.
  public static func target(_ target: Target) -> ByteModel {
    if target == .any { return .grammar }
    return ByteModel(
      name: target.rawValue,
      bytes: { f, l in target.storedBytes(f, rows: l.rows, columns: l.columns, isEmbedding: l.isEmbedding) },
      canStore: { f, l in target.canStore(f, rows: l.rows, columns: l.columns, isEmbedding: l.isEmbedding) })
  }
}

extension LayerShape {
  /// Whether this is the token embedding (`model.embed_tokens`).
  public var isEmbedding: Bool { name == "model.embed_tokens" }
}

/// A format per layer, with what it costs.
public struct Assignment: Sendable, Equatable {
  /// Layer name → format.
  public var formats: [String: QuantFormat]
  /// Σ exact bytes of the assigned formats, counted by the byte model given (the grammar's by default).
  public var totalBytes: Int

  /// - Parameter byteModel: how bytes are counted; every assigned format must be one it can store for its layer.
  public init(formats: [String: QuantFormat], layers: [LayerShape], byteModel: ByteModel = .grammar) {
    self.formats = formats
    totalBytes = layers.reduce(0) { sum, l in sum + (formats[l.name].map { byteModel.bytes($0, l) } ?? 0) }
  }
}

/// The same-size baselines a plan is compared with (DESIGN.md `--baselines uniform,q4km,edges`).
///
/// Each is built from the plan's candidate formats, for the plan's planned layers, with total bytes at most the
/// plan's (`budgetBytes`). Bytes are those of the byte model given (`ByteModel`: the grammar's by default, a
/// target's for a plan made with `--target`, so "same size" means the same size in the runtime's bytes), and a
/// layer is offered only the candidates the byte model can store for it. Bits per weight below are the byte
/// model's (bytes · 8 / parameters).
/// - `uniform`: one format for every layer: among the candidates every layer can take whose total fits, the one
///   with the least predicted loss when a score is given (a measured run), else the one with the most bytes.
/// - `q4km`: llama.cpp's Q4_K_M rule (`llama_tensor_get_type` in src/llama-quant.cpp): `attn_v` (`v_proj`) and
///   `ffn_down` (`down_proj`) get q6_K in the blocks where `use_more_bits(i, n)` holds (`i < n/8 ∨ i ≥ 7n/8 ∨
///   (i − n/8) mod 3 = 2`), every other layer q4_K. Mapped onto the candidates: per layer, the candidate it can
///   take whose bits per weight are nearest 6.5625 ("high") or 4.5 ("base"); then filled up to the budget. The
///   output matrix (`lm_head`, and a tied `model.embed_tokens`, which llama.cpp quantizes as the output) is high:
///   q6_K, or q8_0 (nearest 8.5) when its row is not a multiple of 256 values (`nx % qk_k != 0`); an untied
///   `model.embed_tokens` keeps the base type (q4_K, its shape fallback included in the nearest-rung mapping).
/// - `edges`: the first and last blocks high (the candidate nearest 8.5 bits per weight, q8_0's), every other
///   layer the largest uniform format that still fits; then filled up to the budget.
///
/// Filling keeps the rule's shape: the layers the rule leaves at the base level rise first. In passes over the
/// layers (for q4km: the base layers in block order, then the other v/down layers, then the high ones; for edges:
/// the inner blocks, then the edge blocks), each layer moves one step up its ladder (its candidates by bytes) when
/// the total still fits; passes repeat until none moves. A start over the budget is lowered first, one rung at a
/// time in the same order (base layers first), until it fits, and then filled.
public enum Baselines {
  /// The three kinds.
  public enum Kind: String, Sendable, CaseIterable, Codable {
    case uniform, q4km, edges
  }

  /// A built baseline.
  public struct Baseline: Sendable, Equatable {
    public var kind: Kind
    /// `uniform int4-g128`, `q4km (q4_0/q8_0, filled)`, …
    public var label: String
    public var assignment: Assignment
  }

  /// Builds `kind` for `layers` from `candidates` under `budgetBytes`.
  /// - Parameters:
  ///   - predictedLoss: the measured score of (layer index, format), when a run is given; used to rank uniform
  ///     formats and to order equal-size rungs of a ladder.
  ///   - tiedEmbedding: whether `model.embed_tokens` is also the LM head (q4km quantizes it as the output then).
  ///   - byteModel: how bytes are counted and which candidates a layer can take (`budgetBytes` is in its bytes).
  /// - Returns: nil with the reason when no assignment of this kind fits.
  public static func make(
    _ kind: Kind, layers: [LayerShape], candidates: [QuantFormat], budgetBytes: Int,
    predictedLoss: ((Int, QuantFormat) -> Double?)? = nil, tiedEmbedding: Bool = false, byteModel: ByteModel = .grammar
  ) -> Result<Baseline, PlanValidationError> {
    let m = byteModel
    let ladders = layers.enumerated().map { i, l in ladder(l, index: i, candidates: candidates, predictedLoss: predictedLoss, byteModel: m) }
    if let empty = ladders.firstIndex(where: \.isEmpty) {
      let by = m.name == Target.any.rawValue ? "" : " that \(m.name) stores"
      return .failure(PlanValidationError(.unknownFormat, "no candidate format\(by) can take \(layers[empty].name) [\(layers[empty].rows), \(layers[empty].columns)]"))
    }
    switch kind {
    case .uniform:
      return uniform(layers: layers, candidates: candidates, budgetBytes: budgetBytes, predictedLoss: predictedLoss, byteModel: m)
    case .q4km:
      let blocks = (layers.compactMap(\.block).max() ?? -1) + 1
      var high: [Int] = [], vd: [Int] = [], rest: [Int] = []
      var target = [Double](repeating: 4.5, count: layers.count)
      for (i, l) in layers.enumerated() {
        let moreBits = l.kind == "v_proj" || l.kind == "down_proj"
        if isOutput(l, tiedEmbedding: tiedEmbedding) {
          high.append(i)
          target[i] = l.columns % 256 == 0 ? 6.5625 : 8.5
        } else if moreBits, let b = l.block, useMoreBits(b, blocks) {
          high.append(i)
          target[i] = 6.5625
        } else if moreBits { vd.append(i) } else { rest.append(i) }
      }
      let start = layers.indices.map { nearest(ladders[$0], layers[$0], bitsPerWeight: target[$0], byteModel: m) }
      return fill(
        .q4km, "q4km", layers: layers, ladders: ladders, start: start, raise: rest + vd + high, lower: rest + vd + high,
        budgetBytes: budgetBytes, byteModel: m)
    case .edges:
      let blocks = layers.compactMap(\.block)
      let (first, last) = (blocks.min() ?? 0, blocks.max() ?? 0)
      let edge = layers.indices.filter { layers[$0].block == first || layers[$0].block == last }
      let inner = layers.indices.filter { !edge.contains($0) }
      var start = [Int](repeating: 0, count: layers.count)
      for i in edge { start[i] = nearest(ladders[i], layers[i], bitsPerWeight: 8.5, byteModel: m) }
      // The inner layers start at the largest common format that fits beside the high edges (else the smallest).
      let edgeBytes = edge.reduce(0) { $0 + m.bytes(ladders[$1][start[$1]], layers[$1]) }
      let common = candidates.filter { f in inner.allSatisfy { m.canStore(f, layers[$0]) } }
      let innerBytes = { (f: QuantFormat) in inner.reduce(0) { $0 + m.bytes(f, layers[$1]) } }
      if let base = common.filter({ edgeBytes + innerBytes($0) <= budgetBytes }).max(by: { innerBytes($0) < innerBytes($1) }) {
        for i in inner { start[i] = ladders[i].firstIndex(of: base) ?? 0 }
      }
      return fill(
        .edges, "edges", layers: layers, ladders: ladders, start: start, raise: inner + edge, lower: inner + edge,
        budgetBytes: budgetBytes, byteModel: m)
    }
  }

  /// Whether llama.cpp quantizes `layer` as the output tensor: `lm_head` (`output.weight`), or the token
  /// embedding of a tied model (`llama_tensor_get_type`: `category == OUTPUT || (has_tied_embeddings &&
  /// category == TOKEN_EMBD)`).
  static func isOutput(_ layer: LayerShape, tiedEmbedding: Bool) -> Bool {
    layer.name == "lm_head" || (tiedEmbedding && layer.name == "model.embed_tokens")
  }

  /// llama.cpp's `use_more_bits(i_layer, n_layers)`, in C integer arithmetic.
  public static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
  }

  /// The formats `layer` can take (those of `candidates` the byte model can store for it), by bytes ascending; of
  /// formats with equal bytes only the best is kept (least predicted loss, else the first listed).
  static func ladder(
    _ layer: LayerShape, index: Int, candidates: [QuantFormat], predictedLoss: ((Int, QuantFormat) -> Double?)?,
    byteModel: ByteModel = .grammar
  ) -> [QuantFormat] {
    var bySize: [Int: QuantFormat] = [:]
    for f in candidates where byteModel.canStore(f, layer) {
      let bytes = byteModel.bytes(f, layer)
      if let kept = bySize[bytes] {
        if let a = predictedLoss?(index, f), let b = predictedLoss?(index, kept), a < b { bySize[bytes] = f }
      } else {
        bySize[bytes] = f
      }
    }
    return bySize.keys.sorted().map { bySize[$0]! }
  }

  /// The rung whose bits per weight (bytes · 8 / parameters) is nearest `bitsPerWeight` (ties to the smaller).
  static func nearest(
    _ ladder: [QuantFormat], _ layer: LayerShape, bitsPerWeight target: Double, byteModel: ByteModel = .grammar
  ) -> Int {
    let params = Double(layer.rows * layer.columns)
    var best = 0
    var bestDistance = Double.infinity
    for (i, f) in ladder.enumerated() {
      let d = abs(Double(byteModel.bytes(f, layer)) * 8 / params - target)
      if d < bestDistance - 1e-12 { (best, bestDistance) = (i, d) }
    }
    return best
  }

  static func uniform(
    layers: [LayerShape], candidates: [QuantFormat], budgetBytes: Int, predictedLoss: ((Int, QuantFormat) -> Double?)?,
    byteModel m: ByteModel = .grammar
  ) -> Result<Baseline, PlanValidationError> {
    var best: (format: QuantFormat, bytes: Int, loss: Double?)?
    for f in candidates where layers.allSatisfy({ m.canStore(f, $0) }) {
      let bytes = layers.reduce(0) { $0 + m.bytes(f, $1) }
      guard bytes <= budgetBytes else { continue }
      var loss: Double? = predictedLoss == nil ? nil : 0
      for i in layers.indices { loss = loss.flatMap { l in predictedLoss?(i, f).map { l + $0 } } }
      let better: Bool
      if let b = best {
        if let loss, let bl = b.loss { better = loss < bl } else { better = bytes > b.bytes }
      } else {
        better = true
      }
      if better { best = (f, bytes, loss) }
    }
    guard let best else {
      return .failure(PlanValidationError(.badSettings, "no single candidate format fits every layer within \(budgetBytes) bytes"))
    }
    let formats = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, best.format) })
    return .success(
      Baseline(kind: .uniform, label: "uniform \(best.format.name)", assignment: Assignment(formats: formats, layers: layers, byteModel: m)))
  }

  static func fill(
    _ kind: Kind, _ name: String, layers: [LayerShape], ladders: [[QuantFormat]], start: [Int], raise: [Int],
    lower: [Int], budgetBytes: Int, byteModel m: ByteModel = .grammar
  ) -> Result<Baseline, PlanValidationError> {
    var rung = start
    let bytes = { (i: Int, r: Int) in m.bytes(ladders[i][r], layers[i]) }
    var total = layers.indices.reduce(0) { $0 + bytes($1, rung[$1]) }
    var lowered = false
    while total > budgetBytes {
      var moved = false
      for i in lower where rung[i] > 0 && total > budgetBytes {
        total += bytes(i, rung[i] - 1) - bytes(i, rung[i])
        rung[i] -= 1
        moved = true
      }
      lowered = true
      if !moved {
        return .failure(PlanValidationError(.badSettings, "\(name): even the smallest candidates exceed \(budgetBytes) bytes"))
      }
    }
    var raised = false
    while true {
      var moved = false
      for i in raise where rung[i] + 1 < ladders[i].count {
        let delta = bytes(i, rung[i] + 1) - bytes(i, rung[i])
        if total + delta <= budgetBytes {
          total += delta
          rung[i] += 1
          moved = true
        }
      }
      if !moved { break }
      raised = true
    }
    let formats = Dictionary(uniqueKeysWithValues: layers.indices.map { (layers[$0].name, ladders[$0][rung[$0]]) })
    var used: [String: Int] = [:]
    for f in formats.values { used[f.name, default: 0] += 1 }
    let mix = used.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map(\.key).joined(separator: "/")
    let label = "\(name) (\(mix)\(raised ? ", filled" : lowered ? ", lowered" : ""))"
    return .success(Baseline(kind: kind, label: label, assignment: Assignment(formats: formats, layers: layers, byteModel: m)))
  }
}
