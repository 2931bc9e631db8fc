import HDF5
import Testing

@Suite("HDF5File attributes")
struct HDF5AttributeTests {
  @Test func attributesOnFileGroupAndDataset() throws {
    let tmp = TemporaryFile("attributes.h5")
    defer { tmp.remove() }
    try HDF5File.withFile(tmp.path, mode: .create) { file in
      try file.write([1.0, 2.0], to: "/hessian/trace")
      try file.setAttribute("format_version", Int64(1))
      try file.setAttribute("model_sha256", "ab12ünï")
      try file.setAttribute("eps", 1e-5)
      try file.setAttribute("units", "nats", on: "/hessian")
      try file.setAttribute("probes", [Int64(64), 32], on: "/hessian/trace")
      try file.setAttribute("stderr", [0.25, 0.5], on: "/hessian/trace")
      try file.setAttribute("labels", ["q", "k", "v"], on: "/hessian/trace")
      try file.setAttribute("format_version", Int64(2))  // replaces
    }
    let file = try HDF5File(path: tmp.path, mode: .readOnly)
    #expect(try file.attribute("format_version", as: Int64.self) == 2)
    #expect(try file.stringAttribute("model_sha256") == "ab12ünï")
    #expect(try file.attribute("eps", as: Double.self) == 1e-5)
    #expect(try file.attributeValues("eps", as: Double.self).shape == [])
    #expect(try file.stringAttribute("units", on: "hessian") == "nats")
    #expect(
      try file.attributeValues("probes", on: "/hessian/trace", as: Int64.self)
        == HDF5Array(shape: [2], values: [64, 32]))
    #expect(try file.attributeValues("stderr", on: "/hessian/trace", as: Double.self).values == [0.25, 0.5])
    #expect(try file.stringAttributeValues("labels", on: "/hessian/trace").values == ["q", "k", "v"])
    #expect(try file.attributeNames() == ["eps", "format_version", "model_sha256"])
    #expect(try file.attributeNames(on: "/hessian/trace") == ["labels", "probes", "stderr"])
    #expect(try file.hasAttribute("units", on: "/hessian"))
    #expect(try !file.hasAttribute("missing"))
  }

  @Test func attributeErrorsAreTyped() throws {
    let tmp = TemporaryFile("attribute-errors.h5")
    defer { tmp.remove() }
    let file = try HDF5File(path: tmp.path, mode: .create)
    try file.setAttribute("n", [Int64(1), 2])
    try file.setAttribute("s", "text")
    #expect((#expect(throws: HDF5Error.self) { _ = try file.attribute("missing", as: Int64.self) })?.code == .notFound)
    #expect((#expect(throws: HDF5Error.self) { _ = try file.attribute("n", as: Int64.self) })?.code == .shapeMismatch)
    #expect((#expect(throws: HDF5Error.self) { _ = try file.attribute("s", as: Double.self) })?.code == .typeMismatch)
    #expect((#expect(throws: HDF5Error.self) { try file.setAttribute("x", 1.0, on: "/nope") })?.code == .notFound)
    #expect((#expect(throws: HDF5Error.self) { try file.setAttribute("", 1.0) })?.code == .invalidArgument)
    try file.deleteAttribute("s")
    #expect(try file.attributeNames() == ["n"])
    #expect((#expect(throws: HDF5Error.self) { try file.deleteAttribute("s") })?.code == .notFound)
  }
}
