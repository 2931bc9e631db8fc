import Foundation
import Testing
import _TestSupport

/// Whether the browser tests run; prints why not (a skip in the log, not a silent pass).
private let chromiumAvailable: Bool = {
  if HeadlessChromium.executable == nil { print("HeadlessChromiumTests: \(HeadlessChromium.skipReason)") }
  return HeadlessChromium.executable != nil
}()

/// The browser harness that checks report.html: each test writes a small page that does one thing (or nothing) and
/// checks that the harness sees exactly that. Skipped, with the reason printed, when there is no chromium.
@Suite(.serialized, .enabled(if: chromiumAvailable, Comment(rawValue: HeadlessChromium.skipReason)))
struct HeadlessChromiumTests {

  /// Writes `html` (and any `siblings`, name → text) into a fresh folder; the page's URL.
  static func page(_ name: String, _ html: String, siblings: [String: String] = [:]) throws -> URL {
    let folder = URL(fileURLWithPath: temporaryFolder(name))
    try html.write(to: folder.appendingPathComponent("page.html"), atomically: true, encoding: .utf8)
    for (file, text) in siblings {
      try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }
    return folder.appendingPathComponent("page.html")
  }

  static func html(title: String = "test", head: String = "", body: String) -> String {
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(title)</title>\(head)</head><body>\(body)</body></html>"
  }

  @Test func cleanInlineSVGPageHasNoErrorsNoRequestsAndAFullPageScreenshot() throws {
    // Taller than the viewport, with an inline SVG, a data: image and inline CSS/JS: nothing outside the file.
    let url = try Self.page(
      "clean",
      Self.html(
        title: "Clean page",
        head: "<style>body{margin:0;font-family:sans-serif} .tall{height:1500px}</style>",
        body: """
          <h1>Sensitivity</h1>
          <p>ΔNLL × 10³ → 4.5 bits/weight; “quotes” — dashes, µs, ≤ 90 s, 95% interval [0.12, 0.34]</p>
          <svg width="200" height="100" xmlns="http://www.w3.org/2000/svg"><rect width="200" height="100" fill="#36c"/></svg>
          <img alt="dot" src="data:image/png;base64,\
          iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==">
          <div class="tall"></div>
          <script>document.querySelector('h1').textContent += ' (script ran)';</script>
          """))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let page = try HeadlessChromium.load(file: url, width: 800, height: 600)
    try HeadlessChromium.keepScreenshot(page, name: "headless-clean")
    #expect(page.consoleErrors == [])
    #expect(page.requests == [])
    #expect(page.title == "Clean page")
    #expect(Array(page.screenshotPNG.prefix(8)) == HeadlessChromium.pngSignature)
    let size = try #require(HeadlessChromium.pngSize(page.screenshotPNG))
    #expect(size.width == 800)
    #expect(size.height >= 1500, "the screenshot covers the whole page, not only the 600 px viewport")
  }

  @Test func consoleErrorsAndWarningsAreCaught() throws {
    let url = try Self.page(
      "console",
      Self.html(body: "<script>console.log('fine'); console.error('bad axis', 3); console.warn('odd value');</script>"))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let page = try HeadlessChromium.load(file: url, width: 400, height: 300)
    #expect(page.consoleErrors.count == 2, "\(page.consoleErrors)")
    #expect(page.consoleErrors.contains { $0.contains("console.error") && $0.contains("bad axis 3") })
    #expect(page.consoleErrors.contains { $0.contains("console.warn") && $0.contains("odd value") })
    #expect(!page.consoleErrors.contains { $0.contains("fine") })
    #expect(page.requests == [])
  }

  @Test func uncaughtExceptionsAreCaught() throws {
    let url = try Self.page(
      "exception",
      Self.html(body: """
        <p>before</p>
        <script>
        function draw() { throw new TypeError('no such layer: lm_head'); }
        draw();
        </script>
        <script>Promise.reject(new Error('late failure'));</script>
        """))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let page = try HeadlessChromium.load(file: url, width: 400, height: 300)
    #expect(page.consoleErrors.contains { $0.hasPrefix("uncaught:") && $0.contains("TypeError: no such layer: lm_head") },
            "\(page.consoleErrors)")
    #expect(page.consoleErrors.contains { $0.contains("late failure") }, "an unhandled rejection counts too")
  }

  @Test func remoteImagesAndFetchesAreRecordedAndBlocked() throws {
    let url = try Self.page(
      "remote",
      Self.html(body: """
        <img src="http://example.com/x.png" onerror="document.title = 'image blocked'">
        <script>fetch('https://example.org/data.json').then(() => console.log('fetched')).catch(() => {});</script>
        """))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let page = try HeadlessChromium.load(file: url, width: 400, height: 300)
    #expect(page.requests.contains("http://example.com/x.png"), "\(page.requests)")
    #expect(page.requests.contains("https://example.org/data.json"), "\(page.requests)")
    #expect(page.title == "image blocked", "the request was recorded, not served")
    // The browser's own report of each blocked load (net::ERR_PROXY_CONNECTION_FAILED here).
    #expect(page.consoleErrors.count == 2 && page.consoleErrors.allSatisfy { $0.contains("net::ERR_") }, "\(page.consoleErrors)")
  }

  @Test func aLocalStylesheetIsARequest() throws {
    let url = try Self.page(
      "stylesheet",
      Self.html(head: "<link rel=\"stylesheet\" href=\"other.css\">", body: "<p>styled</p>"),
      siblings: ["other.css": "p { color: red }"])
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let page = try HeadlessChromium.load(file: url, width: 400, height: 300)
    let expected = url.deletingLastPathComponent().appendingPathComponent("other.css").absoluteString
    #expect(page.requests == [expected])
    #expect(page.consoleErrors == [])
  }

  @Test func aTimeoutThrowsInsteadOfHanging() throws {
    let url = try Self.page("timeout", Self.html(body: "<p>slow enough</p>"))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    let started = ContinuousClock.now
    #expect {
      _ = try HeadlessChromium.load(file: url, timeout: .milliseconds(50))
    } throws: { error in
      guard case HeadlessChromium.Failure.timedOut = error else { return false }
      return true
    }
    #expect(started.duration(to: .now) < .seconds(5))
  }

  @Test func aMissingFileIsATypedError() throws {
    let missing = URL(fileURLWithPath: temporaryFolder("missing")).appendingPathComponent("absent.html")
    defer { try? FileManager.default.removeItem(at: missing.deletingLastPathComponent()) }
    #expect(throws: HeadlessChromium.Failure.fileNotReadable(missing.path)) {
      _ = try HeadlessChromium.load(file: missing)
    }
  }

  @Test func pngSizeReadsTheHeaderAndRejectsOtherBytes() {
    // A 1×1 PNG's first 24 bytes, then something that is not a PNG.
    let header: [UInt8] = HeadlessChromium.pngSignature + [0, 0, 0, 13] + Array("IHDR".utf8) + [0, 0, 3, 32, 0, 0, 0, 7]
    let size = HeadlessChromium.pngSize(Data(header))
    #expect(size?.width == 800 && size?.height == 7)
    #expect(HeadlessChromium.pngSize(Data("<html>".utf8)) == nil)
  }
}
