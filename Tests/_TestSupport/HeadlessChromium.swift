import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Loads a local HTML file in headless Chromium and reports what a reader's browser would see: console errors and
/// warnings, uncaught exceptions, every URL the page asked for, and a full-page screenshot.
///
/// The browser is driven through the DevTools protocol over `--remote-debugging-pipe`: it reads commands on fd 3 and
/// writes replies and events on fd 4, each message JSON followed by a NUL byte. No websocket, no Python, no driver
/// binary. The network is blocked for real (every host name resolves to nothing, every other connection goes to a
/// closed proxy port, loopback included) while `Network.requestWillBeSent` still records each attempt, so a page that
/// is meant to be self-contained fails the check visibly instead of quietly fetching. The browser runs in its own
/// process group in a fresh profile folder; both are gone when `load` returns or throws, timeout included.
///
///     let page = try HeadlessChromium.load(file: URL(fileURLWithPath: "report.html"))
///     #expect(page.consoleErrors.isEmpty)
///     #expect(page.requests.isEmpty)
public enum HeadlessChromium {
  /// What one page load produced.
  public struct PageLoad: Sendable {
    /// Console messages at level error or warning (`console.error`, `console.warn`, `console.assert`, and the
    /// browser's own messages such as a resource that failed to load), then uncaught exceptions (`Uncaught …`,
    /// with the source line when the browser gives one). In the order they arrived.
    public var consoleErrors: [String]
    /// Every URL the page requested other than the page itself, in order: http(s), file (a local stylesheet or
    /// script counts: the page is not self-contained), blob, anything. `data:` URIs (inline by definition) and
    /// `about:` pages are left out.
    public var requests: [String]
    /// PNG of the whole page (not only the viewport) at device scale 1: width and height in pixels are the
    /// page's CSS size, at least the viewport's.
    public var screenshotPNG: Data
    /// `document.title` after the load.
    public var title: String
  }

  /// Why a load failed. Every case names what the browser said or what was waited for.
  public enum Failure: Error, CustomStringConvertible, Equatable {
    /// No `chromium` or `chromium-browser` on PATH or in /usr/bin (Debian: `apt-get install chromium`).
    case browserNotFound
    /// The HTML file does not exist or cannot be read.
    case fileNotReadable(String)
    /// `posix_spawn` (or the pipe set-up before it) failed with this errno.
    case spawnFailed(errno: Int32)
    /// Nothing came within the timeout while waiting for `waitingFor`.
    case timedOut(waitingFor: String)
    /// The browser closed its end of the pipe (it exited), with the tail of its stderr.
    case browserExited(stderrTail: String)
    /// A command answered with an error.
    case commandFailed(method: String, message: String)
    /// A message on the pipe was not the JSON object the protocol promises, or a reply lacked a field.
    case malformedReply(String)
    /// `Page.navigate` reported an error (e.g. `net::ERR_FILE_NOT_FOUND`).
    case navigationFailed(String)

    public var description: String {
      switch self {
      case .browserNotFound: "no chromium or chromium-browser on PATH or in /usr/bin (apt-get install chromium)"
      case .fileNotReadable(let path): "cannot read \(path)"
      case .spawnFailed(let code): "cannot start chromium: \(String(cString: strerror(code)))"
      case .timedOut(let what): "chromium timed out waiting for \(what)"
      case .browserExited(let tail): "chromium exited early: \(tail)"
      case .commandFailed(let method, let message): "chromium: \(method) failed: \(message)"
      case .malformedReply(let what): "chromium sent a malformed message: \(what)"
      case .navigationFailed(let text): "chromium could not open the page: \(text)"
      }
    }
  }

