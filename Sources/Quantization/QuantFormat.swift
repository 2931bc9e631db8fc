import GGML

/// A candidate storage format for one weight matrix, named by the DESIGN.md grammar.
///
/// Grammar (case-insensitive on input, printed lower-case):
/// ```
/// format   := "f32" | "f16" | "bf16"
///           | "int" BITS [ "-g" GROUP ] [ "-asym" | "-sym" ]     BITS in 2...8
///           | "nf4" [ "-g" GROUP ] | "ternary" [ "-g" GROUP ]
///           | "affine" BITS "-g" GROUP                               BITS in 2...8 (MLX's affine format)
///           | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q8_0" | "q2_k" | "q3_k" | "q4_k" | "q5_k" | "q6_k"
///           | "w8a8" [ "-a" ALPHA ]                                  SmoothQuant W8A8, α = 0.5 when omitted
/// GROUP    := a multiple of 32 in 32...4096
/// ALPHA    := "0" | "1" | ("0" | "1") "." 1 to 3 digits, a value in 0...1 (printed shortest: w8a8-a0.8, w8a8-a0)
/// ```
/// A name without `-gG` is **per-channel**: one group spans a whole row (the input dimension of an `[out, in]`
/// weight), so `int8` is per-channel int8 as DESIGN.md says, and `int4` is per-channel int4. Symmetric is the
/// default; `-asym` adds an 8-bit zero point per group. `affine<B>-g<G>` is MLX's affine format (`mx.quantize`,
/// mode "affine"): B-bit codes with an f16 scale and an f16 bias per group of G, always asymmetric, the group size
/// mandatory (`AffineCodec`). Groups and GGML blocks run along a row, so a format can take
/// a `[rows, columns]` tensor only when its group or block size divides `columns` (`canQuantize(rows:columns:)`).
///
/// `w8a8[-a<α>]` is SmoothQuant's W8A8 (Xiao et al. 2023; `SmoothQuant`): the weights are stored exactly as `int8`
/// (per-output-channel symmetric int8, one f16 scale per row) but of W·diag(s), and the layer's input is divided by
/// s and quantized per token to int8, with s_j = (max|X_j| / max|W_{:,j}|)^α from the calibration inputs (α, the
/// migration strength, in 0...1; α = 0 gives s = 1, i.e. plain `int8` with int8 activations). Its scheme is
/// `.integer(bits: 8)` per-channel symmetric, so every codec and kernel treats the codes as `int8`'s;
/// `migrationStrength` is what tells it apart. Its bytes are `int8`'s: s is not counted, as AWQ's is not (it folds
/// into the preceding RMSNorm for q/k/v and gate/up; o_proj and down_proj need `in` more values at run time).
///
/// The byte layout of each scheme is documented on its codec: `IntegerCodec`, `NF4Codec`, `TernaryCodec`, `AffineCodec`, and for
/// GGML types the GGML module (`GGMLType`, `GGMLLayout`, `GGMLEncode`, `GGMLDecode`). Every row is stored independently, so a tensor is `rows` copies of one row layout.
public struct QuantFormat: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible, Codable {
  /// The family of a format.
  public enum Scheme: Hashable, Sendable {
    /// IEEE binary32, stored as is (the unquantized baseline).
    case f32
    /// IEEE binary16, round to nearest even.
    case f16
    /// bfloat16, round to nearest even.
    case bf16
    /// Uniform `bits`-bit integer codes with one f16 scale per group (and a zero point when asymmetric).
    case integer(bits: Int)
    /// 4-bit NormalFloat codebook (QLoRA) with one f16 absmax scale per group.
    case nf4
    /// Ternary codes {-1, 0, 1} with one f16 absmean scale per group (BitNet b1.58).
    case ternary
    /// A GGML block type, byte-identical to ggml.
    case ggml(GGMLType)
    /// MLX's affine format: `bits`-bit codes with one scale and one bias per group, quantized as mlx's
    /// `affine_quantize` does (`AffineCodec`).
    case affine(bits: Int)
  }

  /// The family.
  public let scheme: Scheme
  /// Weights per group along a row; `nil` means per-channel (one group per row). For GGML types, the block size.
  public let groupSize: Int?
  /// Symmetric (scale only) or asymmetric (scale + zero point / minimum).
  public let symmetric: Bool

  /// SmoothQuant's migration strength α in thousandths for `w8a8` formats; nil for every other format.
  let migrationStrengthThousandths: Int?

  /// SmoothQuant's migration strength α in 0...1 (a multiple of 0.001) for `w8a8[-a<α>]`; nil for every other
  /// format. The weights are `int8` of W·diag(s) and the input is quantized per token as X·diag(s)⁻¹ (`SmoothQuant`).
  public var migrationStrength: Double? { migrationStrengthThousandths.map { Double($0) / 1000 } }

  /// Whether this is a SmoothQuant `w8a8` format (its input is smoothed and always quantized to int8 per token).
  public var isW8A8: Bool { migrationStrengthThousandths != nil }

