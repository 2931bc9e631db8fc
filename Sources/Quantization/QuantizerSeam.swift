// TEMPORARY (plumb branch only): the GPTQ and AWQ APIs the helpers are writing, so the plumbing compiles.
// Deleted at merge.
public enum GPTQ {
  public struct Options: Sendable, Equatable, Codable {
    public var damping: Double
    public var blockSize: Int
    public var actOrder: Bool
    public init(damping: Double = 0.01, blockSize: Int = 128, actOrder: Bool = false) {
      self.damping = damping
      self.blockSize = blockSize
      self.actOrder = actOrder
    }
  }
  public static func supports(_ format: QuantFormat) -> Bool { false }
  public static func quantize(
    _ weights: [Float], rows: Int, columns: Int, format: QuantFormat, hessian: [Float],
    calibration: RangeCalibration, options: Options = Options()
  ) throws(QuantizationError) -> PackedTensor { fatalError("seam") }
}

public enum AWQ {
  public struct Options: Sendable, Equatable { public var grid = 20; public init() {} }
  public struct Member {
    public var weights: [Float]
    public var rows: Int
    public var format: QuantFormat
    public var calibration: RangeCalibration
    public init(weights: [Float], rows: Int, format: QuantFormat, calibration: RangeCalibration) {
      self.weights = weights; self.rows = rows; self.format = format; self.calibration = calibration
    }
  }
  public struct Result: Sendable {
    public var alpha: Double
    public var scales: [Float]
    public var packed: [PackedTensor]
    public var outputError: Double
    public var rtnOutputError: Double
  }
  public static func supports(_ format: QuantFormat) -> Bool { false }
  public static func search(
    members: [Member], columns: Int, inputs: [Float], inputRows: Int, options: Options = Options()
  ) throws(QuantizationError) -> Result { fatalError("seam") }
  public static func effectiveWeights(_ packed: PackedTensor, scales: [Float]) -> [Float] { fatalError("seam") }
}
