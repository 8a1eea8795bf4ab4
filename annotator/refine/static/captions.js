// ssu-refine's caption model (no DOM): the pure functions editor.js uses to keep a person's unsaved caption
// draft and the server's saved spans together.
//
// A draft is {base, rows}: the saved spans it was made against and what the panel shows. When the saved spans
// change under it (split, regenerate, undo, another tab), the draft is merged three ways frame by frame: each
// frame's text and whether a span starts there are taken from whichever side changed them; frames whose text
// both sides changed differently are conflicts, which the page asks about. So neither side is dropped silently,
// and Save sends the saved spans plus only what the person changed.
"use strict";
window.ssuCaptions = (() => {
  const norm = (spans) => spans.map((s) => ({start: Number(s.start), end: Number(s.end), text: String(s.text)}))
    .sort((a, b) => a.start - b.start || a.end - b.end);

  const same = (a, b) => JSON.stringify(norm(a)) === JSON.stringify(norm(b));

  // Why the server would refuse these rows (tools.set_spans), or "" when they would be saved.
  function problem(rows, n) {
    const r = norm(rows);
    for (let i = 0; i < r.length; i++) {
      const s = r[i];
      if (!Number.isInteger(s.start) || !Number.isInteger(s.end) || !(0 <= s.start && s.start < s.end && s.end <= n))
        return `caption ${s.start}..${s.end}: need 0 <= start < end <= ${n}`;
      if (!s.text.trim()) return `caption ${s.start}..${s.end}: the text is empty; write a caption or delete the row`;
      if (i && s.start < r[i - 1].end) return `captions ${r[i - 1].start}..${r[i - 1].end} and ${s.start}..${s.end} overlap`;
    }
    return "";
  }

  // Per frame: the caption text (null = no caption) and whether a span starts there. null if the spans overlap
  // or leave the clip (a draft being typed): such a draft is not merged frame by frame.
  function perFrame(spans, n) {
    const text = new Array(n).fill(null), cut = new Array(n).fill(false);
    for (const s of norm(spans)) {
      if (!(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start < s.end && s.end <= n))
        return null;
      for (let f = s.start; f < s.end; f++) {
        if (text[f] !== null) return null;
        text[f] = s.text;
      }
      cut[s.start] = true;
    }
    return {text, cut};
  }

  function toSpans({text, cut}) {
    const out = [];
    for (let f = 0; f < text.length; f++) {
      if (text[f] === null) continue;
      const last = out[out.length - 1];
      if (last && last.end === f && !cut[f] && last.text === text[f]) last.end = f + 1;
      else out.push({start: f, end: f + 1, text: text[f]});
    }
    return out;
  }

  // The frames as runs [start, end) of equal texts on both sides.
  function runs(frames, mine, theirs) {
    const out = [];
    for (const f of frames) {
      const last = out[out.length - 1];
      if (last && last.end === f && last.mine === mine[f] && last.theirs === theirs[f]) last.end = f + 1;
      else out.push({start: f, end: f + 1, mine: mine[f], theirs: theirs[f]});
    }
    return out;
  }

  // Three-way merge of the person's rows (made against `base`) with the saved `theirs`.
  // -> {rows, conflicts: [{start, end, mine, theirs}], keepMine(), keepTheirs()}; rows has every
  // conflict resolved the person's way until keepTheirs() is used.
  function merge3(base, mine, theirs, n) {
    if (same(mine, base)) return result(norm(theirs), norm(theirs), []);
    if (same(theirs, base)) return result(norm(mine), norm(theirs), []);
    const B = perFrame(base, n), M = perFrame(mine, n), T = perFrame(theirs, n);
    if (!B || !M || !T) {  // not comparable frame by frame: the whole caption list is one conflict
      return result(norm(mine), norm(theirs), [{start: 0, end: n, mine: "your draft", theirs: "the saved captions"}]);
    }
    const text = new Array(n), cut = new Array(n), clash = [];
    const textT = T.text.slice(), cutT = T.cut.slice();
    for (let f = 0; f < n; f++) {
      const m = M.text[f], t = T.text[f], b = B.text[f];
      if (m === b) text[f] = t;
      else if (t === b || t === m) text[f] = m;
      else { text[f] = m; clash.push(f); }
      cut[f] = M.cut[f] !== B.cut[f] ? M.cut[f] : T.cut[f];
    }
    const mineWins = toSpans({text, cut});
    const conflicts = runs(clash, M.text, T.text);
    // the other answer: the person's changes everywhere but on the conflicting frames, which get the saved text
    for (const f of clash) { text[f] = textT[f]; cut[f] = cutT[f]; }
    return result(mineWins, toSpans({text, cut}), conflicts);
  }

  function result(rows, theirsWins, conflicts) {
    return {rows, conflicts, keepMine: () => rows, keepTheirs: () => theirsWins};
  }

  // "+ span here": inside a span, split it at frame f (the new part starts with the same text, to be edited);
  // outside any span, a new span from f to the next span (at most one second). -> {rows, index} of the new row,
  // or {error}.
  function spanHere(rows, f, n, fps) {
    const r = norm(rows);
    if (r.some((s) => s.start === f)) return {error: `a caption already starts at frame ${f}: edit its text`};
    const i = r.findIndex((s) => s.start < f && f < s.end);
    if (i >= 0) {
      const right = {start: f, end: r[i].end, text: r[i].text};
      r[i] = {...r[i], end: f};
      r.splice(i + 1, 0, right);
      return {rows: r, index: i + 1};
    }
    const next = r.find((s) => s.start > f);
    const end = Math.min(n, f + fps, next ? next.start : n);
    r.push({start: f, end, text: ""});
    const rows2 = norm(r);
    return {rows: rows2, index: rows2.findIndex((s) => s.start === f)};
  }

  return {norm, same, problem, perFrame, toSpans, merge3, spanHere};
})();
