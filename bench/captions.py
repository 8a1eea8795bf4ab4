"""Captions of the synthetic grammar (collection.synth.caption) read back into their parts.

A source's caption is "<a|an> <colour> <shape> <position phrase> is <verb>"; a frame's caption joins its
sounding sources' captions with " and " (ssuformer.data.CAPTION_JOINER). `attribute_accuracy` scores
predicted frame captions part by part: per frame, the colours (shapes, positions) named by the prediction
against those of the truth, as multisets; hits / max(#true sources, #predicted sources), so a missing,
extra or wrong source each costs one.
"""

from __future__ import annotations

import re
from collections import Counter

ATTRIBUTES = ("colour", "shape", "position")
_SOURCE = re.compile(r"^(?:a|an) (?P<colour>\S+) (?P<shape>\S+) (?P<position>.+?) is (?P<verb>\S+)$")


def parse_source(text: str) -> dict[str, str]:
    """One source's caption -> colour, shape, position, verb; {} when it does not follow the grammar."""
    m = _SOURCE.match(text.strip())
    return m.groupdict() if m else {}


def render_source(parts: dict[str, str]) -> str:
    """The caption of parts (the verb follows the shape, as the grammar ties them)."""
    from collection.synth import SHAPES, Shape

    verb = SHAPES[Shape(parts["shape"])].verb
    article = "an" if parts["colour"][0] in "aeiou" else "a"
    return f"{article} {parts['colour']} {parts['shape']} {parts['position']} is {verb}"


def parse_frame(text: str | None) -> list[dict[str, str]]:
    """A frame caption -> its sources' parts (parts that do not parse count as a source with no attributes)."""
    if not text:
        return []
    return [parse_source(s) for s in re.split(r" and (?=an? )", text.strip()) if s]


def attribute_accuracy(pairs: list[tuple[str | None, str | None]]) -> dict[str, float]:
    """pairs of (predicted, true) frame captions -> {colour, shape, position}_accuracy over the frames where
    either names a source (and how many source slots that was)."""
    hits = dict.fromkeys(ATTRIBUTES, 0)
    total = 0
    for pred, true in pairs:
        p, t = parse_frame(pred), parse_frame(true)
        n = max(len(p), len(t))
        if not n:
            continue
        total += n
        for a in ATTRIBUTES:
            common = Counter(s[a] for s in p if a in s) & Counter(s[a] for s in t if a in s)
            hits[a] += sum(common.values())
    return {f"{a}_accuracy": hits[a] / total if total else 0.0 for a in ATTRIBUTES} | {"attribute_sources": total}
