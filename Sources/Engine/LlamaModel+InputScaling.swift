/// Linear layers of one block that read the same input, and the RMSNorm (if any) whose output that input is:
/// the unit of an activation-aware input scaling (AWQ). For a llama block:
/// - q, k, v read `input_layernorm`'s output;
/// - o_proj reads the attention's output (no norm in front);
/// - gate, up read `post_attention_layernorm`'s output;
/// - down_proj reads SwiGLU's output (no norm in front).
///
/// A per-channel scale s of a group with a norm is folded exactly into the norm's weight (g ← g / s: the norm's
/// output, and so every member's input, is divided by s while each member's W becomes W·diag(s)); a group without
/// one keeps s as a vector its operator applies to the input (Validation's `PackedLinear(inputScale:)`).
public struct InputGroup: Sendable, Hashable, Codable {
  /// Module paths of the layers, in forward order (`model.layers.3.self_attn.q_proj`, ...).
  public var layers: [String]
  /// Tensor name of the RMSNorm weight whose output the layers read (`model.layers.3.input_layernorm.weight`), or
  /// nil when no norm precedes them (o_proj, down_proj).
  public var norm: String?
  /// Width of the shared input (columns of every member's weight).
  public var inFeatures: Int
  /// Block index `N` in `model.layers.N`.
  public var block: Int

  public init(layers: [String], norm: String?, inFeatures: Int, block: Int) {
    self.layers = layers
    self.norm = norm
    self.inFeatures = inFeatures
    self.block = block
  }
}

extension LlamaModel {
  /// Every block's four input groups, block by block: [q, k, v] after `input_layernorm`, [o_proj], [gate, up] after
  /// `post_attention_layernorm`, [down_proj]. Every linear layer of `linearLayers` is in exactly one group.
  public var inputGroups: [InputGroup] {
    var groups: [InputGroup] = []
    for (b, block) in blocks.enumerated() {
      let layers = linearLayers.filter { $0.block == b }
      func names(_ kinds: [LinearKind]) -> [String] { kinds.map { layers[$0.rawValue].name } }
      groups.append(InputGroup(layers: names([.q, .k, .v]), norm: block.inputNormName, inFeatures: layers[0].inFeatures, block: b))
      groups.append(InputGroup(layers: names([.o]), norm: nil, inFeatures: layers[LinearKind.o.rawValue].inFeatures, block: b))
      groups.append(
        InputGroup(layers: names([.gate, .up]), norm: block.postNormName, inFeatures: layers[LinearKind.gate.rawValue].inFeatures, block: b))
      groups.append(InputGroup(layers: names([.down]), norm: nil, inFeatures: layers[LinearKind.down.rawValue].inFeatures, block: b))
    }
    return groups
  }

  /// The input group holding a linear layer (by module path).
  /// - Throws: `EngineError.unknownTensor` when the model has no such linear layer (the LM head and the embedding
  ///   belong to no group).
  public func inputGroup(ofLayer name: String) throws(EngineError) -> InputGroup {
    guard let layer = linearLayers.first(where: { $0.name == name }) else {
      throw EngineError(.unknownTensor, "no linear layer '\(name)' (expected a module path like model.layers.0.mlp.up_proj)")
    }
    return inputGroups.first { $0.block == layer.block && $0.layers.contains(name) }!
  }

  /// Multiplies an RMSNorm weight element-wise by `factors` (g_j ← g_j · f_j), in place.
  /// - Throws: `EngineError.unknownTensor` when `norm` is not a norm weight of a block
  ///   (`model.layers.N.input_layernorm.weight` or `…post_attention_layernorm.weight`), `.shapeMismatch` when
  ///   `factors.count` differs from the norm's width or a factor is not finite.
  public func scaleNormWeight(_ norm: String, by factors: [Scalar]) throws(EngineError) {
    try updateNorm(norm, factors.count, "factors") { $0 * factors[$1] }
  }

  /// Folds an input scale into the norm in front of a group: g_j ← g_j / s_j, so that each member's input becomes
  /// x ⊙ s⁻¹ (AWQ's `scale_ln_fcs`). Each member's weight must then be W·diag(s) (or a quantization of it) for the
  /// model's output to stay unchanged.
  /// - Throws: `EngineError.unknownTensor` when the group has no norm in front (o_proj, down_proj: apply the scale
  ///   in the operator instead) or is not this model's, `.shapeMismatch` for a wrong count or a zero or non-finite
  ///   scale.
  public func foldInputScale(_ scales: [Scalar], into group: InputGroup) throws(EngineError) {
    guard let norm = group.norm else {
      throw EngineError(
        .unknownTensor, "\(group.layers.joined(separator: ", ")) read no norm's output; apply the input scale in the layer's operator")
    }
    if let bad = scales.firstIndex(where: { $0 == 0 }) {
      throw EngineError(.shapeMismatch, "input scale \(bad) of '\(norm)' is zero")
    }
    try updateNorm(norm, scales.count, "scales") { $0 / scales[$1] }
  }

  private func updateNorm(
    _ norm: String, _ count: Int, _ what: String, _ f: (Scalar, Int) -> Scalar
  ) throws(EngineError) {
    guard blocks.contains(where: { $0.inputNormName == norm || $0.postNormName == norm }) else {
      throw EngineError(
        .unknownTensor, "'\(norm)' is not a block's norm weight (expected model.layers.N.input_layernorm.weight or …post_attention_layernorm.weight)")
    }
    var g = try weight(named: norm)
    guard count == g.count else {
      throw EngineError(.shapeMismatch, "\(count) \(what) for '\(norm)' of width \(g.count)")
    }
    for j in 0..<g.count { g[j] = f(g[j], j) }
    if let bad = g.firstIndex(where: { !$0.isFinite }) {
      throw EngineError(.shapeMismatch, "\(what) make '\(norm)'[\(bad)] non-finite")
    }
    try replaceWeight(name: norm, with: g)
  }
}
