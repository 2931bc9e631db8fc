import Foundation
import Reporting
import Testing
import _TestSupport

/// Whether the browser test runs; prints why not (a skip in the log, not a silent pass).
private let chromiumPresent: Bool = {
  if HeadlessChromium.executable == nil { print("ReportBrowserTests: \(HeadlessChromium.skipReason)") }
  return HeadlessChromium.executable != nil
}()

/// report.html in a real browser (Debian's chromium, headless, network blocked but every request recorded): no
/// console error, no uncaught exception, nothing fetched, and a full-page screenshot (`BITPLAN_SCREENSHOTS=DIR`
/// keeps it, its path printed; the page's own folder is removed). Skipped, with the reason printed, when chromium is
/// absent.
@Suite(.serialized, .enabled(if: chromiumPresent, Comment(rawValue: HeadlessChromium.skipReason)))
struct ReportBrowserTests {
  /// Renders the report of a synthetic run with `blocks` blocks (7 layers each) in a temporary folder, loads it, and
  /// removes the folder.
  static func load(blocks: Int, name: String) throws -> HeadlessChromium.PageLoad {
    let run = ReportFixtures.run(blocks: blocks, rename: [1: "model.layers.0.<b>&\"x'</b>"])
    let (plan, frontier) = try ReportFixtures.plan(run)
    let data = try ReportFixtures.data(run, plan: plan, frontier: frontier, validation: ReportFixtures.validation(plan))
    let folder = temporaryFolder(name)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let page = URL(fileURLWithPath: folder + "/report.html")
    try Data(HTMLReport.render(data, directory: folder).utf8).write(to: page)
    let load = try HeadlessChromium.load(file: page, width: 1400, height: 900, timeout: .seconds(90))
    if let kept = try HeadlessChromium.keepScreenshot(load, name: name) { print("ReportBrowserTests: screenshot \(kept)") }
    return load
  }

  @Test func reportLoadsCleanlyWithNothingFetched() throws {
    let page = try Self.load(blocks: 4, name: "report-small")
    #expect(page.consoleErrors.isEmpty, "console: \(page.consoleErrors)")
    #expect(page.requests.isEmpty, "requests: \(page.requests)")
    #expect(page.title.hasPrefix("BitPlan report"), "title: \(page.title)")
    #expect(page.screenshotPNG.starts(with: HeadlessChromium.pngSignature))
    let size = try #require(HeadlessChromium.pngSize(page.screenshotPNG))
    #expect(size.width == 1400)
    #expect(size.height > 900, "the full page, not the viewport")
  }

  /// Hundreds of layers (58 blocks × 7 = 406): still no error, and the page stays one screen wide (the sensitivity
  /// chart scrolls inside its own box instead of widening the page).
  @Test func largeModelReportLoadsCleanlyAndKeepsThePageWidth() throws {
    let page = try Self.load(blocks: 58, name: "report-406-layers")
    #expect(page.consoleErrors.isEmpty, "console: \(page.consoleErrors)")
    #expect(page.requests.isEmpty, "requests: \(page.requests)")
    let size = try #require(HeadlessChromium.pngSize(page.screenshotPNG))
    #expect(size.width == 1400)
  }
}
