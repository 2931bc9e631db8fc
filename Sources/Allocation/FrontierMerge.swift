/// Struct-of-arrays storage for frontier points during construction: bytes, loss and a packed back-pointer each.
/// Owned by one `ParetoFrontier.init`, which frees it.
struct PointBuffer {
  var bytes: UnsafeMutablePointer<Int>
  var loss: UnsafeMutablePointer<Double>
  var tag: UnsafeMutablePointer<UInt32>
  var count = 0
  private(set) var capacity: Int

  init(capacity: Int) {
    self.capacity = max(capacity, 1)
    bytes = .allocate(capacity: self.capacity)
    loss = .allocate(capacity: self.capacity)
    tag = .allocate(capacity: self.capacity)
  }

  func free() {
    bytes.deallocate()
    loss.deallocate()
    tag.deallocate()
  }

  /// Makes room for `needed` points, keeping the first `count`.
  mutating func reserve(_ needed: Int) {
    guard needed > capacity else { return }
    let grown = max(needed, capacity * 2)
    let (b, l, t) = (
      UnsafeMutablePointer<Int>.allocate(capacity: grown),
      UnsafeMutablePointer<Double>.allocate(capacity: grown),
      UnsafeMutablePointer<UInt32>.allocate(capacity: grown)
    )
    b.initialize(from: bytes, count: count)
    l.initialize(from: loss, count: count)
    t.initialize(from: tag, count: count)
    free()
    (bytes, loss, tag, capacity) = (b, l, t, grown)
  }

  @inline(__always) mutating func append(bytes b: Int, loss l: Double, tag t: UInt32) {
    bytes[count] = b
    loss[count] = l
    tag[count] = t
    count += 1
  }
}

/// The inner loops of `ParetoFrontier.init`. Both inputs are Pareto lists: bytes strictly increasing, loss
/// non-increasing (a shifted list may repeat a loss after rounding); the output is strictly decreasing in loss.
enum FrontierMerge {
  /// out = prune(F + option); each point's tag is its index in F and the option.
  static func shifted(
    _ front: PointBuffer, by option: ReducedProblem.GroupOption, tag: UInt32, shift: UInt32, into out: inout PointBuffer
  ) {
    out.reserve(front.count)
    var last = Double.infinity
    for i in 0..<front.count {
      let l = front.loss[i] + option.loss
      if l < last {
        out.append(bytes: front.bytes[i] + option.bytes, loss: l, tag: UInt32(i) << shift | tag)
        last = l
      }
    }
  }

  /// out = prune(acc ∪ (F + option)). Reference: the sort-and-prune in `ParetoFrontier.referencePoints`.
  ///
  /// Walks both lists in byte order (equal bytes: lower loss first, then acc) and keeps a point only if it lowers
  /// the running minimum `last`. A point that does not is dominated by the last one kept, and so is every later point
  /// of its list until one drops below `last` (losses only fall along a list): that run is skipped by galloping.
  static func merge(
    _ acc: PointBuffer, _ front: PointBuffer, by option: ReducedProblem.GroupOption, tag: UInt32, shift: UInt32,
    into out: inout PointBuffer
  ) {
    out.reserve(acc.count + front.count)
    let (shiftBytes, add) = (option.bytes, option.loss)
    var (a, b) = (0, 0)
    var last = Double.infinity
    while a < acc.count && b < front.count {
      let (ab, bb) = (acc.bytes[a], front.bytes[b] + shiftBytes)
      let bl = front.loss[b] + add
      if ab < bb || (ab == bb && acc.loss[a] <= bl) {
        if acc.loss[a] < last {
          out.append(bytes: ab, loss: acc.loss[a], tag: acc.tag[a])
          last = acc.loss[a]
          a += 1
        } else {
          let limit = last
          a = gallop(from: a + 1, to: acc.count) { acc.loss[$0] < limit }
        }
      } else {
        if bl < last {
          out.append(bytes: bb, loss: bl, tag: UInt32(b) << shift | tag)
          last = bl
          b += 1
        } else {
          let limit = last
          b = gallop(from: b + 1, to: front.count) { front.loss[$0] + add < limit }
        }
      }
    }
    // Tails: one list is exhausted; keep what still lowers the running minimum.
    let limit = last
    a = gallop(from: a, to: acc.count) { acc.loss[$0] < limit }
    for i in a..<acc.count {  // gallop returns at most acc.count
      out.append(bytes: acc.bytes[i], loss: acc.loss[i], tag: acc.tag[i])
      last = acc.loss[i]
    }
    while b < front.count {
      let bl = front.loss[b] + add
      if bl < last {
        out.append(bytes: front.bytes[b] + shiftBytes, loss: bl, tag: UInt32(b) << shift | tag)
        last = bl
      }
      b += 1
    }
  }

  /// The first index in `start..<end` where the monotone predicate `isBelow` (false…false true…true) holds, or
  /// `end`: exponential then binary search, O(log distance).
  @inline(__always)
  static func gallop(from start: Int, to end: Int, _ isBelow: (Int) -> Bool) -> Int {
    guard start < end, !isBelow(start) else { return start }
    // Invariant: isBelow(low) is false; isBelow(high) is true or high == end.
    var (low, step) = (start, 1)
    var high = start + 1
    while high < end && !isBelow(high) {
      low = high
      step *= 2
      high = min(end, low + step)
    }
    while high - low > 1 {
      let mid = (low + high) / 2
      if isBelow(mid) { high = mid } else { low = mid }
    }
    return high
  }
}