  /// The browser this harness starts: the first `chromium` or `chromium-browser` found on PATH, then in /usr/bin;
  /// nil when there is none (tests that need it are then skipped, saying so).
  public static let executable: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let folders = path.split(separator: ":").map(String.init) + ["/usr/bin"]
    for name in ["chromium", "chromium-browser"] {
      for folder in folders where !folder.isEmpty {
        let candidate = folder + "/" + name
        if access(candidate, X_OK) == 0 { return candidate }
      }
    }
    return nil
  }()

  /// The reason printed by a test that is skipped because there is no browser.
  public static let skipReason = "chromium not found (apt-get install chromium, or make deps): browser check skipped"

  /// The flags every load uses: headless, no sandbox (containers run as root), a throwaway profile, nothing
  /// started in the background, and no way out to the network.
  static func arguments(profile: String) -> [String] {
    [
      "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
      "--user-data-dir=\(profile)", "--remote-debugging-pipe",
      // The network, blocked: names resolve to nothing, every connection goes to the discard port (closed), and
      // loopback is not exempt from the proxy (Chromium bypasses it for 127.0.0.1/localhost by default).
      "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
      "--disable-default-apps", "--no-pings", "--metrics-recording-only", "--mute-audio",
      "--disable-dev-shm-usage", "--hide-scrollbars",
      "about:blank",
    ]
  }

  /// Opens `file` in a fresh headless Chromium with a `width` × `height` viewport, waits for the load event and
  /// `settle` more (timers, promise rejections), then takes the full-page screenshot. The whole call, browser start
  /// included, must finish within `timeout`, else `Failure.timedOut`; the browser is killed on every path.
  public static func load(
    file: URL, width: Int = 1280, height: Int = 800, timeout: Duration = .seconds(60),
    settle: Duration = .milliseconds(300)
  ) throws -> PageLoad {
    guard let executable else { throw Failure.browserNotFound }
    let path = file.standardizedFileURL.path
    guard access(path, R_OK) == 0 else { throw Failure.fileNotReadable(path) }
    let pageURL = URL(fileURLWithPath: path).absoluteString
    let deadline = ContinuousClock.now + timeout

    let profile = FileManager.default.temporaryDirectory
      .appendingPathComponent("bitplan-chromium-\(getpid())-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: profile) }

    let browser = try Browser(executable: executable, arguments: arguments(profile: profile),
                              stderrPath: profile + "/stderr.txt")
    defer { browser.terminate() }
    var session = DevToolsSession(browser: browser, deadline: deadline, pageURL: pageURL)
    return try session.load(pageURL: pageURL, width: width, height: height, settle: settle)
  }

  /// Writes `page`'s screenshot to `$BITPLAN_SCREENSHOTS/<name>.png` when that variable names a folder (to look at
  /// what a test saw); returns the path written, nil when the variable is unset.
  @discardableResult
  public static func keepScreenshot(_ page: PageLoad, name: String) throws -> String? {
    guard let folder = ProcessInfo.processInfo.environment["BITPLAN_SCREENSHOTS"], !folder.isEmpty else { return nil }
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let path = folder + "/" + name + ".png"
    try page.screenshotPNG.write(to: URL(fileURLWithPath: path), options: .atomic)
    return path
  }

  /// Width and height of a PNG, from its IHDR chunk; nil when `data` is not a PNG.
  public static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
    let bytes = [UInt8](data.prefix(24))
    guard bytes.count == 24, bytes[0..<8].elementsEqual(pngSignature), bytes[12..<16].elementsEqual(Array("IHDR".utf8))
    else { return nil }
    func be32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
    return (be32(16), be32(20))
  }

  /// The eight bytes every PNG starts with.
  public static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
}

// MARK: - The browser process

extension HeadlessChromium {
  /// One Chromium process (in its own process group) with the DevTools pipe on fds 3 and 4.
  final class Browser {
    let pid: pid_t
    /// Our end of the command pipe (the browser reads fd 3).
    private(set) var commands: Int32
    /// Our end of the reply pipe (the browser writes fd 4).
    let replies: Int32
    let stderrPath: String
    private var reaped = false

    init(executable: String, arguments: [String], stderrPath: String) throws {
      HeadlessChromium.ignoreBrokenPipe
      // Pipes created close-on-exec and moved above fd 4, so that the two dup2s below are real copies (a dup2 onto
      // the same number would keep close-on-exec) and nothing else leaks into the browser.
      func pipeAbove4() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure.spawnFailed(errno: errno) }
        defer { close(fds[0]); close(fds[1]) }
        let r = fcntl(fds[0], F_DUPFD_CLOEXEC, 10), w = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
        guard r >= 0, w >= 0 else {
          let code = errno
          if r >= 0 { close(r) }
          if w >= 0 { close(w) }
          throw Failure.spawnFailed(errno: code)
        }
        return (r, w)
      }
      let toBrowser = try pipeAbove4()
      let fromBrowser: (read: Int32, write: Int32)
      do { fromBrowser = try pipeAbove4() } catch {
        close(toBrowser.read); close(toBrowser.write)
        throw error
      }
      // Our ends stay open in this process; the browser's ends are closed here once it has them.
      defer { close(toBrowser.read); close(fromBrowser.write) }

      var actions = posix_spawn_file_actions_t()
      posix_spawn_file_actions_init(&actions)
      defer { posix_spawn_file_actions_destroy(&actions) }
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
      posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
      posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      posix_spawn_file_actions_adddup2(&actions, toBrowser.read, 3)
      posix_spawn_file_actions_adddup2(&actions, fromBrowser.write, 4)

