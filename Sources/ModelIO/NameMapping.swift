#if canImport(TensorCore)
  import TensorCore
#endif

/// Tensor names and Q/K row order between llama.cpp's GGUF convention and Hugging Face's llama checkpoints.
///
/// `convert_hf_to_gguf.py` renames every tensor and permutes the rows of `q_proj`/`k_proj` so that llama.cpp's
/// RoPE, which rotates adjacent pairs `(2i, 2i+1)`, gives the same result as HF's rotate-half, which pairs
/// `(i, i + d/2)` inside each head. Loading a GGUF into an HF-order engine must undo both.
public enum NameMapping {
  /// Non-layer tensors, GGUF base name → HF base name.
  static let globalNames: [(gguf: String, hf: String)] = [
    ("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head"),
  ]

  /// Per-block tensors, GGUF name after `blk.N.` → HF name after `model.layers.N.`.
  static let layerNames: [(gguf: String, hf: String)] = [
    ("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
  ]

  static let suffixes = [".weight", ".bias"]

  /// The HF name of a llama GGUF tensor (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`), or
  /// nil for names outside the mapping (`rope_freqs.weight`).
  public static func hfName(forGGUF name: String) -> String? {
    guard let suffix = suffixes.first(where: { name.hasSuffix($0) }) else { return nil }
    let base = String(name.dropLast(suffix.count))
    if let g = globalNames.first(where: { $0.gguf == base }) { return g.hf + suffix }
    guard let (layer, rest) = split(base, prefix: "blk."),
      let l = layerNames.first(where: { $0.gguf == rest })
    else { return nil }
    return "model.layers.\(layer).\(l.hf)\(suffix)"
  }

  /// The GGUF name of an HF llama tensor (`model.norm.weight` → `output_norm.weight`), or nil.
  public static func ggufName(forHF name: String) -> String? {
    guard let suffix = suffixes.first(where: { name.hasSuffix($0) }) else { return nil }
    let base = String(name.dropLast(suffix.count))
    if let g = globalNames.first(where: { $0.hf == base }) { return g.gguf + suffix }
    guard let (layer, rest) = split(base, prefix: "model.layers."),
      let l = layerNames.first(where: { $0.hf == rest })
    else { return nil }
    return "blk.\(layer).\(l.gguf)\(suffix)"
  }

  /// `prefix` + decimal layer index + `.` + rest, with a canonical index (no sign, no leading zeros).
  private static func split(_ s: String, prefix: String) -> (Int, String)? {
    guard s.hasPrefix(prefix) else { return nil }
    let tail = s.dropFirst(prefix.count)
    guard let dot = tail.firstIndex(of: "."), let layer = Int(tail[..<dot]), layer >= 0,
      String(layer) == tail[..<dot]
    else { return nil }
    return (layer, String(tail[tail.index(after: dot)...]))
  }

  /// Which RoPE-permuted projection an HF name is, if any: `q_proj` uses the query heads, `k_proj` the KV heads.
  public enum RoPEProjection: Sendable { case query, key }

  /// `.query` for `…self_attn.q_proj.{weight,bias}`, `.key` for `k_proj`, nil otherwise.
  public static func ropeProjection(hfName name: String) -> RoPEProjection? {
    if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") { return .query }
    if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") { return .key }
    return nil
  }

  /// Undoes llama.cpp's Q/K row permutation: GGUF order → HF order.
  ///
  /// With `rows = heads · 2 · half`, GGUF row `head·2·half + 2i + j` holds HF row `head·2·half + j·half + i`:
  /// `w.reshape(heads, half, 2, rest).swapaxes(1, 2)`.
  /// - Throws: `.badShape` when the rows are not `heads` whole heads of even size.
  public static func unpermuteRoPE(_ t: Tensor, heads: Int) throws(ModelIOError) -> Tensor {
    try permute(t, heads: heads, toHF: true)
  }

  /// llama.cpp's Q/K row permutation: HF order → GGUF order (`w.reshape(heads, 2, half, rest).swapaxes(1, 2)`),
  /// the inverse of `unpermuteRoPE`.
  public static func permuteRoPE(_ t: Tensor, heads: Int) throws(ModelIOError) -> Tensor {
    try permute(t, heads: heads, toHF: false)
  }

  /// Where each HF-order row of a `rows`-row Q or K projection is stored in a GGUF: `ggufRows[hfRow]`. Head h's rows
  /// are split in halves in HF order (rotate-half) and interleaved in GGUF order: HF row `h·2·half + j·half + i` is
  /// GGUF row `h·2·half + 2i + j`. Shared by the Float permutation and by callers that move stored (packed) rows.
  /// - Throws: `.badShape` when the rows do not split into `heads` heads of even size.
  public static func ggufRows(rows: Int, heads: Int) throws(ModelIOError) -> [Int] {
    // `rows % (2 * heads)` could overflow for a hostile head count; divide instead.
    guard heads > 0, rows > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
      throw ModelIOError(.badShape, "cannot split \(rows) rows into \(heads) RoPE heads of even size")
    }
    let half = rows / heads / 2
    var order = [Int](repeating: 0, count: rows)
    for h in 0..<heads {
      for i in 0..<half {
        for j in 0..<2 { order[h * 2 * half + j * half + i] = h * 2 * half + 2 * i + j }
      }
    }
    return order
  }

  private static func permute(_ t: Tensor, heads: Int, toHF: Bool) throws(ModelIOError) -> Tensor {
    let rows = t.shape.first ?? 0
    let order: [Int]
    do { order = try ggufRows(rows: rows, heads: heads) } catch {
      throw ModelIOError(.badShape, "cannot split \(rows) rows of \(t.shape) into \(heads) RoPE heads of even size")
    }
    let rowLength = t.count / rows
    var out = t.storage
    t.storage.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for (hfRow, ggufRow) in order.enumerated() {
          let (from, to) = toHF ? (ggufRow, hfRow) : (hfRow, ggufRow)
          for c in 0..<rowLength { dst[to * rowLength + c] = src[from * rowLength + c] }
        }
      }
    }
    return Tensor(shape: t.shape, storage: out)
  }
}
