/// The one error type of `Allocation`: a code to switch on and a message that names the layer, pattern or budget
/// concerned and what would fix it.
///
/// An infeasible budget also carries the achievable byte range, so a caller can print it or retry with a budget
/// inside it.
public struct AllocationError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, one case per rule.
  public enum Code: String, Sendable, CaseIterable {
    /// The problem has no layers.
    case emptyProblem
    /// A layer with no candidate formats.
    case noCandidates
    /// Two layers with the same name, or one format offered twice to one layer.
    case duplicate
    /// A negative byte count or parameter count, or a score that is NaN or infinite.
    case badNumber
    /// The budget lies below the smallest achievable total (see `achievableBytes`).
    case infeasible
    /// A budget string or bits-per-weight value that cannot be read.
    case badBudget
    /// A regular expression that does not compile.
    case badPattern
    /// A pin or tie pattern that matches no layer.
    case unmatchedPattern
    /// A pin names a format that the layer does not allow.
    case unknownFormat
    /// A tie group whose members share no format.
    case incompatibleTie
    /// A score name that some candidate lacks.
    case unknownScore
    /// The water-filling solver needs sensitivity and variance for every layer.
    case missingStatistics
    /// The exact frontier grew past its point limit.
    case frontierTooLarge
    /// A PROBLEM.json that is malformed or of another version.
    case badProblemFile
    /// A PLAN.json that is malformed, of another version, or inconsistent in itself (a negative byte count, a total
    /// that is not the sum of its layers, a layer listed twice, bits or a group size its format contradicts, an
    /// unknown target or quantizer).
    case badPlanFile
    /// A score built on statistics too noisy to rank layers (Hessian traces within two standard errors of zero).
    case noisyScore
  }

  /// What went wrong; switch on this.
  public var code: Code
  /// One line naming the layer, pattern or budget and what would fix it.
  public var message: String
  /// For `.infeasible`: the smallest and largest total bytes any plan can have.
  public var achievableBytes: ClosedRange<Int>?

  public init(_ code: Code, _ message: String, achievableBytes: ClosedRange<Int>? = nil) {
    self.code = code
    self.message = message
    self.achievableBytes = achievableBytes
  }

  public var description: String { "\(code.rawValue): \(message)" }

  /// The error for a budget below `range`, with both ends in bytes and MiB.
  public static func infeasible(budget: Int, range: ClosedRange<Int>) -> AllocationError {
    AllocationError(
      .infeasible,
      "budget \(budget) bytes (\(mib(budget)) MiB) is below the smallest achievable plan; achievable range is "
        + "\(range.lowerBound)...\(range.upperBound) bytes (\(mib(range.lowerBound))...\(mib(range.upperBound)) MiB)",
      achievableBytes: range)
  }
}

/// `bytes` in MiB with three decimals, for messages.
func mib(_ bytes: Int) -> String {
  let value = (Double(bytes) / 1_048_576 * 1000).rounded() / 1000
  return String(value)
}
