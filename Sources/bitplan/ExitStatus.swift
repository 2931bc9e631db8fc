import Allocation
import ArgumentParser
import Validation
import Engine
import Foundation
import HDF5
import ModelIO
import Pipeline
import Quantization
import Sensitivity
import TensorCore

/// The exit statuses of `bitplan` (sysexits.h values), one per kind of failure; listed in `bitplan --help` and
/// README.md. Every typed error of every module maps to one of them (`ExitStatus.of(_:)`).
enum ExitStatus: Int32, CaseIterable {
  /// Success.
  case ok = 0
  /// A bad option or combination of options: a malformed or out-of-range value, an output that names an input or
  /// another output, a budget below every plan, a score refused as too noisy, more tokens than the model has
  /// positions.
  case usage = 64
  /// An input file whose content is wrong: a malformed or inconsistent model, run, problem file, plan, config or
  /// text.
  case dataError = 65
  /// An input file that is missing, unreadable, or a folder or device where a file is needed.
  case noInput = 66
  /// An internal error (a bug: please report it with the command line).
  case software = 70
  /// The machine cannot serve the request: the estimated memory exceeds the machine's.
  case resources = 71
  /// An output that cannot be created: a folder, device, FIFO or socket at the path, or a missing or read-only
  /// folder.
  case cannotCreate = 73
  /// Writing an output failed part-way (disk full, permissions changed); the previous file is left as it was.
  case ioError = 74

  /// The one-line table for `--help`.
  static var table: String {
    "Exit status: 0 success; 64 bad option or option combination (incl. an output naming an input); "
      + "65 bad input data; 66 input missing or not a file; 70 internal error; 71 not enough memory; "
      + "73 output cannot be created; 74 write failed."
  }

  /// The status for `error`, nil when ArgumentParser should report it (its own parse and validation errors).
  static func of(_ error: Error) -> ExitStatus? {
    switch error {
    case let e as FileCheckError:
      switch e.code {
      case .missingInput, .notAFile: return .noInput
      case .outputIsInput, .duplicateOutput: return .usage
      case .cannotCreate: return .cannotCreate
      case .writeFailed: return .ioError
      }
    case let e as ModelIOError:
      switch e.code {
      case .io: return .noInput
      case .cannotCreate: return .cannotCreate
      case .writeFailed: return .ioError
      default: return .dataError
      }
    case let e as ResourceError:
      return e.code == .tooManyTokens ? .usage : .resources
    case let e as AllocationError:
      switch e.code {
      case .badProblemFile, .badPlanFile, .emptyProblem, .noCandidates, .duplicate, .badNumber, .missingStatistics: return .dataError
      case .frontierTooLarge: return .resources
      default: return .usage
      }
    case let e as SensitivityError:
      switch e.code {
      case .badRunFile, .provenanceMismatch, .nonFinite: return .dataError
      case .io: return .ioError
      case .invalidArgument: return .usage
      case .shapeMismatch: return .software
      }
    case let e as MeasureError:
      switch e.code {
      case .badSettings, .badCandidate: return .usage
      case .textTooShort: return .dataError
      case .io: return .noInput
      }
    case let e as HDF5Error:
      return e.code == .io ? .ioError : .dataError
    case is WindowError: return .dataError
    case is InputError: return .dataError
    case let e as QuantizationError:
      return e.code == .badFormatName || e.code == .unsupportedShape ? .usage : .dataError
    case is EngineError: return .dataError
    case let e as PlanValidationError:
      switch e.code {
      case .modelMismatch, .unknownLayer, .unknownFormat, .noPackedKernel, .badSettings: return .usage
      case .textTooShort, .badCache: return .dataError
      }
    case let e as CommandError: return e.status
    default: return nil
    }
  }
}

/// A one-line error of the command line itself, with its exit status (usage by default).
struct CommandError: Error, CustomStringConvertible {
  var description: String
  var status: ExitStatus
  init(_ description: String, status: ExitStatus = .usage) {
    self.description = description
    self.status = status
  }
}

extension BitPlanCommand {
  /// Parses, runs, and maps every typed error to its exit status with a one-line message on stderr.
  static func runMappingErrors() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if let status = ExitStatus.of(error) {
        let text = "\(error)".replacingOccurrences(of: "\n", with: " ")
        FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
        exitAfterError(status.rawValue)
      }
      // ArgumentParser's own errors: help and --version print as usual; a usage error is one line too (the
      // usage screen is one `--help` away), with ArgumentParser's status (64 for every parse or validation error).
      var code = exitCode(for: error)
      if code == .success { exit(withError: error) }
      // ArgumentParser gives 1 to every error it does not know; ours are all mapped above, so one that reaches here
      // is unexpected: an internal error.
      if code == .failure && !(error is ExitCode) { code = ExitCode(ExitStatus.software.rawValue) }
      let text = message(for: error).replacingOccurrences(of: "\n", with: " ")
      FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
      exitAfterError(code.rawValue)
    }
  }

  /// Ends the process after an error without running `atexit` handlers: libhdf5's shutdown closes what it still
  /// holds open, and after a write that failed part-way (a full disk during `H5Fclose`) it dereferenced a freed
  /// pointer there (SIGSEGV, after the one-line error). Our outputs are temporaries renamed into place, so nothing of
  /// ours waits for those handlers; C's buffered stdout is flushed first.
  static func exitAfterError(_ code: Int32) -> Never {
    fflush(nil)
    _exit(code)
  }
}
