// ssu-refine's frame editor: a page of its own, talking to /ssu/api (annotator/refine/api.py).
//
// Input is never dropped: navigation happens here at once (the newest wanted frame wins; older pictures are
// ignored when they arrive), and edits go into a queue that sends one at a time, in order, each with a
// sequence number and the revision the page last saw. A refused edit is shown, never silently lost.
// Masks come as COCO RLE and are drawn here, so opacity / outline / hide and playback need no request.
// Beside it (loaded first, no DOM): captions.js, the caption draft's three-way merge; lookahead.js, which
// frames to fetch before they are wanted. Every fetch goes through send() (one place for request headers).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const CLIP = params.get("clip") || "";
  const TAB = sessionStorage.getItem("ssu-tab") || (crypto.randomUUID ? crypto.randomUUID() :
    String(Math.random()).slice(2) + String(Date.now()));
  sessionStorage.setItem("ssu-tab", TAB);
  const LOOKAHEAD = params.get("lookahead") !== "0";  // ?lookahead=0: the old 3 frames forward (bench/refine.py)
  const TOOLS = {p: "point+", n: "point-", b: "box", r: "brush", e: "eraser", g: "polygon", v: "pan"};

  let S = null;                 // the last editor state from the server
  let frame = 0;                // the frame the user wants (authoritative for navigation)
  let shown = -1;               // the frame whose picture is on screen
  let want = 0;                 // token of the newest picture request
  let source = null;            // selected source id
  let tool = "brush";
  let radius = 12, opacity = 0.5, outline = false, hidden = false;
  let prompts = {key: "", points: [], box: null};  // SAM prompts of one frame + source
  let poly = [];                // polygon corners being placed
  let stroke = null;            // points of the stroke being dragged
  let zoom = 1, tx = 0, ty = 0, fit = 1;
  let seq = Number(sessionStorage.getItem("ssu-seq:" + TAB) || 0);
  const queue = [];
  let busy = false, loggedOut = false;
  const rleCache = new Map();
  const timings = {frame: [], edit: {}};  // ms per shown frame and per edit round trip (bench/refine.py reads them)

  // ---------------------------------------------------------------- server calls
  // The one place a request is made: every call carries the X-SSU-Request header, which the server's request gate
  // requires (no form or other origin can send it). Pictures load through <img>/Image (GET, no header needed).
  function send(path, init) {
    return fetch(path, {method: "POST", credentials: "same-origin", ...init,
                        headers: {"X-SSU-Request": "1", ...((init && init.headers) || {})}});
  }

  // JSON to the API; keepalive lets the last one (closing the tab) outlive the page
  function post(path, body, keepalive) {
    return send(path, {headers: {"Content-Type": "application/json"}, body: JSON.stringify({tab: TAB, ...body}),
                       keepalive: !!keepalive});
  }

  async function api(path, body) {
    let res;
    try {
      res = await post(path, body);
    } catch (e) {
      return {status: 0, data: {error: "the server does not answer (" + e + "); your input is kept"}};
    }
    let data = {};
    try { data = await res.json(); } catch (e) { data = {error: "HTTP " + res.status}; }
    if (res.status === 401) sessionEnded(data.error);
    return {status: res.status, data};
  }

  function message(text, kind) {
    const m = $("ssu-msg");
    m.textContent = text || "";
    m.className = kind || "";
  }

  function sessionEnded(text) {
    loggedOut = true;
    $("ssu-login-why").textContent = text || "your session ended: log in again";
    $("ssu-login").hidden = false;
    $("ssu-login-user").value = $("ssu-login-user").value || (S && S.user.name) || "";
    message("session ended: log in to continue (nothing typed is lost)", "error");
    $("ssu-status").textContent = `${CLIP} · session ended: not saving until you log in again`;
    $("ssu-pending").textContent = "not connected";
    $("ssu-pending").dataset.n = "-1";
  }

  async function login(ev) {
    ev.preventDefault();
    const body = new URLSearchParams({username: $("ssu-login-user").value, password: $("ssu-login-pass").value});
    const res = await send("/login", {body});
    if (!res.ok) {
      $("ssu-login-why").textContent = res.status === 429  // too many failed logins (the server's backoff)
        ? `too many failed logins: try again in ${res.headers.get("Retry-After")} s` : "wrong name or password";
      return;
    }
    $("ssu-login-pass").value = "";
    $("ssu-login").hidden = true;
    loggedOut = false;
    await openClip("logged in again; the clip is reopened");
    pump();
  }

  async function openClip(note) {
    const r = await api("/ssu/api/open", {clip: CLIP});
    if (r.status !== 200) { if (r.status !== 401) message("⚠️ " + r.data.error, "error"); return; }
    frame = r.data.frame || 0;
    applyState(r.data, true);
    message(note || r.data.message);
  }

  // ---------------------------------------------------------------- the edit queue
  // An item is {kind, body} or {kind, build}: build() makes the body when the item is sent (a caption save sends
  // the draft as merged with the newest saved state, never a copy taken when the button was pressed). Optional:
  // ok(body) runs before the answer's state is applied, failed() when the edit is refused or dropped, and items
  // sharing a `chain` ({what}) are dropped together when one of them is refused (a decision after its saves).
  function enqueue(kind, body, extra) {
    if (S && S.read_only) {
      message("⚠️ refused: this clip is read-only here", "error");
      if (extra && extra.failed) extra.failed();
      return;
    }
    queue.push({kind, body: {frame, source_id: source, ...body}, ...extra});
    pending();
    pump();
  }

  function pending() {
    const n = queue.length + (busy ? 1 : 0);
    $("ssu-pending").textContent = n ? `saving… (${n} edit${n > 1 ? "s" : ""} in order)` : "all saved";
    $("ssu-pending").dataset.n = String(n);
  }

  async function pump() {
    if (busy || loggedOut || !queue.length) return;
    const e = queue[0];
    const body = e.build ? e.build() : e.body;
    if (!body) {  // e.g. a caption save with nothing left to save
      queue.shift();
      if (e.none) message(e.none, "ok");
      pending();
      pump();
      return;
    }
    busy = true;
    seq += 1;
    sessionStorage.setItem("ssu-seq:" + TAB, String(seq));
    const t0 = performance.now();
    const r = await api("/ssu/api/edit", {...body, kind: e.kind, rev: S.revision, seq});
    if (r.status === 401) { busy = false; seq -= 1; pending(); return; }  // kept: sent again after login
    if (r.status === 0) {  // no answer (server restarting): keep the edit, in order, and send it again soon
      busy = false; seq -= 1;
      message(r.data.error, "error");
      pending();
      setTimeout(pump, 2000);
      return;
    }
    queue.shift();
    if (r.status === 200) {
      if (e.ok) e.ok(body);
      applyState(r.data, false);
      (timings.edit[e.kind] = timings.edit[e.kind] || []).push(performance.now() - t0);
      message(r.data.message, "ok");
    } else if (r.status === 409) {
      const dropped = queue.splice(0);
      for (const d of [e, ...dropped]) if (d.failed) d.failed();
      message("⚠️ refused: " + r.data.error + (dropped.length ? ` (${dropped.length} queued edit(s) not sent)` : "") +
              (draftIds().length ? "; your unsaved caption text is kept" : ""), "error");
      await refresh();
    } else {
      if (e.failed) e.failed();
      let why = "⚠️ refused: " + r.data.error;
      if (e.chain) {  // the decision waiting for this save is not sent either
        const rest = queue.filter((q) => q.chain === e.chain);
        for (const q of rest) queue.splice(queue.indexOf(q), 1);
        if (rest.length) why += ` (${e.chain.what} not sent; your caption text is kept)`;
      }
      message(why, "error");
    }
    busy = false;
    pending();
    pump();
  }

  async function refresh() {
    const r = await api("/ssu/api/state", {});
    if (r.status === 200) applyState(r.data, false);
  }

  // ---------------------------------------------------------------- state -> page
  function applyState(st, first) {
    S = st;
    if (!st.sources.some((s) => s.id === source)) source = st.source_id;
    document.body.classList.toggle("readonly", st.read_only);
    document.body.dataset.status = st.status;
    const lease = st.lease_owner ? ` · leased by ${st.lease_owner}` : "";
    $("ssu-status").textContent = `${st.clip_id} · ${st.status}${lease} · ${st.read_only ? "🔒 read-only" : "✏️ editing"}`;
    $("ssu-user").textContent = `${st.user.name} (${st.user.role})`;
    if (st.notice) notice(st.notice);
    $("ssu-undo").disabled = !st.can_undo;
    $("ssu-redo").disabled = !st.can_redo;
    const rev = !st.user.can_review;
    $("ssu-reject").disabled = st.read_only || (rev && st.review_required);
    $("ssu-send-back").disabled = st.read_only || rev;
    $("ssu-accept").disabled = st.read_only;
    $("ssu-accept").textContent = rev && st.review_required ? "Submit for review (Shift+A)" : "Accept (Shift+A)";
    if (first) {
      $("ssu-video").src = st.video;
      $("ssu-frame-no").max = String(st.num_frames - 1);
      const cat = $("ssu-cat");
      cat.innerHTML = "";
      for (const c of st.categories) cat.add(new Option(c, c));
      $("ssu-p-end").value = String(st.num_frames);
      shortcuts(st.shortcuts);
      heartbeat(st.heartbeat_s);
      ahead.clear();
    }
    toolsOff(st);
    notes(st);
    rebase();
    sources();
    captions();
    timeline();
    showFrame(frame, {force: true});
  }

  function notice(text) {
    const n = $("ssu-notice");
    n.textContent = text;
    n.hidden = !text;
  }

  function notes(st) {
    const box = $("ssu-notes");
    box.innerHTML = "";
    if (st.note) {
      // a note left with a decision is in the history; any other (ssu-synth's, ssu-annotate's) tells where the
      // draft came from: provenance, not a request to the person
      const review = st.notes.some((n) => n.note === st.note);
      const d = document.createElement("div");
      d.className = review ? "open-note" : "provenance";
      d.textContent = (review ? "open note: " : "draft made by: ") + st.note;
      box.append(d);
    }
    for (const n of st.notes) {
      const d = document.createElement("div");
      d.className = "note";
      d.textContent = `${n.ts} ${n.actor} → ${n.status}: ${n.note}`;
      box.append(d);
    }
    if (!st.notes.length) box.append("no review notes yet");
  }

  // Tools whose model the server has not loaded are disabled, with the reason as their tooltip.
  const NEEDS = {"point+": "sam", "point-": "sam", box: "sam"};
  function toolsOff(st) {
    const off = st.tools_off || {};
    document.querySelectorAll("#ssu-tools button").forEach((b) => {
      const why = off[NEEDS[b.dataset.tool]] || "";
      b.disabled = Boolean(why);
      b.title = why;
    });
    for (const [id, k] of [["ssu-propagate", "sam2"], ["ssu-regen", "vlm"]]) {
      $(id).disabled = Boolean(off[k]);
      $(id).title = off[k] || "";
    }
    if (off[NEEDS[tool]]) setTool("brush");
  }

  function srcOf(id) { return S.sources.find((s) => s.id === id) || null; }

  function captionAt(src, f) {
    const c = src.captions.find((c) => c.start <= f && f < c.end);
    return c ? c.text : "";
  }

  function sources() {
    const list = $("ssu-sources");
    list.innerHTML = "";
    S.sources.forEach((s, i) => {
      const b = document.createElement("button");
      b.className = "src" + (s.id === source ? " selected" : "");
      b.dataset.id = String(s.id);
      b.innerHTML = `<span class="swatch" style="background:${s.colour}"></span>`;
      const label = document.createElement("span");
      label.textContent = `${i + 1}. #${s.id} ${s.name || s.category} (${s.category})`;
      const cap = document.createElement("span");
      cap.className = "cap";
      cap.textContent = captionAt(s, frame) || "silent / no caption";
      b.append(label, cap);
      b.onclick = () => select(s.id);
      list.append(b);
    });
    if (!S.sources.length) list.textContent = "no sources yet: add one below";
  }

  function select(id) {
    if (!srcOf(id)) return;
    source = id;
    sources();
    captions();
    drawMasks();
  }

  // ---------------------------------------------------------------- captions: one model (saved spans + draft)
  // The panel shows the selected source's draft when it has one, else its saved spans. A draft is kept in
  // localStorage as {base, rows} (see captions.js), so a reload, a crash or a server restart keeps it; every new
  // state from the server is merged into it (rebase), so a split, regenerate or undo neither loses typed text nor
  // is undone by the next Save. Conflicts (both sides changed the same frames) are asked about.
  const C = window.ssuCaptions;
  const draftKey = (id) => `ssu-draft:${CLIP}:${id}`;
  const savedSpans = (src) => C.norm(src.captions);
  let panelSource = null;  // the source whose rows the panel shows

  function loadDraft(id) {
    let d = null;
    try { d = JSON.parse(localStorage.getItem(draftKey(id)) || "null"); } catch (e) { d = null; }
    const src = S && srcOf(id);
    if (Array.isArray(d) && src) d = {base: savedSpans(src), rows: d};  // a draft from before drafts had a base
    return d && Array.isArray(d.rows) && Array.isArray(d.base) ? d : null;
  }

  function storeDraft(id, d) {
    const src = srcOf(id);
    if (!src || C.same(d.rows, savedSpans(src))) localStorage.removeItem(draftKey(id));
    else localStorage.setItem(draftKey(id), JSON.stringify(d));
  }

  const draftIds = () => (S ? S.sources.filter((s) => loadDraft(s.id)).map((s) => s.id) : []);
  const said = (t) => (t === null ? "(no caption)" : `"${t}"`);

  function rebase() {
    for (const src of S.sources) {
      const d = loadDraft(src.id);
      if (!d) continue;
      const theirs = savedSpans(src);
      if (C.same(d.base, theirs)) { storeDraft(src.id, d); continue; }
      const m = C.merge3(d.base, d.rows, theirs, S.num_frames);
      let rows = m.rows;
      if (m.conflicts.length) {
        const what = m.conflicts.slice(0, 6).map((c) => `frames ${c.start}–${c.end}: yours ${said(c.mine)}, saved ` +
                                                  said(c.theirs)).join("\n");
        const mine = confirm(`The saved captions of source #${src.id} changed where your unsaved draft changed ` +
                             `them too:\n${what}\n\nOK: keep your text there (then Save captions). Cancel: take the ` +
                             "saved text there (the rest of your draft is kept).");
        rows = mine ? m.keepMine() : m.keepTheirs();
      }
      storeDraft(src.id, {base: theirs, rows});
    }
  }

  function captions() {
    const box = $("ssu-spans");
    const src = srcOf(source);
    if (!src) { box.innerHTML = ""; box.textContent = "select a source"; panelSource = null; draftNote(); return; }
    const d = loadDraft(source);
    const rows = d ? d.rows : savedSpans(src);
    // unchanged rows are not drawn again: a state arriving while someone types must not move their cursor
    if (panelSource !== source || JSON.stringify(rows) !== JSON.stringify(spanRows())) {
      box.innerHTML = "";
      rows.forEach((r, i) => box.append(spanRow(r, i)));
      panelSource = source;
    }
    draftNote();
    markSpan();
  }

  function draftNote() {
    const ids = draftIds();
    $("ssu-draft").textContent = ids.length ? "unsaved caption draft (kept in this browser) of source " +
      ids.map((i) => "#" + i).join(", ") + ": Save captions to keep it" : "";
    $("ssu-draft").dataset.n = String(ids.length);
  }

  function spanRow(r, i) {
    const row = document.createElement("div");
    row.className = "span";
    row.dataset.index = String(i);
    row.innerHTML = `<input type="number" class="s" min="0" max="299"><input type="number" class="e" min="1"
      max="300"><textarea rows="2"></textarea><button class="go" title="jump to the span">⤴</button>`;
    row.querySelector(".s").value = r.start;
    row.querySelector(".e").value = r.end;
    row.querySelector("textarea").value = r.text;
    row.querySelector(".go").onclick = () => setFrame(Number(row.querySelector(".s").value));
    row.addEventListener("input", saveDraft);
    return row;
  }

  function spanRows() {
    return [...document.querySelectorAll("#ssu-spans .span")].map((row) => ({
      start: Number(row.querySelector(".s").value), end: Number(row.querySelector(".e").value),
      text: row.querySelector("textarea").value}));
  }

  function saveDraft() {
    const src = srcOf(source);
    if (!src || panelSource !== source) return;
    const d = loadDraft(source);
    storeDraft(source, {base: d ? d.base : savedSpans(src), rows: spanRows()});
    draftNote();
  }

  // A save of one source's draft, built when it is sent; once saved, what was sent is the draft's new base, so
  // text typed while the save was on its way stays a draft.
  function saveItem(id, chain) {
    return {
      kind: "spans", chain, none: `captions of source #${id}: nothing to save`,
      build: () => { const d = loadDraft(id); return d ? {frame, source_id: id, spans: d.rows} : null; },
      ok: (body) => {
        const d = loadDraft(id);
        if (d) storeDraft(id, {base: C.norm(body.spans.map((r) => ({...r, text: r.text.trim()}))), rows: d.rows});
      },
    };
  }

  function saveSpans() {
    if (S.read_only) { message("⚠️ refused: this clip is read-only here", "error"); return; }
    saveDraft();
    queue.push(saveItem(source));
    pending();
    pump();
  }

  function spanHere() {
    if (S.read_only) { message("⚠️ refused: this clip is read-only here", "error"); return; }
    if (!srcOf(source) || panelSource !== source) { message("⚠️ add or select a source first", "error"); return; }
    const out = C.spanHere(spanRows(), frame, S.num_frames, S.fps);
    if (out.error) { message("⚠️ " + out.error, "error"); return; }
    const box = $("ssu-spans");
    box.innerHTML = "";
    out.rows.forEach((r, i) => box.append(spanRow(r, i)));
    saveDraft();
    markSpan();
    const area = box.querySelectorAll("textarea")[out.index];
    area.focus();
    area.select();
  }

  function markSpan() {
    const src = srcOf(source);
    document.querySelectorAll("#ssu-spans .span").forEach((row) => {
      const s = Number(row.querySelector(".s").value), e = Number(row.querySelector(".e").value);
      row.classList.toggle("current", s <= frame && frame < e);
    });
    if (src) document.querySelectorAll("#ssu-sources .src .cap").forEach((c, i) => {
      c.textContent = captionAt(S.sources[i], frame) || "silent / no caption";
    });
  }

  // ---------------------------------------------------------------- masks
  function decodeRle(counts) {
    let m = rleCache.get(counts);
    if (m) return m;
    const n = S.size, cnts = [];
    let p = 0;
    while (p < counts.length) {
      let x = 0, k = 0, more = 1;
      while (more) {
        const c = counts.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20;
        p++; k++;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (cnts.length > 2) x += cnts[cnts.length - 2];
      cnts.push(x);
    }
    m = new Uint8Array(n * n);
    let idx = 0, v = 0;
    for (const c of cnts) {
      if (v) for (let i = idx; i < idx + c; i++) m[(i % n) * n + ((i / n) | 0)] = 1;  // column-major runs
      idx += c;
      v ^= 1;
    }
    if (rleCache.size > 3000) rleCache.clear();
    rleCache.set(counts, m);
    return m;
  }

  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

  function drawMasks(f) {
    if (!S) return;
    f = f === undefined ? frame : f;
    const cv = $("ssu-masks"), ctx = cv.getContext("2d"), n = S.size;
    const img = ctx.createImageData(n, n), d = img.data;
    if (!hidden) {
      for (const s of S.sources) {
        const counts = s.masks[f];
        if (!counts) continue;
        const m = decodeRle(counts), [r, g, b] = rgb(s.colour), sel = s.id === source;
        const a = Math.round(255 * Math.min(1, opacity + (sel ? 0.1 : 0)));
        for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
          const i = y * n + x;
          if (!m[i]) continue;
          const edge = x === 0 || y === 0 || x === n - 1 || y === n - 1 || !m[i - 1] || !m[i + 1] || !m[i - n] ||
            !m[i + n] || (sel && (!m[i - 2] || !m[i + 2] || !m[i - 2 * n] || !m[i + 2 * n]));
          // inside, only every fourth diagonal is tinted: the object keeps its own colour between the lines
          // (a red tint over a blue star no longer reads as a purple star)
          if (!edge && (outline || (x + y) % 4 !== 0)) continue;
          const o = i * 4;
          d[o] = r; d[o + 1] = g; d[o + 2] = b; d[o + 3] = edge ? 255 : a;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    drawPrompts();
  }

  function drawPrompts() {
    if (!S) return;
    const cv = $("ssu-draw"), ctx = cv.getContext("2d");
    ctx.clearRect(0, 0, cv.width, cv.height);
    const src = srcOf(source), col = src ? src.colour : "#ffffff";
    if (prompts.key === promptKey()) {
      for (const [x, y, lab] of prompts.points) {
        ctx.beginPath(); ctx.arc(x, y, 6, 0, 7);
        ctx.fillStyle = lab ? "#00dc00" : "#e60000"; ctx.fill();
        ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
      }
      if (prompts.box) {
        const [x0, y0, x1, y1] = prompts.box;
        ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      }
    }
    if (stroke && stroke.pts.length) {
      ctx.strokeStyle = ctx.fillStyle = stroke.erase ? "rgba(0,0,0,0.6)" : col;
      ctx.lineWidth = 2 * radius; ctx.lineCap = ctx.lineJoin = "round";
      ctx.beginPath(); ctx.moveTo(...stroke.pts[0]);
      for (const p of stroke.pts) ctx.lineTo(...p);
      if (stroke.pts.length === 1) { ctx.arc(stroke.pts[0][0], stroke.pts[0][1], radius, 0, 7); ctx.fill(); }
      else ctx.stroke();
    }
    if (stroke && stroke.box) {
      const [x0, y0, x1, y1] = stroke.box;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0); ctx.setLineDash([]);
    }
    if (poly.length) {
      ctx.strokeStyle = col; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(...poly[0]);
      for (const p of poly) ctx.lineTo(...p);
      ctx.stroke();
      for (const [x, y] of poly) { ctx.fillStyle = col; ctx.fillRect(x - 3, y - 3, 6, 6); }
    }
  }

  // ---------------------------------------------------------------- frames (newest request wins)
  const frameUrl = (f) => `/ssu/api/frame/${encodeURIComponent(S.clip_id)}/${f}.jpg?v=${S.media_version}`;

  let travel = 0;  // +1 / -1 while stepping; 0 after a jump (lookahead.js)
  const ahead = window.ssuLookahead(frameUrl, () => S.num_frames, () => S.fps, LOOKAHEAD);

  function setFrame(f, opts) {
    if (!S) return;
    f = Math.max(0, Math.min(S.num_frames - 1, Math.round(Number(f) || 0)));
    const d = f - frame;
    if (d) travel = Math.abs(d) <= 10 ? Math.sign(d) : 0;
    frame = f;
    showFrame(f, opts || {});
  }

  let seekTimer = 0, ownSeek = -1;  // ownSeek: the frame the page itself sent the video to
  function showFrame(f, opts) {
    const t0 = performance.now();  // from the key (or click) to the picture on screen, masks included
    // the picture is asked for first, so that its request runs while the masks are drawn
    if (!playing() && (shown !== f || opts.force)) picture(f, t0);
    $("ssu-frame-no").value = String(f);
    document.body.dataset.frame = String(f);
    drawMasks(f);
    markSpan();
    drawCursor();
    conf.readout(f);
    // the video follows once the stepping pauses: each seek makes the browser decode from a keyframe, which
    // on every step would compete with the steps themselves
    const v = $("ssu-video");
    if (opts.fromVideo || !v.paused) return;
    clearTimeout(seekTimer);
    seekTimer = setTimeout(() => {
      if (!v.paused || v.readyState === 0) return;
      ownSeek = frame;
      v.currentTime = (frame + 0.5) / S.fps;
    }, 150);
  }

  function picture(f, t0) {
    const token = ++want;
    const im = new Image();
    im.onload = () => {
      if (token !== want) return;  // a newer frame was asked for meanwhile: this one is stale
      $("ssu-picture").getContext("2d").drawImage(im, 0, 0);
      timings.frame.push(performance.now() - t0);
      shown = f;
      document.body.dataset.shown = String(f);
      ahead.prefetch(f, travel);
    };
    im.onerror = () => { if (token === want) refresh(); };  // 401 shows the login; other errors: next request
    im.src = frameUrl(f);
  }

  // ---------------------------------------------------------------- playback with masks
  const playing = () => !$("ssu-video").paused;

  function togglePlay() {
    const v = $("ssu-video");
    if (!v.paused) { v.pause(); return; }
    v.currentTime = (frame + 0.5) / S.fps;
    v.play().catch((e) => {  // a browser that allows no sound before a click on the page: play muted, say so
      if (e.name !== "NotAllowedError" || v.muted) return;
      v.muted = true;
      soundLabel();
      v.play().catch(() => {});
      message("the browser blocked sound on this page: playing muted (m turns sound on)", "error");
    });
  }

  // Sound is on by default (which object sounds is the point of the tool); m or the button mutes.
  function toggleMute() {
    const v = $("ssu-video");
    v.muted = !v.muted;
    soundLabel();
  }

  function soundLabel() {
    const v = $("ssu-video");
    $("ssu-mute").textContent = v.muted ? "♪ sound off (m)" : "♪ sound on (m)";
    document.body.dataset.muted = String(v.muted);
  }

  // Each decoded video frame is drawn with the masks of exactly that frame (requestVideoFrameCallback gives
  // the frame's media time; without it, the animation frame's currentTime is close enough).
  const rvfc = "requestVideoFrameCallback" in HTMLVideoElement.prototype;
  function nextTick() {
    const v = $("ssu-video");
    if (rvfc) v.requestVideoFrameCallback((now, meta) => playLoop(meta.mediaTime));
    else requestAnimationFrame(() => playLoop(v.currentTime));
  }

  function playLoop(t) {
    const v = $("ssu-video");
    if (v.paused) return;
    const f = Math.max(0, Math.min(S.num_frames - 1, Math.round(t * S.fps - (rvfc ? 0 : 0.5))));
    $("ssu-picture").getContext("2d").drawImage(v, 0, 0, S.size, S.size);
    shown = f;
    document.body.dataset.shown = String(f);
    if (f !== frame) { frame = f; showFrame(f, {fromVideo: true}); }
    nextTick();
  }

  // ---------------------------------------------------------------- timeline
  function timeline() {
    const cv = $("ssu-timeline"), n = S.num_frames;
    const rows = S.sources.length, rh = 22 + conf.rowExtra();  // rh: a source's row, taller with a confidence strip
    cv.width = cv.clientWidth || 800;
    cv.height = 18 + rows * rh + 34;
    const ctx = cv.getContext("2d"), w = cv.width, fx = (f) => (f / n) * w;
    ctx.fillStyle = "#1b1b1f"; ctx.fillRect(0, 0, w, cv.height);
    ctx.fillStyle = "#aaa"; ctx.font = "10px sans-serif";
    for (let s = 0; s * S.fps < n; s++) { ctx.fillRect(fx(s * S.fps), 0, 1, 6); ctx.fillText(`${s}s`, fx(s * S.fps) + 2, 14); }
    S.sources.forEach((s, i) => {
      const y = 18 + i * rh;
      ctx.fillStyle = "#2a2a30"; ctx.fillRect(0, y, w, 20);
      ctx.fillStyle = s.colour;
      for (let f = 0; f < n; f++) if (s.masks[f]) ctx.fillRect(fx(f), y, Math.ceil(w / n), 12);  // mask present
      ctx.strokeStyle = s.colour;
      for (const c of s.captions) {  // caption spans = where it sounds
        ctx.strokeRect(fx(c.start) + 0.5, y + 13.5, fx(c.end) - fx(c.start) - 1, 5);
      }
      conf.draw(ctx, s, y + 21, w, n, fx);
      if (s.id === source) { ctx.fillStyle = "#fff"; ctx.fillRect(0, y, 3, 20); }
    });
    const y0 = 18 + rows * rh, h = 30;
    ctx.fillStyle = "#7fb3ff";
    S.loudness.forEach((v, f) => { const hh = Math.max(1, v * h); ctx.fillRect(fx(f), y0 + (h - hh) / 2 + 2, Math.ceil(w / n), hh); });
    drawCursor();
  }

  function drawCursor() {
    const cv = $("ssu-cursor"), tl = $("ssu-timeline");
    cv.width = tl.width; cv.height = tl.height;
    const ctx = cv.getContext("2d"), x = ((frame + 0.5) / S.num_frames) * cv.width;
    ctx.clearRect(0, 0, cv.width, cv.height);
    ctx.fillStyle = "#ff3b30"; ctx.fillRect(x - 1, 0, 2, cv.height);
  }

  function timelineJump(ev) {
    const r = $("ssu-cursor").getBoundingClientRect();
    setFrame(Math.floor(((ev.clientX - r.left) / r.width) * S.num_frames));
  }

  // ---------------------------------------------------------------- the stage: tools, zoom, pan
  function place() {
    $("ssu-world").style.transform = `translate(${tx}px, ${ty}px) scale(${fit * zoom})`;
    $("ssu-zoom").textContent = `${Math.round(zoom * 100)}%`;
  }

  function toImage(ev) {
    const r = $("ssu-stage").getBoundingClientRect(), s = fit * zoom;
    return [(ev.clientX - r.left - tx) / s, (ev.clientY - r.top - ty) / s];
  }

  const inside = ([x, y]) => x >= 0 && y >= 0 && x < S.size && y < S.size;
  const clamp = ([x, y]) => [Math.max(0, Math.min(S.size - 0.01, x)), Math.max(0, Math.min(S.size - 0.01, y))];
  const promptKey = () => `${frame}:${source}`;

  function setZoom(z, cx, cy) {
    const r = $("ssu-stage").getBoundingClientRect();
    cx = cx === undefined ? r.width / 2 : cx; cy = cy === undefined ? r.height / 2 : cy;
    const old = fit * zoom;
    zoom = Math.max(1, Math.min(8, z));
    const s = fit * zoom;
    tx = cx - ((cx - tx) * s) / old; ty = cy - ((cy - ty) * s) / old;
    if (zoom === 1) { tx = 0; ty = 0; }
    place();
  }

  function down(ev) {
    if (!S || ev.button === 2) return;
    const p = toImage(ev);
    const pan = ev.button === 1 || tool === "pan";
    if (pan) { stroke = {pan: true, x: ev.clientX, y: ev.clientY, tx, ty}; }
    else if (!inside(p)) return;
    else if (S.read_only) { message("⚠️ refused: this clip is read-only here", "error"); return; }
    else if (source === null) { message("⚠️ add a source first", "error"); return; }
    else if (tool === "brush" || tool === "eraser") stroke = {pts: [p], erase: tool === "eraser"};
    else if (tool === "box") stroke = {box: [...p, ...p]};
    else if (tool === "polygon") {
      if (poly.length >= 3 && Math.hypot(p[0] - poly[0][0], p[1] - poly[0][1]) < 8 / (fit * zoom)) closePoly();
      else { poly.push(p); drawPrompts(); }
      return;
    } else if (tool === "point+" || tool === "point-") {
      if (prompts.key !== promptKey()) prompts = {key: promptKey(), points: [], box: null};
      const pt = [p[0], p[1], tool === "point+" ? 1 : 0], mine = prompts;
      mine.points.push(pt);
      drawPrompts();
      enqueue("sam", {points: mine.points.slice(), box: mine.box},
              {failed: () => { mine.points = mine.points.filter((q) => q !== pt); drawPrompts(); }});
      return;
    } else return;
    $("ssu-stage").setPointerCapture(ev.pointerId);
    ev.preventDefault();
  }

  function move(ev) {
    if (!stroke) return;
    if (stroke.pan) { tx = stroke.tx + ev.clientX - stroke.x; ty = stroke.ty + ev.clientY - stroke.y; place(); return; }
    const p = clamp(toImage(ev));
    if (stroke.pts) {
      const last = stroke.pts[stroke.pts.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 1) stroke.pts.push(p);
    } else if (stroke.box) { stroke.box[2] = p[0]; stroke.box[3] = p[1]; }
    drawPrompts();
  }

  function up() {
    const st = stroke;
    stroke = null;
    if (!st || st.pan) return;
    if (st.pts) {
      const pts = st.pts.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
      enqueue("stroke", {points: pts, radius, erase: st.erase});
    } else if (st.box) {
      const [x0, y0, x1, y1] = st.box;
      if (prompts.key !== promptKey()) prompts = {key: promptKey(), points: [], box: null};
      const mine = prompts, old = mine.box, bx = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      mine.box = bx;
      drawPrompts();
      enqueue("sam", {points: mine.points.slice(), box: bx},
              {failed: () => { if (mine.box === bx) mine.box = old; drawPrompts(); }});
      return;
    }
    drawPrompts();
  }

  function closePoly() {
    if (poly.length >= 3) enqueue("polygon", {points: poly.map(clamp), erase: false});
    poly = [];
    drawPrompts();
  }

  function pickTool(t) {  // a key or a click: a tool whose model is not loaded says why and is not taken
    const why = S && (S.tools_off || {})[NEEDS[t]];
    if (why) { message("⚠️ " + why, "error"); return; }
    setTool(t);
  }

  function setTool(t) {
    tool = t;
    poly = [];
    document.querySelectorAll("#ssu-tools button").forEach((b) => b.classList.toggle("on", b.dataset.tool === t));
    $("ssu-stage").dataset.tool = t;
    drawPrompts();
  }

  // ---------------------------------------------------------------- heartbeat, shortcuts
  let beat = null;
  function heartbeat(seconds) {
    clearInterval(beat);
    beat = setInterval(async () => {
      if (loggedOut) return;
      const r = await api("/ssu/api/heartbeat", {});
      if (r.status === 200 && (r.data.notice || r.data.read_only !== S.read_only)) {
        if (r.data.notice) notice(r.data.notice);
        refresh();
      }
    }, Math.max(0.5, seconds) * 1000);
  }

  function shortcuts(map) {
    const t = $("ssu-keys");
    t.innerHTML = "";
    for (const [k, v] of Object.entries(map)) {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td><kbd></kbd></td><td></td>";
      tr.querySelector("kbd").textContent = k;
      tr.lastChild.textContent = v;
      t.append(tr);
    }
  }

  // A decision first saves every source's unsaved caption draft (in order, before it); a draft the server would
  // refuse stops the decision here with the reason, and a save the server refuses drops the decision (chain).
  function unsavable(what) {
    for (const id of draftIds()) {
      const why = C.problem(loadDraft(id).rows, S.num_frames);
      if (why) return `⚠️ ${what} refused: the unsaved captions of source #${id} cannot be saved (${why}); ` +
                      "fix them (or Save captions to see the reason), then try again";
    }
    return "";
  }

  function decide(decision, what) {
    if (S.read_only) { message("⚠️ refused: this clip is read-only here", "error"); return; }
    const why = unsavable(what);
    if (why) { message(why, "error"); return; }
    const chain = {what};
    for (const id of draftIds()) queue.push(saveItem(id, chain));
    enqueue("decide", {decision, note: $("ssu-note").value}, {chain});
  }

  function accept() {
    if ($("ssu-accept").disabled) { message("⚠️ accept is not available here", "error"); return; }
    const what = $("ssu-accept").textContent.replace(/ \(.*/, "");
    const why = unsavable(what.toLowerCase());
    if (why) { message(why, "error"); return; }
    const ids = draftIds();
    const first = ids.length ? ` Your unsaved captions (source ${ids.map((i) => "#" + i).join(", ")}) are saved first;` +
      " then it leaves your hands." : " It is saved and leaves your hands.";
    if (!confirm(`${what}: ${S.clip_id}?${first}`)) { message("not accepted"); return; }
    decide("accept", what.toLowerCase());
  }

  function key(ev) {
    const t = ev.target;
    const typing = t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) &&
      !["range", "checkbox", "radio", "button"].includes(t.type);
    if (!$("ssu-login").hidden || !S) return;
    if (typing) {
      if (ev.key === "Enter" && t.id === "ssu-frame-no") { setFrame(t.value); t.blur(); ev.preventDefault(); }
      if (ev.key === "s" && (ev.ctrlKey || ev.metaKey) && t.closest("#ssu-spans")) { saveSpans(); ev.preventDefault(); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    let done = true;
    const step = (d) => setFrame(frame + d);  // every press and every repeat of a held key counts
    if (k === "d" || k === "ArrowRight") step(1);
    else if (k === "a" || k === "ArrowLeft") step(-1);
    else if (k === "D") step(10);
    else if (k === "A" && ev.shiftKey) accept();
    else if (k === "u" || k === "U") conf.jump(k === "U" ? -1 : 1);
    else if (k === "z") enqueue("undo", {});
    else if (k === "y") enqueue("redo", {});
    else if (k === " ") togglePlay();
    else if (k === "m") toggleMute();
    else if (k === "o") { outline = !outline; $("ssu-outline").checked = outline; drawMasks(); }
    else if (k === "h") { hidden = !hidden; $("ssu-hide").checked = hidden; drawMasks(); }
    else if (k === "[") { radius = Math.max(1, radius - 2); $("ssu-radius").value = radius; }
    else if (k === "]") { radius = Math.min(128, radius + 2); $("ssu-radius").value = radius; }
    else if (k === "+" || k === "=") setZoom(zoom * 1.25);
    else if (k === "-") setZoom(zoom / 1.25);
    else if (k === "0") setZoom(1);
    else if (k === "Enter" && poly.length) closePoly();
    else if (k === "Escape") { poly = []; prompts = {key: "", points: [], box: null}; drawPrompts(); }
    else if (k === "c") { prompts = {key: "", points: [], box: null}; drawPrompts(); }
    else if (/^[1-9]$/.test(k) && S.sources[Number(k) - 1]) select(S.sources[Number(k) - 1].id);
    else if (TOOLS[k]) pickTool(TOOLS[k]);
    else done = false;
    if (done) ev.preventDefault();
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    const stage = $("ssu-stage");
    fit = stage.clientWidth / 512;
    place();
    stage.addEventListener("pointerdown", down);
    stage.addEventListener("pointermove", move);
    stage.addEventListener("pointerup", up);
    stage.addEventListener("pointercancel", up);
    stage.addEventListener("dblclick", () => { if (tool === "polygon") closePoly(); });
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = stage.getBoundingClientRect();
      setZoom(zoom * (ev.deltaY < 0 ? 1.2 : 1 / 1.2), ev.clientX - r.left, ev.clientY - r.top);
    }, {passive: false});
    document.addEventListener("keydown", key);
    document.querySelectorAll("#ssu-tools button").forEach((b) => { b.onclick = () => pickTool(b.dataset.tool); });
    $("ssu-prev").onclick = () => setFrame(frame - 1);
    $("ssu-next").onclick = () => setFrame(frame + 1);
    $("ssu-frame-no").addEventListener("change", (e) => setFrame(e.target.value));
    $("ssu-play").onclick = togglePlay;
    $("ssu-radius").oninput = (e) => { radius = Number(e.target.value); };
    $("ssu-opacity").oninput = (e) => { opacity = Number(e.target.value) / 100; drawMasks(); };
    $("ssu-outline").onchange = (e) => { outline = e.target.checked; drawMasks(); };
    $("ssu-hide").onchange = (e) => { hidden = e.target.checked; drawMasks(); };
    $("ssu-fit").onclick = () => setZoom(1);
    const tl = $("ssu-cursor");
    let dragging = false;
    tl.addEventListener("pointerdown", (e) => { dragging = true; tl.setPointerCapture(e.pointerId); timelineJump(e); });
    tl.addEventListener("pointermove", (e) => { if (dragging) timelineJump(e); });
    tl.addEventListener("pointerup", () => { dragging = false; });
    const v = $("ssu-video");
    v.addEventListener("seeked", () => {  // a seek in the video's own controls moves the frame; the page's own do not
      if (!v.paused) return;
      const f = Math.min(S.num_frames - 1, Math.floor(v.currentTime * S.fps)), own = f === ownSeek;
      ownSeek = -1;
      if (!own && f !== frame) { frame = f; travel = 0; showFrame(frame, {fromVideo: true}); }
    });
    v.addEventListener("play", nextTick);
    v.addEventListener("pause", () => { $("ssu-play").textContent = "▶ play with masks"; showFrame(frame, {force: true, fromVideo: true}); });
    v.addEventListener("playing", () => { $("ssu-play").textContent = "❚❚ pause"; });
    $("ssu-save-spans").onclick = saveSpans;
    $("ssu-add-span").onclick = spanHere;
    $("ssu-split").onclick = () => enqueue("split", {});
    $("ssu-regen").onclick = () => enqueue("regenerate", {index: Number($("ssu-span-idx").value || 0)});
    $("ssu-propagate").onclick = () => enqueue("propagate", {direction: $("ssu-direction").value,
      start: Number($("ssu-p-start").value), end: Number($("ssu-p-end").value)});
    $("ssu-add-source").onclick = () => enqueue("add_source", {category: $("ssu-cat").value, name: $("ssu-name").value});
    $("ssu-set-cat").onclick = () => enqueue("set_category", {category: $("ssu-cat").value, name: $("ssu-name").value});
    $("ssu-remove-source").onclick = () => { if (confirm("Remove this source and all its masks and captions?")) enqueue("remove_source", {}); };
    $("ssu-undo").onclick = () => enqueue("undo", {});
    $("ssu-redo").onclick = () => enqueue("redo", {});
    $("ssu-accept").onclick = accept;
    $("ssu-reject").onclick = () => decide("reject", "reject");
    $("ssu-send-back").onclick = () => decide("send_back", "send back");
    $("ssu-mute").onclick = toggleMute;
    $("ssu-login-form").addEventListener("submit", login);
    window.addEventListener("pagehide", () => post("/ssu/api/close", {}, true).catch(() => {}));
    window.addEventListener("resize", () => { if (S) timeline(); });
    setTool("brush");
    v.muted = false;
    soundLabel();
  }

  // ---------------------------------------------------------------- confidence: review where the drafter is unsure
  // A drafter's per-frame confidence (sources[].scores, null where none; annotator/refine/confidence.py) shows as a
  // strip under each source's timeline row: red under the threshold, yellow to green above it. The selected
  // source's score at the frame shows above the timeline; u / Shift+U jump to the next / previous stretch
  // of frames where some source scores under the threshold and select that source. Hooks: timeline() (row
  // height, strip), showFrame() (readout), key() (u / U). A frame someone redrew has no score any more.
  const conf = (() => {
    const STRIP = 6, input = $("ssu-unsure");
    input.value = localStorage.getItem("ssu-unsure") || "";
    const scored = () => !!S && S.sources.some((s) => s.scores);
    const threshold = () => {
      const v = Number(input.value);
      return input.value !== "" && v >= 0 && v <= 1 ? v : S.unsure_below;
    };
    const colour = (v, t) => v < t ? "#ff3b30"
      : `hsl(${Math.round(50 + 70 * Math.min(1, (v - t) / Math.max(1e-6, 1 - t)))}, 85%, 45%)`;
    function rowExtra() { return scored() ? STRIP + 2 : 0; }
    function draw(ctx, s, y, w, n, fx) {
      if (!s.scores) return;
      const t = threshold();
      for (let f = 0; f < n; f++) {
        const v = s.scores[f];
        if (v === null || v === undefined) continue;
        ctx.fillStyle = colour(v, t);
        ctx.fillRect(fx(f), y, Math.ceil(w / n), STRIP);
      }
    }
    function worst(f) {  // the source scoring lowest in frame f: {id, v}, or null where none has a score
      let best = null;
      for (const s of S.sources) {
        const v = s.scores ? s.scores[f] : null;
        if (v !== null && v !== undefined && (!best || v < best.v)) best = {id: s.id, v};
      }
      return best;
    }
    const unsure = (f, t) => { const b = worst(f); return !!b && b.v < t; };
    function jump(dir) {
      if (!scored()) { message("no confidence in this clip: no drafter scored it"); return; }
      const n = S.num_frames, t = threshold();
      let f = frame;
      while (f >= 0 && f < n && unsure(f, t)) f += dir;  // leave the stretch we are in
      while (f >= 0 && f < n && !unsure(f, t)) f += dir;
      if (f < 0 || f >= n) {
        message(`no frame under ${t} ${dir > 0 ? "after" : "before"} frame ${frame}`);
        return;
      }
      while (dir < 0 && f > 0 && unsure(f - 1, t)) f--;  // backwards, too, land on the stretch's first frame
      const w = worst(f);
      select(w.id);
      timeline();
      setFrame(f);
      message(`frame ${f}: source #${w.id} scores ${w.v.toFixed(2)}, under ${t}`);
    }
    function readout(f) {
      document.body.classList.toggle("scored", scored());
      if (S) input.placeholder = String(S.unsure_below);
      const src = S && srcOf(source), v = src && src.scores ? src.scores[f] : null;
      const has = v !== null && v !== undefined;
      $("ssu-conf").textContent = has ? `#${src.id} confidence ${v.toFixed(2)}` : "no confidence here";
      $("ssu-conf").classList.toggle("unsure", has && v < threshold());
      document.body.dataset.confidence = has ? String(v) : "";
    }
    input.addEventListener("input", () => {
      localStorage.setItem("ssu-unsure", input.value);
      if (S) { timeline(); readout(frame); }
    });
    return {rowExtra, draw, jump, readout, strip: (i) => ({y: 18 + i * (22 + rowExtra()) + 21, h: STRIP})};
  })();

  window.ssuEditor = {setFrame, state: () => S, frame: () => frame, queue: () => queue.length + (busy ? 1 : 0),
                      timings, confidenceStrip: conf.strip, prompts: () => prompts, tool: () => tool};
  wire();
  openClip();
})();
