import Foundation
import FoundationXML
import Reporting
import Sensitivity
import Testing

/// report.html: well-formed (parsed as XML here, which is stricter than HTML), one sensitivity mark per layer and
/// one heatmap cell per planned layer under the stable ids, nothing fetched, every name escaped.
@Suite struct ReportHTMLTests {
  /// The page parsed; fails the test when it is not well-formed.
  static func parse(_ html: String) throws -> XMLDocument {
    try XMLDocument(data: Data(html.utf8), options: [])
  }

  static func count(_ doc: XMLDocument, _ xpath: String) throws -> Int { try doc.nodes(forXPath: xpath).count }

  @Test func chartsHaveOneMarkPerLayerAndOneCellPerPlannedLayer() throws {
    let run = ReportFixtures.run(blocks: 4)
    var (plan, frontier) = try ReportFixtures.plan(run)
    plan.layers.removeValue(forKey: "model.layers.3.mlp.down_proj")  // a layer left as it is
    let data = try ReportFixtures.data(run, plan: plan, frontier: frontier, validation: ReportFixtures.validation(plan))
    let doc = try Self.parse(HTMLReport.render(data, directory: "out"))
    #expect(try Self.count(doc, "//*[@id='sensitivity']//*[@data-layer]") == run.layers.count)
    #expect(try Self.count(doc, "//*[@id='bits-heatmap']//*[@data-layer]") == plan.layers.count)
    #expect(try Self.count(doc, "//*[@data-layer]") == run.layers.count + plan.layers.count, "no data-layer elsewhere")
    // Each heatmap cell's tooltip names its format; every layer appears once in the sensitivity chart.
    let names = try doc.nodes(forXPath: "//*[@id='sensitivity']//*[@data-layer]/@data-layer").compactMap(\.stringValue)
    #expect(Set(names) == Set(run.layers.map(\.name)))
    let q = "model.layers.2.self_attn.q_proj"
    let title = try doc.nodes(forXPath: "//*[@id='bits-heatmap']//*[@data-layer='\(q)']/title").first?.stringValue ?? ""
    #expect(title.contains(plan.layers[q]!.format))
    // Charts (c), (d), (e) and their legends.
    #expect(try Self.count(doc, "//*[@id='frontier']//svg") == 2, "the whole frontier and the stretch near the plan")
    #expect(try Self.count(doc, "//*[@id='frontier']//polyline") == 2)
    #expect(try Self.count(doc, "//*[@id='audit-scatter']//g[@class='mark']") == 12)
    #expect(try Self.count(doc, "//svg//g[@class='legend']") == 5)
    let candidates = run.layers.count * ReportFixtures.candidates.count
    #expect(try Self.count(doc, "//table[@id='candidate-errors']/tbody/tr") == candidates)
    #expect(try Self.count(doc, "//table[@id='candidate-errors']/tbody/tr[@class='chosen']") == plan.layers.count)
  }

  @Test func nothingIsFetched() throws {
    let run = ReportFixtures.run()
    let (plan, frontier) = try ReportFixtures.plan(run)
    let html = HTMLReport.render(try ReportFixtures.data(run, plan: plan, frontier: frontier, validation: nil), directory: "out")
    #expect(html.range(of: "https?://", options: .regularExpression) == nil)
    #expect(html.range(of: "\\bsrc\\s*=", options: .regularExpression) == nil)
    #expect(html.range(of: "href\\s*=\\s*\"[^#]", options: .regularExpression) == nil, "only in-page links")
    #expect(!html.contains("@import") && !html.contains("url(") && !html.contains("@font-face"))
    #expect(html.contains("<svg") && html.contains("<script>"))
  }

  @Test func layerNamesArePlainTextEverywhere() throws {
    let evil = "model.layers.0.<b>&\"x'</b>"
    let run = ReportFixtures.run(rename: [0: evil])
    let (plan, frontier) = try ReportFixtures.plan(run)
    let data = try ReportFixtures.data(run, plan: plan, frontier: frontier, validation: nil)
    let html = HTMLReport.render(data, directory: "dir with <space>")
    #expect(!html.contains("<b>&"))
    let doc = try Self.parse(html)
    #expect(try Self.count(doc, "//b[contains(., 'x')]") == 0, "the name made no element")
    #expect(html.contains("-o &#39;dir with &lt;space&gt;&#39;"), "the folder is shell-quoted, then escaped")
    let marks = try doc.nodes(forXPath: "//*[@id='sensitivity']//*[@data-layer]/@data-layer").compactMap(\.stringValue)
    #expect(marks.contains(evil), "the attribute round-trips to the name")
    let cells = try doc.nodes(forXPath: "//*[@id='bits-heatmap']//*[@data-layer]/@data-layer").compactMap(\.stringValue)
    #expect(cells.contains(evil))
    let md = MarkdownReport.render(data, directory: "out")
    let outsideCode = md.replacingOccurrences(of: "`[^`\n]*`", with: "", options: .regularExpression)
    #expect(!outsideCode.contains("<b>"), "Markdown shows the name only as code or escaped text")
    #expect(md.contains("`model.layers.0.<b>&\"x'</b>`"), "as a code span")
  }

  @Test func aModelWithHundredsOfLayersScrollsInsteadOfShrinking() throws {
    let run = ReportFixtures.run(blocks: 58, auditPairs: 0)  // 406 layers
    let data = try ReportFixtures.data(run, plan: nil, frontier: nil, validation: nil)
    let html = HTMLReport.render(data, directory: "out")
    let doc = try Self.parse(html)
    #expect(try Self.count(doc, "//*[@id='sensitivity']//*[@data-layer]") == 406)
    #expect(try Self.count(doc, "//*[@id='bits-heatmap']") == 0, "no plan, no heatmap")
    let width = try #require(doc.nodes(forXPath: "//*[@id='sensitivity']//svg/@width").first?.stringValue).flatMap(Double.init)
    #expect((width ?? 0) >= 406 * 7, "at least 7 px per layer")
    #expect(try Self.count(doc, "//*[@id='sensitivity']/div[@class='scroll']") == 1)
    #expect(html.contains("bitplan allocate runs/RUN.h5 --bpw 4.5 -o PLAN.json --record"))
  }
}
