import Foundation

/// Seeded, realistic allocation problems for benchmarks and tests: the linear layers of a SmolLM2-135M-shaped
/// transformer with ten candidate formats.
public enum SyntheticProblem {
  /// One candidate format of the synthetic menu: `bits` per weight, one f16 scale per `groupSize` weights (and an f16
  /// zero point when asymmetric); `groupSize == nil` means one f16 scale per output row.
  struct Format {
    var name: String
    var bits: Int
    var groupSize: Int?
    var symmetric: Bool
  }

  static let formats: [Format] = [
    Format(name: "int2-g64-asym", bits: 2, groupSize: 64, symmetric: false),
    Format(name: "int3-g64-asym", bits: 3, groupSize: 64, symmetric: false),
    Format(name: "int3-g128", bits: 3, groupSize: 128, symmetric: true),
    Format(name: "int4-g64", bits: 4, groupSize: 64, symmetric: true),
    Format(name: "int4-g128", bits: 4, groupSize: 128, symmetric: true),
    Format(name: "int5-g128", bits: 5, groupSize: 128, symmetric: true),
    Format(name: "int6-g128", bits: 6, groupSize: 128, symmetric: true),
    Format(name: "int8", bits: 8, groupSize: nil, symmetric: true),
    Format(name: "int8-g32", bits: 8, groupSize: 32, symmetric: true),
    Format(name: "f16", bits: 16, groupSize: nil, symmetric: true),
  ]

  /// The seven linear layers of one llama block: (name, rows, columns) for hidden 576, kv 192, ffn 1536.
  static let blockShapes: [(String, Int, Int)] = [
    ("self_attn.q_proj", 576, 576), ("self_attn.k_proj", 192, 576), ("self_attn.v_proj", 192, 576),
    ("self_attn.o_proj", 576, 576), ("mlp.gate_proj", 1536, 576), ("mlp.up_proj", 1536, 576),
    ("mlp.down_proj", 576, 1536),
  ]

  /// `blocks` × 7 layers × 10 formats. Bytes are exact for the format (ceil(n·bits/8) plus 2 bytes per scale and
  /// zero point). Each layer draws a sensitivity s = 10^U(−2,1) and a variance σ² = 10^U(−5,−3); the score of a
  /// format with effective bits b is n · s · σ² · 2^(−2b) · e^(0.3·Z) (Z standard normal), 0 for f16, so the
  /// scores follow the seed article's model with noise.
  /// - Parameters:
  ///   - blocks: transformer blocks; 30 gives SmolLM2's 210 layers.
  ///   - seed: every number is drawn from SplitMix64 with this seed.
  public static func transformer(blocks: Int = 30, seed: UInt64) -> AllocationProblem {
    var rng = SeededGenerator(seed: seed)
    var layers = [AllocationProblem.Layer]()
    for block in 0..<blocks {
      for (suffix, rows, columns) in blockShapes {
        let n = rows * columns
        let s = pow10(Double.random(in: -2..<1, using: &rng))
        let variance = pow10(Double.random(in: -5 ..< -3, using: &rng))
        var options = [AllocationProblem.Option]()
        for format in formats {
          let bytes = self.bytes(format, rows: rows, columns: columns)
          let effectiveBits = Double(bytes * 8) / Double(n)
          let noise = exp(0.3 * standardNormal(&rng))
          let loss = format.bits >= 16 ? 0 : Double(n) * s * variance * exp2(-2 * effectiveBits) * noise
          options.append(
            AllocationProblem.Option(
              format: format.name, bytes: bytes, loss: loss, bits: Double(format.bits), groupSize: format.groupSize,
              symmetric: format.symmetric))
        }
        layers.append(
          AllocationProblem.Layer(
            name: "model.layers.\(block).\(suffix)", parameterCount: n, options: options, sensitivity: s,
            variance: variance))
      }
    }
    return AllocationProblem(layers: layers, score: "synthetic", model: "synthetic-smollm2-\(blocks)-blocks")
  }

  /// Exact bytes of a rows × columns matrix in `format`.
  static func bytes(_ format: Format, rows: Int, columns: Int) -> Int {
    let n = rows * columns
    let payload = (n * format.bits + 7) / 8
    if format.bits >= 16 { return payload }
    let scales = format.groupSize.map { (n + $0 - 1) / $0 } ?? rows
    return payload + scales * (format.symmetric ? 2 : 4)
  }

  static func pow10(_ x: Double) -> Double { exp(x * 2.302_585_092_994_046) }

  /// Box–Muller from two uniforms.
  static func standardNormal(_ rng: inout SeededGenerator) -> Double {
    let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
    let v = Double.random(in: 0..<1, using: &rng)
    return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
  }
}

/// SplitMix64 (Steele, Lea, Flood 2014), for seeded instances built inside the library; tests use `_TestSupport`'s.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
