import TensorCore

/// Next-token cross-entropy over the vocabulary: NLL_t = logsumexp(z_t) − z_t[y_t].
///
/// Backward of the mean over `rows` predictions: ∂/∂z_t = (softmax(z_t) − onehot(y_t)) / rows.
/// Sums run in Double: a row has V = 49,152 terms, and the NLL is the quantity the PPL test compares.
package enum CrossEntropy {
  /// Replaces logits [rows, V] by their softmax row by row and returns NLL per row. Without `probabilities` the
  /// logits are left as they are and only the NLLs are computed (the same numbers: the sum of exponentials is
  /// `expShifted`'s bit for bit), so a forward that needs no backward skips writing and rescaling V values per row.
  package static func forward<S: EngineScalar>(
    logits z: UnsafeMutablePointer<S>, targets: ArraySlice<Int>, rows: Int, vocab: Int, probabilities: Bool = true
  ) -> [Double] {
    precondition(targets.count == rows, "\(targets.count) targets for \(rows) rows")
    var nll = [Double](repeating: 0, count: rows)
    let targetIDs = Array(targets)
    nll.withUnsafeMutableBufferPointer { nll in
      Parallel.forEachChunk(rows, costPerItem: vocab) { range in
        for t in range {
          let zt = z + t * vocab
          let maximum = S.maximum(zt, count: vocab)
          let targetLogit = Double(zt[targetIDs[t]])
          if !probabilities {
            nll[t] = Double(maximum) + Double.log(S.expSum(zt, count: vocab, shift: maximum)) - targetLogit
            continue
          }
          let sum = S.expShifted(zt, count: vocab, shift: maximum)
          let inverse = S(1 / sum)
          for j in 0..<vocab { zt[j] *= inverse }
          nll[t] = Double(maximum) + Double.log(sum) - targetLogit
        }
      }
    }
    return nll
  }

  /// Turns probabilities [rows, V] (from `forward`) into ∂L/∂z for L = scale · Σ_t NLL_t, in place.
  package static func backward<S: EngineScalar>(
    probabilities p: UnsafeMutablePointer<S>, targets: ArraySlice<Int>, rows: Int, vocab: Int, scale: S
  ) {
    let targetIDs = Array(targets)
    Parallel.forEachChunk(rows, costPerItem: vocab) { range in
      for t in range {
        let pt = p + t * vocab
        pt[targetIDs[t]] -= 1
        for j in 0..<vocab { pt[j] *= scale }
      }
    }
  }
}
