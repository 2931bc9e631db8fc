import GGML

/// PEQA/L4Q-style scale tuning of a packed integer tensor: the codes (and zero points) stay fixed, only the f16
/// per-group scales move.
///
/// An integer tensor `int<B>[-g<G>][-asym]` (`IntegerCodec`) decodes as `Ŵ_j = (u_j − z_g)·s_g`, with `u_j` the
/// stored code, `z_g` the group's zero point (`2^(B−1)` when symmetric) and `s_g` its f16 scale (negative for a
/// symmetric group whose largest |x| is positive: the scale carries the sign). `Groups` splits a `PackedTensor` into
/// those fixed integers `q_j = u_j − z_g` and the scales, rebuilds `Ŵ` for any scales, and gives the gradient of a
/// loss with respect to the scales from its gradient with respect to `Ŵ`:
///
///     ∂L/∂s_g = Σ_{j ∈ g} ∂L/∂Ŵ_j · q_j        (= Σ ∂L/∂Ŵ_j · Ŵ_j / s_g when s_g ≠ 0)
///
/// Straight-through: the stored scale is f16, so `Ŵ` is a step function of a Float scale; the gradient is the one
/// of the unrounded map. Groups are `G` weights along a row (the whole row without `-g`), numbered row-major:
/// group `g` of row `r` is index `r · groupsPerRow + g`.
///
/// Other formats (GGML blocks, nf4, ternary, affine, float) are not tuned: `supports` says which are, and callers
/// leave the others as they are. `gradientReference` is the slow twin: central finite differences of the linear
/// loss `Σ G_j·Ŵ_j` through `replacingScales` and `dequantize()`.
public enum ScaleTuning {
  /// Whether the format's scales can be tuned (the integer formats).
  public static func supports(_ format: QuantFormat) -> Bool {
    if case .integer = format.scheme { return true }
    return false
  }

  /// A packed integer tensor as fixed integers and tunable scales.
  public struct Groups: Sendable {
    /// The tensor the codes come from (its bytes are the template `packed(scales:)` writes new scales into).
    public let packed: PackedTensor
    /// Weights per group (the format's group size, or `columns` when per-channel).
    public let groupLength: Int
    /// Groups in one row.
    public let groupsPerRow: Int
    /// The stored scales, `rows · groupsPerRow`, row-major.
    public let scales: [Float]
    /// `q_j = u_j − z_g`, row-major like the weights.
    let codes: [Int16]
    let bits: Int

