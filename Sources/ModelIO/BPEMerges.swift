/// The merge table of a byte-level BPE model, on token ids: for each mergeable pair of adjacent tokens, its rank
/// (position in the merges list, lower merges first) and the id of the token it merges into.
///
/// A word is encoded by starting from one token per byte and repeatedly merging the adjacent pair of lowest rank,
/// the leftmost one on a tie, until no adjacent pair is in the table. This is the rule of Hugging Face
/// `tokenizers` (`Word::merge_all`) and of llama.cpp (`llm_tokenizer_bpe_session`). `mergeReference` applies it
/// literally (O(n²) per word); `mergeHeap` is the same rule with a binary heap and a linked list (O(n log n));
/// `merge` picks the faster of the two by word length.
/// A symbol of -1 (a byte with no token) is never part of a pair and is left in place for the caller.
struct BPEMerges: Sendable {
  /// One table entry: the rank of a pair and the token it becomes.
  struct Entry: Sendable, Equatable {
    var rank: Int32
    var merged: Int32
  }

  /// Keyed by `left << 32 | right`.
  private(set) var table: [UInt64: Entry] = [:]

  var count: Int { table.count }

  @inline(__always)
  static func key(_ left: Int32, _ right: Int32) -> UInt64 {
    UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
  }

  @inline(__always)
  func entry(_ left: Int32, _ right: Int32) -> Entry? { table[BPEMerges.key(left, right)] }

  /// Adds the pair with the next rank. A pair listed twice keeps its first (lowest) rank, as in `tokenizers`.
  mutating func append(left: Int32, right: Int32, merged: Int32, rank: Int32) {
    let key = BPEMerges.key(left, right)
    if table[key] == nil { table[key] = Entry(rank: rank, merged: merged) }
  }

  /// Reference: find the lowest-rank adjacent pair (leftmost on a tie), merge it, repeat.
  func mergeReference(_ word: [Int32]) -> [Int32] {
    var symbols = word
    while symbols.count > 1 {
      var best: (index: Int, entry: Entry)? = nil
      for i in 0..<(symbols.count - 1) {
        guard let e = entry(symbols[i], symbols[i + 1]) else { continue }
        if best == nil || e.rank < best!.entry.rank { best = (i, e) }
      }
      guard let (index, e) = best else { break }
      symbols[index] = e.merged
      symbols.remove(at: index + 1)
    }
    return symbols
  }

  /// Words up to this many bytes go to `mergeReference`, longer ones to `mergeHeap`. Measured in a debug build on
  /// P&P text (ns per byte, reference / heap): 8 bytes 219 / 1048, 32 bytes 813 / 1494, 64 bytes 1561 / 1753,
  /// 256 bytes 5997 / 2214, 4096 bytes 106771 / 3302. Most words are under 16 bytes; the heap guards against
  /// quadratic time on long runs without spaces.
  static let heapThreshold = 64

  /// The merges for one word, by whichever of the two equal algorithms is faster at its length.
  func merge(_ word: [Int32]) -> [Int32] {
    word.count <= BPEMerges.heapThreshold ? mergeReference(word) : mergeHeap(word)
  }

  /// Fast path for long words: the same merges in the same order, with a min-heap of candidate pairs keyed by
  /// (rank, position). Entries that went stale (a side merged away or changed) are skipped when popped.
  func mergeHeap(_ word: [Int32]) -> [Int32] {
    let n = word.count
    if n < 2 { return word }
    var ids = word
    var next = [Int32](repeating: -1, count: n)
    var prev = [Int32](repeating: -1, count: n)
    for i in 0..<n {
      next[i] = i + 1 < n ? Int32(i + 1) : -1
      prev[i] = Int32(i - 1)
    }
    var heap = PairHeap()
    func push(_ left: Int32) {
      guard left >= 0 else { return }
      let right = next[Int(left)]
      guard right >= 0, let e = entry(ids[Int(left)], ids[Int(right)]) else { return }
      heap.push(.init(rank: e.rank, left: left, leftId: ids[Int(left)], rightId: ids[Int(right)], merged: e.merged))
    }
    for i in 0..<(n - 1) { push(Int32(i)) }
    while let top = heap.pop() {
      let left = Int(top.left)
      let right = Int(next[left])
      // stale: the left symbol was merged into its neighbour, or either side has changed since the push
      guard right >= 0, ids[left] == top.leftId, ids[right] == top.rightId else { continue }
      ids[left] = top.merged
      ids[right] = -1
      next[left] = next[right]
      if next[left] >= 0 { prev[Int(next[left])] = Int32(left) }
      push(prev[left])
      push(Int32(left))
    }
    var out: [Int32] = []
    var i: Int32 = 0
    while i >= 0 {
      out.append(ids[Int(i)])
      i = next[Int(i)]
    }
    return out
  }
}

/// A binary min-heap of candidate merges ordered by (rank, left position).
struct PairHeap {
  struct Item {
    var rank: Int32
    var left: Int32
    var leftId: Int32
    var rightId: Int32
    var merged: Int32

    @inline(__always)
    static func < (a: Item, b: Item) -> Bool { a.rank < b.rank || (a.rank == b.rank && a.left < b.left) }
  }

  private var items: [Item] = []

  mutating func push(_ item: Item) {
    items.append(item)
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child] < items[parent] else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  mutating func pop() -> Item? {
    guard let first = items.first else { return nil }
    let last = items.removeLast()
    if items.isEmpty { return first }
    items[0] = last
    var parent = 0
    while true {
      let l = 2 * parent + 1
      let r = l + 1
      var smallest = parent
      if l < items.count && items[l] < items[smallest] { smallest = l }
      if r < items.count && items[r] < items[smallest] { smallest = r }
      if smallest == parent { break }
      items.swapAt(parent, smallest)
      parent = smallest
    }
    return first
  }
}