  /// The migration strength of a bare `w8a8`: SmoothQuant's default, 0.5.
  public static let defaultMigrationStrength = 0.5

  /// Group sizes accepted by the grammar.
  public static let groupSizeRange = 32...4096

  private init(scheme: Scheme, groupSize: Int?, symmetric: Bool, migrationStrengthThousandths: Int? = nil) {
    self.scheme = scheme
    self.groupSize = groupSize
    self.symmetric = symmetric
    self.migrationStrengthThousandths = migrationStrengthThousandths
  }

  /// SmoothQuant W8A8 with migration strength `alpha` (`w8a8`, `w8a8-a0.8`): per-channel symmetric int8 weights of
  /// W·diag(s) and per-token int8 activations of X·diag(s)⁻¹ (`SmoothQuant.scales`). `alpha` is rounded to the
  /// nearest thousandth.
  /// - Throws: `QuantizationError.badFormatName` naming the format when `alpha` is NaN, negative or above 1.
  public static func w8a8(alpha: Double = defaultMigrationStrength) throws -> QuantFormat {
    guard alpha.isFinite, (0...1).contains(alpha) else {
      throw QuantizationError(.badFormatName, "w8a8-a\(alpha): migration strength α must be a number in 0...1")
    }
    return QuantFormat(
      scheme: .integer(bits: 8), groupSize: nil, symmetric: true,
      migrationStrengthThousandths: Int((alpha * 1000).rounded()))
  }

  /// IEEE binary32.
  public static let f32 = QuantFormat(scheme: .f32, groupSize: nil, symmetric: true)
  /// IEEE binary16.
  public static let f16 = QuantFormat(scheme: .f16, groupSize: nil, symmetric: true)
  /// bfloat16.
  public static let bf16 = QuantFormat(scheme: .bf16, groupSize: nil, symmetric: true)

  /// Uniform integer format `int<bits>[-g<group>][-asym]`.
  /// - Throws: `QuantizationError.badFormatName` when `bits` is outside 2...8 or `group` is not a multiple of 32 in
  ///   `groupSizeRange`.
  public static func integer(bits: Int, group: Int? = nil, symmetric: Bool = true) throws -> QuantFormat {
    guard (2...8).contains(bits) else {
      throw QuantizationError(.badFormatName, "int\(bits): integer formats take 2 to 8 bits")
    }
    try checkGroup(group, name: "int\(bits)")
    return QuantFormat(scheme: .integer(bits: bits), groupSize: group, symmetric: symmetric)
  }

  /// NormalFloat-4 with one absmax scale per group (`nf4-g64`).
  public static func nf4(group: Int? = nil) throws -> QuantFormat {
    try checkGroup(group, name: "nf4")
    return QuantFormat(scheme: .nf4, groupSize: group, symmetric: true)
  }

  /// Ternary with one absmean scale per group (`ternary-g64`).
  public static func ternary(group: Int? = nil) throws -> QuantFormat {
    try checkGroup(group, name: "ternary")
    return QuantFormat(scheme: .ternary, groupSize: group, symmetric: true)
  }

  /// MLX's affine format `affine<bits>-g<group>` (`AffineCodec`).
  /// - Throws: `QuantizationError.badFormatName` when `bits` is outside 2...8 or `group` is not a multiple of 32 in
  ///   `groupSizeRange`.
  public static func affine(bits: Int, group: Int) throws -> QuantFormat {
    guard (2...8).contains(bits) else {
      throw QuantizationError(.badFormatName, "affine\(bits)-g\(group): affine formats take 2 to 8 bits")
    }
    try checkGroup(group, name: "affine\(bits)")
    return QuantFormat(scheme: .affine(bits: bits), groupSize: group, symmetric: false)
  }

  /// A GGML block type (`q4_0`, `q4_k`, ...).
  /// - Precondition: `type.canQuantize` (q4_0 … q8_0, q2_K … q6_K).
  public static func ggml(_ type: GGMLType) -> QuantFormat {
    precondition(type.canQuantize, "\(type.name) is not a weight format BitPlan can quantize to")
    return QuantFormat(scheme: .ggml(type), groupSize: type.blockSize, symmetric: !type.hasMinimum)
  }

  private static func checkGroup(_ group: Int?, name: String) throws {
    guard let g = group else { return }
    guard groupSizeRange.contains(g), g % 32 == 0 else {
      throw QuantizationError(
        .badFormatName, "\(name)-g\(g): group size must be a multiple of 32 in \(groupSizeRange), or omitted for per-channel")
    }
  }

