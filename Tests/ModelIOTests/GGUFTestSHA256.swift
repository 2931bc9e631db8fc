import TensorCore

/// SHA-256 of dequantized tensors, as the golden files store them: the float32 little-endian bytes.
enum GGUFTestSHA256 {
  static func hex(of values: [Float]) -> String {
    values.withUnsafeBytes { SHA256.hexDigest($0) }  // little-endian host (x86-64, arm64)
  }
}