      var attributes = posix_spawnattr_t()
      posix_spawnattr_init(&attributes)
      defer { posix_spawnattr_destroy(&attributes) }
      // Own process group (so terminate() reaches the renderers too), default SIGPIPE (this process ignores it),
      // nothing blocked.
      var defaults = sigset_t(), none = sigset_t()
      sigemptyset(&defaults)
      sigaddset(&defaults, SIGPIPE)
      sigemptyset(&none)
      posix_spawnattr_setsigdefault(&attributes, &defaults)
      posix_spawnattr_setsigmask(&attributes, &none)
      posix_spawnattr_setpgroup(&attributes, 0)
      posix_spawnattr_setflags(
        &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

      let argv = ([executable] + arguments).map { strdup($0) } + [nil]
      defer { argv.forEach { free($0) } }
      var child: pid_t = 0
      let status = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
      guard status == 0 else {
        close(toBrowser.write); close(fromBrowser.read)
        throw Failure.spawnFailed(errno: status)
      }
      pid = child
      commands = toBrowser.write
      replies = fromBrowser.read
      self.stderrPath = stderrPath
    }

    /// Writes all of `bytes` to the command pipe; false when the browser is gone.
    func send(_ bytes: [UInt8]) -> Bool {
      var offset = 0
      while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        offset += n
      }
      return true
    }

    /// The last lines of the browser's stderr (for errors).
    var stderrTail: String {
      let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
      let lines = text.split(separator: "\n").suffix(5)
      return lines.isEmpty ? "no output on stderr" : lines.joined(separator: " | ")
    }

    /// Kills the browser's whole process group and reaps it. Safe to call twice.
    func terminate() {
      if commands >= 0 { close(commands); commands = -1 }
      if !reaped {
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
        close(replies)
      }
    }

    deinit { terminate() }
  }

  /// A write to a browser that has died must come back as an error, not kill the test process.
  private static let ignoreBrokenPipe: Void = { signal(SIGPIPE, SIG_IGN) }()
}

// MARK: - The protocol

extension HeadlessChromium {
  /// Commands, replies and events on the pipe, against one deadline; collects the page's messages and requests.
  struct DevToolsSession {
    let browser: Browser
    let deadline: ContinuousClock.Instant
    let pageURL: String
    private var nextID = 0
    private var buffer: [UInt8] = []
    /// How much of `buffer` is known to hold no NUL (a screenshot reply is megabytes, read in many chunks).
    private var scanned = 0
    private(set) var consoleErrors: [String] = []
    private(set) var requests: [String] = []
    private var loaded = false

    init(browser: Browser, deadline: ContinuousClock.Instant, pageURL: String) {
      self.browser = browser
      self.deadline = deadline
      self.pageURL = pageURL
    }

    mutating func load(pageURL: String, width: Int, height: Int, settle: Duration) throws -> PageLoad {
      let created = try call("Target.createTarget", ["url": "about:blank"])
      guard let targetID = created["targetId"] as? String else { throw Failure.malformedReply("createTarget: no targetId") }
      let attached = try call("Target.attachToTarget", ["targetId": targetID, "flatten": true])
      guard let session = attached["sessionId"] as? String else { throw Failure.malformedReply("attachToTarget: no sessionId") }
      for domain in ["Network", "Runtime", "Log", "Page"] { _ = try call("\(domain).enable", session: session) }
      _ = try call(
        "Emulation.setDeviceMetricsOverride",
        ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false], session: session)

      let navigated = try call("Page.navigate", ["url": pageURL], session: session)
      if let error = navigated["errorText"] as? String, !error.isEmpty { throw Failure.navigationFailed(error) }
      while !loaded {
        if let message = try nextMessage(until: deadline, waitingFor: "Page.loadEventFired") { try handle(message) }
      }
      // Let timers, promise rejections and late requests arrive.
      let settled = min(ContinuousClock.now + settle, deadline)
      while let message = try nextMessage(until: settled, waitingFor: nil) { try handle(message) }

      let title = try call(
        "Runtime.evaluate", ["expression": "document.title", "returnByValue": true], session: session)
      let titleText = ((title["result"] as? [String: Any])?["value"] as? String) ?? ""

      let metrics = try call("Page.getLayoutMetrics", session: session)
      guard let size = (metrics["cssContentSize"] ?? metrics["contentSize"]) as? [String: Any],
        let contentWidth = (size["width"] as? NSNumber)?.doubleValue,
        let contentHeight = (size["height"] as? NSNumber)?.doubleValue
      else { throw Failure.malformedReply("getLayoutMetrics: no content size") }
      let clip: [String: Any] = [
        "x": 0, "y": 0, "scale": 1,
        "width": max(Double(width), contentWidth.rounded(.up)), "height": max(Double(height), contentHeight.rounded(.up)),
      ]
      let shot = try call(
        "Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true, "clip": clip], session: session)
      guard let base64 = shot["data"] as? String, let png = Data(base64Encoded: base64) else {
        throw Failure.malformedReply("captureScreenshot: no PNG data")
      }
      _ = try? call("Browser.close")
      return PageLoad(consoleErrors: consoleErrors, requests: requests, screenshotPNG: png, title: titleText)
    }

