import Foundation
import HDF5
import Testing
import _TestSupport

@Suite("HDF5File datasets and groups")
struct HDF5FileTests {
  @Test(arguments: [[7], [3, 5], [0], [1, 1]])
  func numbersRoundTrip(shape: [Int]) throws {
    let tmp = TemporaryFile("numbers-\(shape.map(String.init).joined(separator: "x")).h5")
    defer { tmp.remove() }
    let n = shape.reduce(1, *)
    let doubles = randomDoubles(n, seed: 11)
    var rng = SplitMix64(seed: 12)
    let ints = (0..<n).map { _ in Int64(bitPattern: rng.next()) }
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.write(doubles, shape: shape, to: "/a/b/doubles")
      try file.write(ints, shape: shape, to: "ints")
    }
    let file = try HDF5File(path: tmp.path, mode: .readOnly)
    #expect(try file.read("/a/b/doubles", as: Double.self) == HDF5Array(shape: shape, values: doubles))
    #expect(try file.read("/ints", as: Int64.self) == HDF5Array(shape: shape, values: ints))
    #expect(try file.shape(of: "a/b/doubles") == shape)
    #expect(try file.elementKind(of: "ints") == .int64)
  }

  @Test(arguments: HDF5StringLayout.allCases)
  func stringsRoundTrip(layout: HDF5StringLayout) throws {
    let tmp = TemporaryFile("strings-\(layout).h5")
    defer { tmp.remove() }
    let names = ["model.layers.0.self_attn.q_proj", "", "ünïcödé ✓", "x", "model.layers.29.mlp.down_proj", "é"]
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.write(names, to: "/layers/name", layout: layout)
      try file.write(names, shape: [2, 3], to: "/layers/grid", layout: layout)
    }
    let file = try HDF5File(path: tmp.path, mode: .readOnly)
    #expect(try file.readStrings("/layers/name") == HDF5Array(shape: [6], values: names))
    #expect(try file.readStrings("/layers/grid") == HDF5Array(shape: [2, 3], values: names))
    #expect(try file.elementKind(of: "/layers/name") == .string)
  }

  @Test func overwriteKeepsOrReplaces() throws {
    let tmp = TemporaryFile("overwrite.h5")
    defer { tmp.remove() }
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.write([1.0, 2.0, 3.0], to: "/x")
      try file.write([4.0, 5.0, 6.0], to: "/x")  // same shape and type: in place
      try file.write([Int64(7), 8], shape: [1, 2], to: "/y")
      try file.write([9.5], shape: [1, 1], to: "/y")  // other type and shape: replaced
      try file.write(["a", "b"], to: "/s")
      try file.write(["longer"], to: "/s", layout: .fixedLength)
    }
    try HDF5File.withFile(tmp.path, mode: .readWrite) { file in
      #expect(try file.read("/x", as: Double.self).values == [4, 5, 6])
      #expect(try file.read("/y", as: Double.self) == HDF5Array(shape: [1, 1], values: [9.5]))
      #expect(try file.readStrings("/s").values == ["longer"])
      try file.write([0.5], to: "/x")
      #expect(try file.read("/x", as: Double.self).values == [0.5])
    }
  }

  @Test func groupsMembersAndDelete() throws {
    let tmp = TemporaryFile("groups.h5")
    defer { tmp.remove() }
    let file = try HDF5File(path: tmp.path, mode: .create)
    try file.createGroup("/hessian/deep/er")
    try file.createGroup("hessian")  // existing: kept
    try file.write([1.0], to: "/hessian/trace")
    try file.write([Int64(2)], to: "/hessian/probes_used")
    #expect(try file.exists("/"))
    #expect(try file.exists("/hessian/deep/er"))
    #expect(try !file.exists("/hessian/missing/below"))
    #expect(try !file.exists("/hessian/trace/below"))  // through a dataset
    #expect(try file.kind(of: "/hessian") == .group)
    #expect(try file.kind(of: "/hessian/trace") == .dataset)
    #expect(try file.members(of: "/hessian") == ["deep", "probes_used", "trace"])
    #expect(try file.members() == ["hessian"])
    try file.delete("/hessian/deep")
    #expect(try file.members(of: "/hessian") == ["probes_used", "trace"])
    #expect(throws: HDF5Error.self) { try file.createGroup("/hessian/trace/sub") }
    try file.close()
    try file.close()  // closing twice is allowed
    let error = #expect(throws: HDF5Error.self) { try file.exists("/hessian") }
    #expect(error?.code == .invalidArgument)
  }

  @Test func blocksFillProgressively() throws {
    let tmp = TemporaryFile("blocks.h5")
    defer { tmp.remove() }
    let (rows, cols) = (4, 3)
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.createDataset("/error/weight", shape: [rows, cols], filledWith: Double.nan)
      try file.createDataset("/layers/params", shape: [rows], filledWith: Int64(-1))
      try file.writeRow([1, 2, 3], row: 2, to: "/error/weight")
      try file.write([Int64(10), 11], to: "/layers/params", start: [1], count: [2])
    }
    // A resumed run reopens the file: createDataset keeps data of the same shape, and fills more rows.
    try HDF5File.withFile(tmp.path, mode: .readWrite) { file in
      try file.createDataset("/error/weight", shape: [rows, cols], filledWith: Double.nan)
      try file.writeRow([4, 5, 6], row: 0, to: "/error/weight")
      let all = try file.read("/error/weight", as: Double.self)
      #expect(all.shape == [rows, cols])
      #expect(Array(all.values[0..<3]) == [4, 5, 6] && Array(all.values[6..<9]) == [1, 2, 3])
      #expect(all.values[3..<6].allSatisfy(\.isNaN) && all.values[9..<12].allSatisfy(\.isNaN))
      #expect(try file.read("/layers/params", as: Int64.self).values == [-1, 10, 11, -1])
      #expect(try file.read("/error/weight", start: [2, 1], count: [2, 2], as: Double.self).prefix(2) == [2, 3])
      let outside = #expect(throws: HDF5Error.self) { try file.writeRow([1, 2, 3], row: 4, to: "/error/weight") }
      #expect(outside?.code == .shapeMismatch)
      let wrongWidth = #expect(throws: HDF5Error.self) { try file.writeRow([1, 2], row: 0, to: "/error/weight") }
      #expect(wrongWidth?.code == .shapeMismatch)
      let negative = #expect(throws: HDF5Error.self) {
        _ = try file.read("/error/weight", start: [0, 0], count: [-1, 3], as: Double.self)
      }
      #expect(negative?.code == .shapeMismatch)
    }
  }
}
