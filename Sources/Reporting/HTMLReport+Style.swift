/// The page's inline CSS and JavaScript. System font stacks only (nothing is fetched). The script only sorts
/// tables and highlights a layer in every chart while the pointer is on it; the page is complete without it.
extension HTMLReport {
  static let css = """
    :root { --ink: #1a1a1a; --muted: #555; --rule: #d0d0d0; --band: #f3f3f3; --hl: #fff3b0; }
    body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
      color: var(--ink); background: #fff; margin: 0 auto; max-width: 1200px; padding: 0 20px 40px; line-height: 1.45; }
    code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.92em; }
    pre { background: var(--band); padding: 10px 12px; overflow-x: auto; white-space: pre; border: 1px solid var(--rule); }
    h1 { font-size: 1.6em; margin: 24px 0 4px; } h2 { font-size: 1.3em; margin-top: 32px; border-bottom: 1px solid var(--rule); }
    h3 { font-size: 1.05em; margin: 12px 0 4px; }
    .lead, .note, figcaption { color: var(--muted); } figcaption { font-size: 0.9em; margin-top: 4px; }
    nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid var(--rule); z-index: 2; font-size: 0.95em; }
    nav a { color: #0b57a4; text-decoration: none; }
    table { border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }
    th, td { padding: 3px 8px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
    th { background: #fafafa; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; } td.n { white-space: nowrap; }
    table.facts th { width: 11em; font-weight: 600; }
    table.sortable th { cursor: pointer; user-select: none; position: sticky; top: 0; }
    table.sortable th[aria-sort="ascending"]::after { content: " ▲"; } table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
    tr.chosen td { background: #eef5ff; font-weight: 600; }
    .missing { border-left: 4px solid #d08c00; padding: 4px 10px; background: #fff8e6; }
    .noisy { font-size: 0.8em; color: #8a5a00; }
    figure { margin: 12px 0; } .scroll { overflow-x: auto; border: 1px solid var(--rule); }
    .tall { max-height: 520px; overflow: auto; border: 1px solid var(--rule); }
    .pair { display: flex; flex-wrap: wrap; gap: 24px; }
    svg { display: block; font-family: inherit; }
    svg text { font-size: 11px; fill: #222; } svg .title { font-size: 12px; fill: #000; } svg .panel { font-size: 12px; fill: #444; }
    svg .legend text { font-size: 12px; }
    svg .grid { stroke: #e6e6e6; } svg .frame { stroke: #333; }
    svg .bands rect { fill: var(--band); }
    svg .frontier { fill: none; stroke: #555; stroke-width: 2; }
    svg text.cell { font-size: 10px; pointer-events: none; fill: #000; } svg text.cell.light { fill: #fff; }
    svg .layer:hover line, svg .layer.hl line { stroke-width: 3; }
    svg .layer.hl circle, svg .layer.hl path { stroke: #000; stroke-width: 1.5; }
    svg rect[data-layer]:hover, svg rect.hl { stroke: #000; stroke-width: 2; }
    @media print {
      body { max-width: none; padding: 0; color: #000; background: #fff; }
      nav { display: none; } a { color: #000; }
      .scroll, .tall { overflow: visible; max-height: none; border: none; }
      svg { max-width: 100%; height: auto; }
      pre { white-space: pre-wrap; background: #fff; }
      figure, table { break-inside: avoid; }
      details > :not(summary) { display: block; }
      .lead, .note, figcaption { color: #000; }
    }

    """

  static let script = """
    (function () {
      // Sort a table by the clicked column: numbers by data-v (empty last), text otherwise.
      document.querySelectorAll("table.sortable").forEach(function (table) {
        var heads = table.tHead ? table.tHead.rows[0].cells : [];
        Array.prototype.forEach.call(heads, function (th, col) {
          th.setAttribute("tabindex", "0");
          function sort() {
            var down = th.getAttribute("aria-sort") === "ascending";
            Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
            th.setAttribute("aria-sort", down ? "descending" : "ascending");
            var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
            var numeric = rows.some(function (r) { var c = r.cells[col]; return c ? c.hasAttribute("data-v") : false; });
            function key(r) {
              var c = r.cells[col]; if (!c) return numeric ? NaN : "";
              if (numeric) { var v = c.getAttribute("data-v"); return v === null || v === "" ? NaN : parseFloat(v); }
              return c.textContent;
            }
            rows.sort(function (a, b) {
              var x = key(a), y = key(b), s;
              if (numeric) {
                if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
                s = x - y;
              } else { s = x.localeCompare(y); }
              return down ? -s : s;
            });
            rows.forEach(function (r) { body.appendChild(r); });
          }
          th.addEventListener("click", sort);
          th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
        });
      });
      // Highlight one layer in every chart while the pointer is on any of its marks.
      var marks = document.querySelectorAll("[data-layer]");
      function highlight(name, on) {
        marks.forEach(function (m) { if (m.getAttribute("data-layer") === name) m.classList.toggle("hl", on); });
      }
      marks.forEach(function (m) {
        m.addEventListener("mouseenter", function () { highlight(m.getAttribute("data-layer"), true); });
        m.addEventListener("mouseleave", function () { highlight(m.getAttribute("data-layer"), false); });
      });
    })();

    """
}
