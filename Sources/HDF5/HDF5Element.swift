import CHDF5

/// The element types this wrapper stores. Files always hold them little-endian: `float64` as IEEE `F64LE`,
/// `int64` as `STD_I64LE`, strings as UTF-8 C strings (variable or fixed length).
public enum HDF5ElementKind: String, Sendable, CaseIterable {
  case float64, int64, string

  /// The HDF5 type class a stored object of this kind has.
  var typeClass: H5T_class_t {
    switch self {
    case .float64: H5T_FLOAT
    case .int64: H5T_INTEGER
    case .string: H5T_STRING
    }
  }
}

/// A numeric element type that datasets and attributes can hold: `Double` or `Int64`.
public protocol HDF5Numeric: Sendable, Equatable {
  /// Which stored type this Swift type maps to.
  static var hdf5Kind: HDF5ElementKind { get }
}

extension Double: HDF5Numeric {
  /// Stored as IEEE 754 binary64, little-endian.
  public static var hdf5Kind: HDF5ElementKind { .float64 }
}

extension Int64: HDF5Numeric {
  /// Stored as a signed 64-bit little-endian integer.
  public static var hdf5Kind: HDF5ElementKind { .int64 }
}

extension HDF5Numeric {
  /// The native in-memory HDF5 type.
  static var memoryType: hid_t { hdf5Kind == .float64 ? bitplan_H5T_NATIVE_DOUBLE() : bitplan_H5T_NATIVE_INT64() }
  /// The type written to files, fixed to little-endian so files are the same on every machine.
  static var fileType: hid_t { hdf5Kind == .float64 ? bitplan_H5T_IEEE_F64LE() : bitplan_H5T_STD_I64LE() }
}

/// The values of a dataset or attribute with their shape, row-major (the last dimension varies fastest).
///
/// A scalar has `shape == []` and one value.
public struct HDF5Array<Element: Sendable & Equatable>: Sendable, Equatable {
  /// Dimensions, outermost first.
  public var shape: [Int]
  /// `shape.reduce(1, *)` values, row-major.
  public var values: [Element]

  /// Creates an array from its shape and values; the caller keeps `values.count == shape.reduce(1, *)`.
  public init(shape: [Int], values: [Element]) {
    self.shape = shape
    self.values = values
  }
}

/// How string datasets and attributes are stored.
public enum HDF5StringLayout: String, Sendable, CaseIterable {
  /// One heap string per element (`H5T_VARIABLE`), what h5py writes for `str` data.
  case variableLength
  /// Every element padded with NULs to the longest string's UTF-8 length (at least one byte).
  case fixedLength
}

/// The number of elements of `shape`, checking that it is a usable extent: rank 0...32, no negative dimension,
/// no overflowing product.
func checkedProduct(_ shape: [Int], _ site: H5Site) throws(HDF5Error) -> Int {
  if shape.count > 32 {
    throw HDF5Error(.shapeMismatch, "'\(site.object)': rank \(shape.count) exceeds HDF5's 32", path: site.file)
  }
  var product = 1
  for d in shape {
    let (p, overflow) = product.multipliedReportingOverflow(by: d)
    if d < 0 || overflow {
      throw HDF5Error(.shapeMismatch, "'\(site.object)': impossible shape \(shape)", path: site.file)
    }
    product = p
  }
  return product
}

/// `checkedProduct(shape)`, which must equal `count`, the number of values supplied.
func checkedElementCount(_ shape: [Int], values count: Int, _ site: H5Site) throws(HDF5Error) -> Int {
  let product = try checkedProduct(shape, site)
  if product != count {
    throw HDF5Error(
      .shapeMismatch, "'\(site.object)': \(count) values for shape \(shape), which holds \(product)", path: site.file)
  }
  return product
}
