import GGML

/// Integer-format dequantizers and the integer decode used by the int8-activation GEMV.
extension IntegerCodec {
  /// Reference: value j of each group decoded on its own through `loadCode`.
  static func dequantizeRowReference(
    _ src: UnsafeRawBufferPointer, _ y: UnsafeMutableBufferPointer<Float>, bits: Int, group: Int?, symmetric: Bool
  ) {
    let length = group ?? y.count
    guard length > 0, let s = src.baseAddress else { return }
    let size = groupBytes(length: length, bits: bits, symmetric: symmetric)
    precondition(y.count % length == 0 && src.count == y.count / length * size, "int\(bits): \(src.count) bytes for \(y.count) values")
    for i in 0..<y.count {
      let p = s + (i / length) * size
      let scale = BlockBytes.f16(p, 0)
      let zero = symmetric ? 1 << (bits - 1) : Int(p.load(fromByteOffset: 2, as: UInt8.self))
      let u = loadCode(p + (symmetric ? 2 : 3), i % length, bits: bits)
      y[i] = Float(u - zero) * scale
    }
  }

  /// Chunk loops: 8 and 4 bits unpack with fixed masks; other widths read eight codes at a time from one N-byte
  /// word; a partial last chunk goes code by code.
  static func dequantizeRowFast(
    _ src: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>, bits: Int, group: Int?, symmetric: Bool
  ) {
    let length = group ?? out.count
    guard length > 0, let s = src.baseAddress, let o = out.baseAddress else { return }
    let size = groupBytes(length: length, bits: bits, symmetric: symmetric)
    precondition(out.count % length == 0 && src.count == out.count / length * size, "int\(bits): \(src.count) bytes for \(out.count) values")
    for g in 0..<(out.count / length) {
      let p = s + g * size
      let scale = BlockBytes.f16(p, 0)
      let zero = Int32(symmetric ? 1 << (bits - 1) : Int(p.load(fromByteOffset: 2, as: UInt8.self)))
      let codes = (p + (symmetric ? 2 : 3)).assumingMemoryBound(to: UInt8.self)
      let y = o + g * length
      var j = 0
      while j < length {
        let chunk = codes + (j / 32) * 4 * bits
        let n = min(32, length - j)
        switch bits {
        case 8 where n == 32:
          for k in 0..<32 { y[j + k] = Float(Int32(chunk[k]) - zero) * scale }
        case 4 where n == 32:
          for k in 0..<16 {
            y[j + k] = Float(Int32(chunk[k] & 15) - zero) * scale
            y[j + k + 16] = Float(Int32(chunk[k] >> 4) - zero) * scale
          }
        case _ where n == 32:
          // A `where` on a multi-pattern case (`case 2, 3 where …`) guards only its last pattern, hence `_`.
          // Eight codes fill exactly `bits` bytes: read them as one little-endian word and shift codes out.
          let mask = UInt64((1 << bits) - 1)
          for octet in 0..<4 {
            var word: UInt64 = 0
            for byte in 0..<bits { word |= UInt64(chunk[octet * bits + byte]) << UInt64(8 * byte) }
            for k in 0..<8 {
              y[j + 8 * octet + k] = Float(Int32(truncatingIfNeeded: (word >> UInt64(bits * k)) & mask) - zero) * scale
            }
          }
        default:
          let raw = UnsafeRawPointer(chunk)
          for k in 0..<n { y[j + k] = Float(Int32(loadCode(raw, k, bits: bits)) - zero) * scale }
        }
        j += 32
      }
    }
  }

  /// Integer decode: `code[i] = u − zero` (Int16), one scale per 16 values (offsets stay 0), so that
  /// `x̂ = scale·code` equals the dequantized value bit for bit.
  static func decodeInt(
    _ src: UnsafeRawBufferPointer, columns: Int, bits: Int, group: Int?, symmetric: Bool, into row: DecodedIntRow
  ) {
    let length = group ?? columns
    guard length > 0, let s = src.baseAddress else { return }
    let size = groupBytes(length: length, bits: bits, symmetric: symmetric)
    for i in 0..<columns {
      let p = s + (i / length) * size
      let zero = symmetric ? 1 << (bits - 1) : Int(p.load(fromByteOffset: 2, as: UInt8.self))
      row.codes[i] = Int16(loadCode(p + (symmetric ? 2 : 3), i % length, bits: bits) - zero)
      if i % 16 == 0 {
        row.scales[i / 16] = BlockBytes.f16(p, 0)
        row.offsets[i / 16] = 0
      }
    }
  }
}

/// A row decoded to integers for the int8-activation dot: `x̂[i] = scales[i/16]·codes[i] + offsets[i/16]`.
///
/// Every format with integer codes (`QuantFormat.hasIntegerCodes`) decodes to this form with the same products as
/// its dequantizer, so `scales·codes + offsets` reproduces `dequantize` exactly. Buffers hold `columns` codes and
/// ⌈columns/16⌉ scales and offsets.
struct DecodedIntRow {
  var codes: UnsafeMutablePointer<Int16>
  var scales: UnsafeMutablePointer<Float>
  var offsets: UnsafeMutablePointer<Float>
}
