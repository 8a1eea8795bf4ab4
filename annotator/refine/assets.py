"""Keyboard shortcuts (JS put into the page head) and the app's CSS, kept as strings so that they ship with
the Python package (no package-data needed for this subpackage)."""

JS = r"""
<script>
(() => {
  const TOOLS = {p: "positive point", n: "negative point", b: "box", r: "brush", e: "eraser"};
  const click = (sel) => { const el = document.querySelector(sel); if (el && !el.disabled) el.click(); };
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))
      && !(t.type === "radio" || t.type === "range");
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const editor = document.querySelector("#ssu-frame");
    if (!editor || editor.offsetParent === null) return;  // only on the Editor tab
    const k = ev.key;
    let done = true;
    if (k === "ArrowLeft" || k === "a") click("#ssu-prev");
    else if (k === "ArrowRight" || k === "d") click("#ssu-next");
    else if (k === "A" && ev.shiftKey) click("#ssu-accept");
    else if (k === "z") click("#ssu-undo");
    else if (k === "y") click("#ssu-redo");
    else if (k === " ") {
      const v = document.querySelector("#ssu-video video");
      if (v) v.paused ? v.play() : v.pause();
    }
    else if (TOOLS[k]) click(`#ssu-tool input[value="${TOOLS[k]}"]`);
    else done = false;
    if (done) ev.preventDefault();
  });
})();
</script>
"""

CSS = """
#ssu-frame img { cursor: crosshair; image-rendering: auto; }
.ssu-caps { font-size: 0.95rem; line-height: 1.4; }
.ssu-frame { font-weight: bold; margin-bottom: 4px; }
.ssu-cap { margin: 3px 0; }
.ssu-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; border: 1px solid #333;
              vertical-align: middle; }
#ssu-msg { min-height: 1.5em; }
#ssu-msg p { margin: 0; }
"""
