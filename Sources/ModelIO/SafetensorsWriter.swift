#if canImport(TensorCore)
  import TensorCore
#endif
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writes safetensors files from `Float` values, stored as F32, F16 or BF16.
///
/// The layout is the one the `safetensors` crate writes: `u64` LE header length, a JSON header padded with
/// spaces to a multiple of 8 bytes (so the data section is 8-byte aligned), then the tensors back to back in the
/// order given. Files are written atomically: to a temporary name in the same folder, then renamed.
public enum SafetensorsWriter {
  /// One tensor to write: its name, shape (outermost first) and `shape.reduce(1, *)` row-major values.
  public typealias Item = (name: String, shape: [Int], values: [Float])

  /// The bytes of a safetensors file holding `tensors`.
  /// - Parameters:
  ///   - tensors: names must be unique and not `__metadata__`.
  ///   - dtype: `.f32`, `.f16` or `.bf16` (F16/BF16 round to nearest even).
  ///   - metadata: the `__metadata__` map; omitted when empty.
  /// - Throws: `.unsupported` for another dtype, `.duplicate` for a repeated name, `.badShape` for a negative
  ///   dimension, `.sizeMismatch` when a value count disagrees with its shape.
  public static func encode(
    _ tensors: [Item], dtype: SafetensorsDType = .f32, metadata: [String: String] = [:]
  )
    throws(ModelIOError) -> [UInt8]
  {
    let header = try header(tensors.map { ($0.name, $0.shape, $0.values.count) }, dtype: dtype, metadata: metadata)
    var bytes = header
    bytes.reserveCapacity(header.count + tensors.reduce(0) { $0 + $1.values.count * dtype.byteCount })
    for t in tensors { dtype.encodeFloats(t.values, into: &bytes) }
    return bytes
  }

  /// The length prefix and JSON header of a file holding tensors (name, shape, value count) in this order, for
  /// `encode` and for writers that stream the data after it (`TinyLlama.streamHFFolder`). Throws as `encode`.
  static func header(
    _ tensors: [(name: String, shape: [Int], count: Int)], dtype: SafetensorsDType, metadata: [String: String]
  ) throws(ModelIOError) -> [UInt8] {
    guard dtype.convertsToFloat else {
      throw ModelIOError(.unsupported, "the writer stores F32, F16 or BF16, not \(dtype.rawValue)")
    }
    var seen = Set<String>()
    var fields: [String] = []
    if !metadata.isEmpty {
      let pairs = metadata.keys.sorted().map {
        "\(SafetensorsJSON.quoted($0)):\(SafetensorsJSON.quoted(metadata[$0]!))"
      }
      fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    for t in tensors {
      if t.name == "__metadata__" || !seen.insert(t.name).inserted {
        throw ModelIOError(.duplicate, "tensor name '\(t.name)' is repeated or reserved")
      }
      var count = 1
      for d in t.shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        if d < 0 || overflow { throw ModelIOError(.badShape, "tensor '\(t.name)': impossible shape \(t.shape)") }
        count = product
      }
      if count != t.count {
        throw ModelIOError(.sizeMismatch, "tensor '\(t.name)': \(t.count) values for shape \(t.shape)")
      }
      let end = offset + count * dtype.byteCount
      let shape = t.shape.map(String.init).joined(separator: ",")
      fields.append(
        "\(SafetensorsJSON.quoted(t.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],"
          + "\"data_offsets\":[\(offset),\(end)]}")
      offset = end
    }
    var header = Array("{\(fields.joined(separator: ","))}".utf8)
    header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
    var bytes: [UInt8] = []
    bytes.reserveCapacity(8 + header.count)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: header)
    return bytes
  }

  /// Writes `tensors` to `path` atomically (see `encode` for the arguments).
  /// - Throws: what `encode` throws, or `.io` when the file cannot be written or renamed.
  public static func write(
    _ tensors: [Item], dtype: SafetensorsDType = .f32, metadata: [String: String] = [:], to path: String
  ) throws(ModelIOError) {
    try writeAtomically(try encode(tensors, dtype: dtype, metadata: metadata), to: path)
  }

  /// Writes `bytes` to a temporary file beside `path`, then renames it to `path` (only over a regular file or
  /// nothing: `FileChecks.write`), so that readers see either the old file or the whole new one.
  static func writeAtomically(_ bytes: [UInt8], to path: String) throws(ModelIOError) {
    do { try FileChecks.write(bytes, to: path) } catch {
      throw ModelIOError(error.code == .writeFailed ? .writeFailed : .cannotCreate, error.message, path: path)
    }
  }
}