    /// Reads the codes and scales of `packed`.
    /// - Throws: `QuantizationError.unsupportedShape` when the format is not an integer format (`supports`).
    public init(_ packed: PackedTensor) throws(QuantizationError) {
      guard case .integer(let bits) = packed.format.scheme else {
        throw QuantizationError(
          .unsupportedShape, "\(packed.format.name): scale tuning takes the integer formats int<B>[-g<G>][-asym] only")
      }
      let length = packed.format.groupSize ?? packed.columns
      let symmetric = packed.format.symmetric
      let groupSize = IntegerCodec.groupBytes(length: length, bits: bits, symmetric: symmetric)
      let perRow = packed.columns / max(length, 1)
      var scales = [Float](repeating: 0, count: packed.rows * perRow)
      var codes = [Int16](repeating: 0, count: packed.rows * packed.columns)
      packed.bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return }
        for group in 0..<scales.count {
          let p = base + group * groupSize
          scales[group] = BlockBytes.f16(p, 0)
          let zero = symmetric ? 1 << (bits - 1) : Int(p.load(fromByteOffset: 2, as: UInt8.self))
          let area = p + (symmetric ? 2 : 3)
          for j in 0..<length { codes[group * length + j] = Int16(IntegerCodec.loadCode(area, j, bits: bits) - zero) }
        }
      }
      self.packed = packed
      self.groupLength = length
      self.groupsPerRow = perRow
      self.scales = scales
      self.codes = codes
      self.bits = bits
    }

    /// Number of groups (`rows · groupsPerRow`).
    public var count: Int { scales.count }

    /// The integers `q_j = u_j − z_g` of every weight, row-major (the codes `dequantize()` multiplies by the scale).
    public var integerCodes: [Int] { codes.map(Int.init) }

    /// `Ŵ` for `scales` rounded to f16: equal to `packed(scales:).dequantize()` without writing bytes.
    /// - Throws: as `packed(scales:)` for a wrong count or a scale that is not finite in f16.
    public func weights(scales: [Float]) throws(QuantizationError) -> [Float] {
      let rounded = try Self.roundedScales(scales, count: count)
      var out = [Float](repeating: 0, count: codes.count)
      let length = groupLength
      out.withUnsafeMutableBufferPointer { o in
        codes.withUnsafeBufferPointer { q in
          for g in 0..<rounded.count {
            let s = rounded[g]
            for j in (g * length)..<((g + 1) * length) { o[j] = Float(q[j]) * s }
          }
        }
      }
      return out
    }

    /// The tensor with `scales` (rounded to f16) in place of the stored ones; codes and zero points unchanged, so
    /// the bytes differ only in the scale fields and have the same length.
    /// - Throws: `QuantizationError.sizeMismatch` when `scales.count != count`, `.badData` for a scale that is not
    ///   finite once rounded to f16 (|s| > 65504 or NaN).
    public func packed(scales: [Float]) throws(QuantizationError) -> PackedTensor {
      let rounded = try Self.roundedScales(scales, count: count)
      let size = IntegerCodec.groupBytes(length: groupLength, bits: bits, symmetric: packed.format.symmetric)
      var bytes = packed.bytes
      bytes.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        for g in 0..<rounded.count { BlockBytes.storeF16(rounded[g], base + g * size, 0) }
      }
      do {
        return try PackedTensor(format: packed.format, rows: packed.rows, columns: packed.columns, bytes: bytes)
      } catch let error as QuantizationError {
        throw error
      } catch {
        throw QuantizationError(.badData, "\(error)")
      }
    }

    /// ∂L/∂s_g = Σ_{j∈g} ∂L/∂Ŵ_j · q_j for every group, summed in Double.
    /// - Parameter weightGradient: ∂L/∂Ŵ, `rows · columns`, row-major like the weights.
    /// - Throws: `QuantizationError.sizeMismatch` for a wrong count, `.badData` for a non-finite gradient.
    public func gradient(weightGradient: [Float]) throws(QuantizationError) -> [Float] {
      try check(weightGradient)
      let length = groupLength
      var out = [Float](repeating: 0, count: count)
      weightGradient.withUnsafeBufferPointer { w in
        codes.withUnsafeBufferPointer { q in
          for g in 0..<out.count {
            var sum = 0.0
            for j in (g * length)..<((g + 1) * length) { sum += Double(w[j]) * Double(q[j]) }
            out[g] = Float(sum)
          }
        }
      }
      return out
    }

    /// Reference twin of `gradient`: for each group, the linear loss `L = Σ G_j·Ŵ_j` (Double) of
    /// `packed(scales:).dequantize()` at the stored scale moved up and down by a step, divided by the difference
    /// of the two f16 scales actually stored. L is linear in s_g, so this is exact up to rounding. O(groups · size).
    /// - Throws: as `gradient`.
    public func gradientReference(weightGradient: [Float]) throws(QuantizationError) -> [Float] {
      try check(weightGradient)
      func loss(_ s: [Float]) throws(QuantizationError) -> Double {
        let w = try packed(scales: s).dequantize()
        return zip(w, weightGradient).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
      }
      var out = [Float](repeating: 0, count: count)
      for g in 0..<count {
        var up = scales, down = scales
        let step = max(abs(scales[g]) * 0.01, 1e-3)
        up[g] = BlockBytes.roundToF16(scales[g] + step)
        down[g] = BlockBytes.roundToF16(scales[g] - step)
        out[g] = Float((try loss(up) - loss(down)) / Double(up[g] - down[g]))
      }
      return out
    }

    func check(_ weightGradient: [Float]) throws(QuantizationError) {
      guard weightGradient.count == codes.count else {
        throw QuantizationError(
          .sizeMismatch,
          "a gradient of \(weightGradient.count) values for a [\(packed.rows), \(packed.columns)] \(packed.format.name) tensor")
      }
      if let bad = weightGradient.firstIndex(where: { !$0.isFinite }) {
        throw QuantizationError(.badData, "gradient value \(bad) (row \(bad / max(packed.columns, 1))) is \(weightGradient[bad])")
      }
    }

    static func roundedScales(_ scales: [Float], count: Int) throws(QuantizationError) -> [Float] {
      guard scales.count == count else {
        throw QuantizationError(.sizeMismatch, "\(scales.count) scales for a tensor of \(count) groups")
      }
      let rounded = scales.map(BlockBytes.roundToF16)
      if let bad = rounded.firstIndex(where: { !$0.isFinite }) {
        throw QuantizationError(.badData, "scale \(bad) is \(scales[bad]), not finite in f16")
      }
      return rounded
    }
  }
}
