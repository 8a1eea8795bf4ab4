"""The editor page's HTML shell, the shortcut list (shown in the page and in docs/refine.md), and the
Queue page's CSS. The editor's behaviour lives in annotator/refine/static/editor.js, its looks in static/editor.css."""

from __future__ import annotations

SHORTCUTS = {
    "d / →": "next frame (hold to play through)", "a / ←": "previous frame", "Shift+D": "10 frames forward",
    "type a number + Enter": "go to that frame", "space": "play / pause with masks drawn", "m": "sound on / off",
    "r / e": "brush / eraser (drag)", "g": "polygon (click corners; Enter, double-click or first corner closes)",
    "p / n": "SAM positive / negative point", "b": "SAM box (drag)", "c / Esc": "clear SAM prompts",
    "v": "pan tool (or middle-drag)", "wheel, + / - / 0": "zoom at the pointer / in / out / fit",
    "[ / ]": "brush smaller / larger", "o": "outline only", "h": "hide masks", "1..9": "select source",
    "z / y": "undo / redo", "Ctrl+S (in a caption)": "save captions", "Shift+A": "accept (asks first)",
    "u / Shift+U": "next / previous frames where the drafter is unsure (confidence under the threshold)",
}

TOOL_BUTTONS = [("brush", "Brush (r)"), ("eraser", "Eraser (e)"), ("polygon", "Polygon (g)"),
                ("point+", "SAM + (p)"), ("point-", "SAM − (n)"), ("box", "SAM box (b)"), ("pan", "Pan (v)")]


def editor_html() -> str:
    tools = "".join(f'<button data-tool="{t}">{label}</button>' for t, label in TOOL_BUTTONS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssu-refine editor</title>
<link rel="stylesheet" href="/ssu/static/editor.css"></head>
<body>
<header><a href="/" id="ssu-back">← Queue</a><span id="ssu-status">loading…</span>
<span id="ssu-pending" data-n="0">all saved</span><span id="ssu-user"></span></header>
<div id="ssu-notice" hidden></div>
<div id="ssu-msg"></div>
<main>
<section id="ssu-left">
  <div id="ssu-stage"><div id="ssu-world">
    <canvas id="ssu-picture" width="512" height="512"></canvas>
    <canvas id="ssu-masks" width="512" height="512"></canvas>
    <canvas id="ssu-draw" width="512" height="512"></canvas>
  </div></div>
  <div id="ssu-nav">
    <button id="ssu-prev" title="a / ←">◀</button>
    <label>frame <input id="ssu-frame-no" type="number" min="0" max="299" value="0"></label>
    <button id="ssu-next" title="d / →">▶</button>
    <button id="ssu-play" title="space">▶ play with masks</button>
    <button id="ssu-mute" title="m">♪ sound on (m)</button>
    <span>zoom <b id="ssu-zoom">100%</b></span><button id="ssu-fit" title="0">fit</button>
  </div>
  <div id="ssu-conf-bar" class="conf-only"><span id="ssu-conf"></span>
    <label>unsure below <input id="ssu-unsure" type="number" min="0" max="1" step="0.05"></label>
    <span><kbd>u</kbd> / <kbd>Shift+U</kbd> next / previous unsure</span></div>
  <div id="ssu-tl"><canvas id="ssu-timeline"></canvas><canvas id="ssu-cursor"></canvas></div>
  <video id="ssu-video" controls preload="auto"></video>
</section>
<section id="ssu-right">
  <h3>Sources</h3><div id="ssu-sources"></div>
  <h3>Tools</h3><div id="ssu-tools">{tools}</div>
  <div class="row"><label>brush radius <input id="ssu-radius" type="range" min="1" max="128" value="12"></label></div>
  <div class="row"><label>mask opacity <input id="ssu-opacity" type="range" min="0" max="100" value="50"></label>
    <label><input id="ssu-outline" type="checkbox"> outline only (o)</label>
    <label><input id="ssu-hide" type="checkbox"> hide (h)</label></div>
  <details><summary>Propagate with SAM2</summary><div class="row">
    <select id="ssu-direction"><option>both</option><option>forward</option><option>backward</option></select>
    from <input id="ssu-p-start" type="number" value="0" min="0"> to <input id="ssu-p-end" type="number" min="1">
    <button id="ssu-propagate">Propagate from this frame</button></div></details>
  <details><summary>Edit sources</summary><div class="row">
    <select id="ssu-cat"></select><input id="ssu-name" placeholder="name (optional)">
    <button id="ssu-add-source">Add</button><button id="ssu-set-cat">Set category/name</button>
    <button id="ssu-remove-source" class="danger">Remove</button></div></details>
  <h3>Captions of the selected source</h3>
  <div id="ssu-draft"></div>
  <div id="ssu-spans"></div>
  <div class="row"><button id="ssu-save-spans">Save captions</button><button id="ssu-add-span">+ span here</button>
    <button id="ssu-split">Split at this frame</button>
    <input id="ssu-span-idx" type="number" min="0" value="0" title="span #">
    <button id="ssu-regen">Regenerate with VLM</button></div>
  <div class="row"><button id="ssu-undo">↶ Undo (z)</button><button id="ssu-redo">↷ Redo (y)</button></div>
  <h3>Review</h3>
  <textarea id="ssu-note" rows="2" placeholder="note for the next person (required to reject / send back)"></textarea>
  <div class="row"><button id="ssu-accept" class="primary">Accept (Shift+A)</button>
    <button id="ssu-reject" class="danger">Reject</button><button id="ssu-send-back">Send back</button></div>
  <div id="ssu-notes"></div>
  <details open><summary>Shortcuts</summary><table id="ssu-keys"></table></details>
</section>
</main>
<div id="ssu-login" hidden><form id="ssu-login-form"><h2>Session ended</h2><p id="ssu-login-why"></p>
<p>Your unsaved caption text and queued edits are kept in this page; log in to continue.</p>
<input id="ssu-login-user" placeholder="name" autocomplete="username">
<input id="ssu-login-pass" type="password" placeholder="password" autocomplete="current-password">
<button type="submit" id="ssu-login-go">Log in</button></form></div>
<script src="/ssu/static/captions.js"></script>
<script src="/ssu/static/lookahead.js"></script>
<script src="/ssu/static/editor.js"></script>
</body></html>"""


CSS = """
#ssu-msg { min-height: 1.5em; }
#ssu-msg p { margin: 0; }
#ssu-upload-log { font-family: monospace; white-space: pre-wrap; }
"""