  /// Parses a name of the grammar above.
  /// - Throws: `QuantizationError.badFormatName`, naming the part that did not parse.
  public init(parsing name: String) throws {
    let text = name.lowercased()
    if let type = GGMLType(name: text), type.canQuantize {
      self = .ggml(type)
      return
    }
    switch text {
    case "f32": self = .f32; return
    case "f16": self = .f16; return
    case "bf16": self = .bf16; return
    default: break
    }
    if text == "w8a8" || text.hasPrefix("w8a8-") {
      self = try Self.parseW8A8(text, name: name)
      return
    }
    var parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
    let head = parts.removeFirst()
    var group: Int? = nil
    var symmetric = true
    var sawSymmetry = false
    for part in parts {
      if part.hasPrefix("g"), group == nil, !sawSymmetry, let g = Int(part.dropFirst()), String(g) == part.dropFirst() {
        group = g
      } else if (part == "asym" || part == "sym"), !sawSymmetry {
        symmetric = part == "sym"
        sawSymmetry = true
      } else {
        throw QuantizationError(.badFormatName, "'\(name)': unexpected '-\(part)'; expected -g<GROUP> then -asym")
      }
    }
    if head.hasPrefix("int"), let bits = Int(head.dropFirst(3)), String(bits) == head.dropFirst(3) {
      self = try .integer(bits: bits, group: group, symmetric: symmetric)
    } else if head.hasPrefix("affine"), let bits = Int(head.dropFirst(6)), String(bits) == head.dropFirst(6) {
      guard let group, !sawSymmetry else {
        throw QuantizationError(.badFormatName, "'\(name)': affine formats are written affine<BITS>-g<GROUP> (e.g. affine4-g64)")
      }
      self = try .affine(bits: bits, group: group)
    } else if head == "nf4", symmetric {
      self = try .nf4(group: group)
    } else if head == "ternary", symmetric {
      self = try .ternary(group: group)
    } else {
      throw QuantizationError(
        .badFormatName,
        "'\(name)': unknown format; expected f16, bf16, int<2-8>[-g<G>][-asym], affine<2-8>-g<G>, nf4[-g<G>], ternary[-g<G>], q4_0, q4_1, q5_0, q5_1, q8_0, q2_k...q6_k, w8a8[-a<α>]")
    }
  }

  /// `w8a8` or `w8a8-a<ALPHA>` (see the grammar): ALPHA is "0" or "1" or one of them, a point and 1 to 3 digits.
  private static func parseW8A8(_ text: String, name: String) throws -> QuantFormat {
    if text == "w8a8" { return try .w8a8() }
    let alpha = text.dropFirst("w8a8-a".count)
    let digits = alpha.split(separator: ".", omittingEmptySubsequences: false)
    let wellFormed =
      text.hasPrefix("w8a8-a") && (digits.count == 1 || digits.count == 2)
      && (digits[0] == "0" || digits[0] == "1")
      && (digits.count == 1 || (1...3).contains(digits[1].count) && digits[1].allSatisfy { $0.isASCII && $0.isNumber })
    guard wellFormed, let value = Double(alpha), (0...1).contains(value) else {
      throw QuantizationError(
        .badFormatName,
        "'\(name)': SmoothQuant formats are written w8a8 or w8a8-a<α> with the migration strength α a number in 0...1 "
          + "with at most 3 decimals (e.g. w8a8-a0.8)")
    }
    return try .w8a8(alpha: value)
  }

  /// Parses a name, or returns `nil` (LosslessStringConvertible).
  public init?(_ description: String) {
    guard let format = try? QuantFormat(parsing: description) else { return nil }
    self = format
  }

  /// The canonical name: `int4-g128`, `int3-g64-asym`, `int8`, `nf4-g64`, `q4_k`, `w8a8`, `w8a8-a0.8`.
  public var name: String {
    if let milli = migrationStrengthThousandths {
      if milli == 500 { return "w8a8" }
      if milli % 1000 == 0 { return "w8a8-a\(milli / 1000)" }
      var fraction = String(milli % 1000)
      fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
      while fraction.hasSuffix("0") { fraction.removeLast() }
      return "w8a8-a\(milli / 1000).\(fraction)"
    }
    let suffix = groupSize.map { "-g\($0)" } ?? ""
    switch scheme {
    case .f32: return "f32"
    case .f16: return "f16"
    case .bf16: return "bf16"
    case .integer(let bits): return "int\(bits)\(suffix)\(symmetric ? "" : "-asym")"
    case .nf4: return "nf4\(suffix)"
    case .ternary: return "ternary\(suffix)"
    case .ggml(let type): return type.ggmlName.lowercased()
    case .affine(let bits): return "affine\(bits)\(suffix)"
    }
  }

  /// Same as `name`.
  public var description: String { name }

  /// Nominal bits per code, before scales: 32, 16, N for intN and affineN, 4 for nf4, log2(3) ≈ 1.585 for ternary, the code
  /// width for GGML types. `bitsPerWeight(rows:columns:)` gives the exact figure with metadata.
  public var nominalBits: Double {
    switch scheme {
    case .f32: return 32
    case .f16, .bf16: return 16
    case .integer(let bits): return Double(bits)
    case .nf4: return 4
    case .ternary: return 1.584962500721156
    case .ggml(let type): return type.codeBits.map(Double.init) ?? type.bitsPerWeight
    case .affine(let bits): return Double(bits)
    }
  }

  /// Encodes as the canonical name string.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(name)
  }

  /// Decodes from a name string.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    self = try QuantFormat(parsing: try container.decode(String.self))
  }
}
