// ssu-refine's frame look-ahead (no DOM): which frame pictures the editor asks for before they are wanted.
//
// While the person steps (a, d, held keys), the next frames in the direction of travel go into the browser's
// cache, and from halfway through a second the first frame of the next second that way is asked for, so the
// server decodes that second before the person gets there (not sooner: a jump typed meanwhile would wait for
// it). Around a typed or clicked target: a few frames both ways and both neighbouring seconds. Second-ahead
// frames may each cost the server a decode, so they are asked for one at a time, newest position first.
"use strict";
window.ssuLookahead = (urlOf, numFrames, fps, on) => {
  const warmed = new Set();  // frame URLs already asked for
  const far = [];
  let farBusy = false;

  function warm(f) {
    if (f < 0 || f >= numFrames()) return;
    const u = urlOf(f);
    if (!warmed.has(u)) { warmed.add(u); new Image().src = u; }
  }

  function next() {
    const g = far.shift();
    if (g === undefined) { farBusy = false; return; }
    const u = urlOf(g);
    if (warmed.has(u)) { next(); return; }
    warmed.add(u);
    farBusy = true;
    const im = new Image();
    im.onload = im.onerror = next;
    im.src = u;
  }

  function warmFar(f) {
    if (f < 0 || f >= numFrames() || warmed.has(urlOf(f))) return;
    far.push(f);
    if (!farBusy) next();
  }

  // f: the frame now on screen; travel: +1 / -1 while stepping, 0 after a jump.
  function prefetch(f, travel) {
    const sec = fps(), c = Math.floor(f / sec);
    far.length = 0;  // only the newest position's look-ahead is still worth asking for
    if (!on) { for (let k = 1; k <= 3; k++) warm(f + k); return; }  // ?lookahead=0: the old 3 frames forward
    if (travel) {
      for (let k = 1; k <= 4; k++) warm(f + travel * k);
      const half = travel > 0 ? f % sec >= sec / 2 : f % sec < sec / 2;
      if (half) warmFar(travel > 0 ? (c + 1) * sec : c * sec - 1);
    } else {
      for (let k = 1; k <= 3; k++) { warm(f + k); warm(f - k); }
      warmFar((c + 1) * sec);
      warmFar(c * sec - 1);
    }
  }

  return {prefetch, clear: () => { warmed.clear(); far.length = 0; }};
};
