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

/// A format per layer, with what it costs.
public struct Assignment: Sendable, Equatable {
  /// Layer name → format.
  public var formats: [String: QuantFormat]
  /// Σ exact bytes of the assigned formats.
  public var totalBytes: Int

  public init(formats: [String: QuantFormat], layers: [LayerShape]) {
    self.formats = formats
    totalBytes = layers.reduce(0) { sum, l in sum + (formats[l.name]?.sizeInBytes(rows: l.rows, columns: l.columns) ?? 0) }
  }
}

/// The same-size baselines a plan is compared with (DESIGN.md `--baselines uniform,q4km,edges`).
///
/// Each is built from the plan's candidate formats, for the plan's planned layers, with total bytes at most the
/// plan's (`budgetBytes`):
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
  /// - Returns: nil with the reason when no assignment of this kind fits.
  public static func make(
    _ kind: Kind, layers: [LayerShape], candidates: [QuantFormat], budgetBytes: Int,
    predictedLoss: ((Int, QuantFormat) -> Double?)? = nil, tiedEmbedding: Bool = false
  ) -> Result<Baseline, PlanValidationError> {
    let ladders = layers.enumerated().map { i, l in ladder(l, index: i, candidates: candidates, predictedLoss: predictedLoss) }
    if let empty = ladders.firstIndex(where: \.isEmpty) {
      return .failure(PlanValidationError(.unknownFormat, "no candidate format can take \(layers[empty].name) [\(layers[empty].rows), \(layers[empty].columns)]"))
    }
    switch kind {
    case .uniform:
      return uniform(layers: layers, candidates: candidates, budgetBytes: budgetBytes, predictedLoss: predictedLoss)
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
      let start = layers.indices.map { nearest(ladders[$0], layers[$0], bitsPerWeight: target[$0]) }
      return fill(
        .q4km, "q4km", layers: layers, ladders: ladders, start: start, raise: rest + vd + high, lower: rest + vd + high,
        budgetBytes: budgetBytes)
    case .edges:
      let blocks = layers.compactMap(\.block)
      let (first, last) = (blocks.min() ?? 0, blocks.max() ?? 0)
      let edge = layers.indices.filter { layers[$0].block == first || layers[$0].block == last }
      let inner = layers.indices.filter { !edge.contains($0) }
      var start = [Int](repeating: 0, count: layers.count)
      for i in edge { start[i] = nearest(ladders[i], layers[i], bitsPerWeight: 8.5) }
      // The inner layers start at the largest common format that fits beside the high edges (else the smallest).
      let edgeBytes = edge.reduce(0) { $0 + ladders[$1][start[$1]].sizeInBytes(rows: layers[$1].rows, columns: layers[$1].columns) }
      let common = candidates.filter { f in inner.allSatisfy { f.canQuantize(rows: layers[$0].rows, columns: layers[$0].columns) } }
      let innerBytes = { (f: QuantFormat) in inner.reduce(0) { $0 + f.sizeInBytes(rows: layers[$1].rows, columns: layers[$1].columns) } }
      if let base = common.filter({ edgeBytes + innerBytes($0) <= budgetBytes }).max(by: { innerBytes($0) < innerBytes($1) }) {
        for i in inner { start[i] = ladders[i].firstIndex(of: base) ?? 0 }
      }
      return fill(
        .edges, "edges", layers: layers, ladders: ladders, start: start, raise: inner + edge, lower: inner + edge,
        budgetBytes: budgetBytes)
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

  /// The formats `layer` can take, by bytes ascending; of formats with equal bytes only the best is kept (least
  /// predicted loss, else the first listed).
  static func ladder(
    _ layer: LayerShape, index: Int, candidates: [QuantFormat], predictedLoss: ((Int, QuantFormat) -> Double?)?
  ) -> [QuantFormat] {
    var bySize: [Int: QuantFormat] = [:]
    for f in candidates where f.canQuantize(rows: layer.rows, columns: layer.columns) {
      let bytes = f.sizeInBytes(rows: layer.rows, columns: layer.columns)
      if let kept = bySize[bytes] {
        if let a = predictedLoss?(index, f), let b = predictedLoss?(index, kept), a < b { bySize[bytes] = f }
      } else {
        bySize[bytes] = f
      }
    }
    return bySize.keys.sorted().map { bySize[$0]! }
  }

  /// The rung whose bits per weight (bytes · 8 / parameters) is nearest `bitsPerWeight` (ties to the smaller).
  static func nearest(_ ladder: [QuantFormat], _ layer: LayerShape, bitsPerWeight target: Double) -> Int {
    let params = Double(layer.rows * layer.columns)
    var best = 0
    var bestDistance = Double.infinity
    for (i, f) in ladder.enumerated() {
      let d = abs(Double(f.sizeInBytes(rows: layer.rows, columns: layer.columns)) * 8 / params - target)
      if d < bestDistance - 1e-12 { (best, bestDistance) = (i, d) }
    }
    return best
  }

  static func uniform(
    layers: [LayerShape], candidates: [QuantFormat], budgetBytes: Int, predictedLoss: ((Int, QuantFormat) -> Double?)?
  ) -> Result<Baseline, PlanValidationError> {
    var best: (format: QuantFormat, bytes: Int, loss: Double?)?
    for f in candidates where layers.allSatisfy({ f.canQuantize(rows: $0.rows, columns: $0.columns) }) {
      let bytes = layers.reduce(0) { $0 + f.sizeInBytes(rows: $1.rows, columns: $1.columns) }
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
    return .success(Baseline(kind: .uniform, label: "uniform \(best.format.name)", assignment: Assignment(formats: formats, layers: layers)))
  }

  static func fill(
    _ kind: Kind, _ name: String, layers: [LayerShape], ladders: [[QuantFormat]], start: [Int], raise: [Int],
    lower: [Int], budgetBytes: Int
  ) -> Result<Baseline, PlanValidationError> {
    var rung = start
    let bytes = { (i: Int, r: Int) in ladders[i][r].sizeInBytes(rows: layers[i].rows, columns: layers[i].columns) }
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
    return .success(Baseline(kind: kind, label: label, assignment: Assignment(formats: formats, layers: layers)))
  }
}