    /// Sends `method` and handles every event until its reply; the reply's `result`.
    mutating func call(_ method: String, _ params: [String: Any] = [:], session: String? = nil) throws -> [String: Any] {
      nextID += 1
      let id = nextID
      var message: [String: Any] = ["id": id, "method": method, "params": params]
      if let session { message["sessionId"] = session }
      let json = try JSONSerialization.data(withJSONObject: message)
      guard browser.send([UInt8](json) + [0]) else { throw Failure.browserExited(stderrTail: browser.stderrTail) }
      while true {
        guard let reply = try nextMessage(until: deadline, waitingFor: "the reply to \(method)") else { continue }
        if let replyID = reply["id"] as? Int, replyID == id {
          if let error = reply["error"] as? [String: Any] {
            throw Failure.commandFailed(method: method, message: error["message"] as? String ?? "\(error)")
          }
          return reply["result"] as? [String: Any] ?? [:]
        }
        try handle(reply)
      }
    }

    /// Records what an event says about the page.
    mutating func handle(_ message: [String: Any]) throws {
      guard let method = message["method"] as? String else { return }
      let params = message["params"] as? [String: Any] ?? [:]
      switch method {
      case "Page.loadEventFired":
        loaded = true
      case "Network.requestWillBeSent":
        guard let request = params["request"] as? [String: Any], let url = request["url"] as? String else { return }
        let lower = url.lowercased()
        if url == pageURL || lower.hasPrefix("data:") || lower.hasPrefix("about:") { return }
        requests.append(url)
      case "Runtime.consoleAPICalled":
        let type = params["type"] as? String ?? ""
        guard ["error", "warning", "assert"].contains(type) else { return }
        let args = params["args"] as? [[String: Any]] ?? []
        let text = args.map { arg in
          if let value = arg["value"] { return "\(value)" }
          return arg["description"] as? String ?? arg["type"] as? String ?? "?"
        }.joined(separator: " ")
        consoleErrors.append("console.\(type == "warning" ? "warn" : type): \(text)")
      case "Runtime.exceptionThrown":
        let details = params["exceptionDetails"] as? [String: Any] ?? [:]
        let exception = details["exception"] as? [String: Any]
        let text = (exception?["description"] as? String) ?? (details["text"] as? String) ?? "exception"
        let line = (details["lineNumber"] as? Int).map { " (line \($0 + 1))" } ?? ""
        consoleErrors.append("uncaught: \(text.split(separator: "\n").first.map(String.init) ?? text)\(line)")
      case "Log.entryAdded":
        let entry = params["entry"] as? [String: Any] ?? [:]
        let level = entry["level"] as? String ?? ""
        guard level == "error" || level == "warning" else { return }
        let url = (entry["url"] as? String).map { " (\($0))" } ?? ""
        consoleErrors.append("\(entry["source"] as? String ?? "browser") \(level): \(entry["text"] as? String ?? "")\(url)")
      default:
        return
      }
    }

    /// The next whole message, reading until `limit`. At the limit: nil when `waitingFor` is nil (a settle
    /// period ended), else `Failure.timedOut`.
    mutating func nextMessage(until limit: ContinuousClock.Instant, waitingFor: String?) throws -> [String: Any]? {
      while true {
        if let end = buffer[scanned...].firstIndex(of: 0) {
          let bytes = Data(buffer[..<end])
          buffer.removeSubrange(...end)
          scanned = 0
          guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw Failure.malformedReply(String(decoding: bytes.prefix(200), as: UTF8.self))
          }
          return object
        }
        let left = ContinuousClock.now.duration(to: limit)
        if left <= .zero {
          if let waitingFor { throw Failure.timedOut(waitingFor: waitingFor) }
          return nil
        }
        let (seconds, attoseconds) = left.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
        var poller = pollfd(fd: browser.replies, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, milliseconds)
        if ready < 0 && errno == EINTR { continue }
        if ready <= 0 { continue }  // the deadline check above decides
        scanned = buffer.count
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        let n = chunk.withUnsafeMutableBytes { read(browser.replies, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { throw Failure.browserExited(stderrTail: browser.stderrTail) }
        buffer.append(contentsOf: chunk[..<n])
      }
    }
  }
}
