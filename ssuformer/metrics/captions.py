"""Caption metrics exactly as coco-caption computes them: pycocoevalcap 1.2 scorers, called one by one.

The captions are first tokenized with the Stanford PTB tokenizer (lower-cased, punctuation removed), then
scored by Bleu(4) (corpus-level, 'closest' reference length), Meteor 1.5 (Java), Rouge (ROUGE-L, beta 1.2)
and Cider (CIDEr-D). COCOEvalCap.evaluate() is not used because it also runs SPICE, which downloads
Stanford models at run time. METEOR starts a JVM (~12 s, ~1 GB): everything goes into one call.

An "image" in coco-caption's sense is one id with one candidate and one or more references. The corpus
statistics (BLEU's n-gram sums, CIDEr's document frequencies) depend on how frames are grouped into
images: see CaptionGrouping and docs/metrics.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from enum import StrEnum

from ssuformer.metrics.protocols import CAPTION_VERSION

CAPTION_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")


class CaptionGrouping(StrEnum):
    frame = "frame"  # every frame with a reference caption is one image (frames weigh equally)
    span = "span"  # each maximal run of frames with the same (candidate, reference) pair is one image


def group_frame_captions(clips: Mapping[str, tuple[Sequence[str | None], Sequence[str | None]]],
                         grouping: CaptionGrouping | str = CaptionGrouping.frame,
                         ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Per-frame (candidate, reference) captions of each clip -> coco-caption images.

    `clips` maps a clip id to (candidate per frame, reference per frame), both of the clip's length.
    Frames without a reference caption (None or blank) are left out: there is nothing to compare with.
    A missing candidate counts as the empty caption (it scores 0 against its reference).
    Image ids are `<clip>#<frame>` (frame grouping) or `<clip>#<start>-<end>` (span, end exclusive).
    """
    grouping = CaptionGrouping(grouping)
    candidates: dict[str, str] = {}
    references: dict[str, list[str]] = {}
    for clip_id, (cands, refs) in clips.items():
        if len(cands) != len(refs):
            raise ValueError(f"clip {clip_id}: {len(cands)} candidate frames but {len(refs)} reference frames")
        start = 0
        n = len(refs)
        for f in range(1, n + 1):
            same = (f < n and grouping is CaptionGrouping.span
                    and cands[f] == cands[start] and refs[f] == refs[start])
            if same:
                continue
            ref = (refs[start] or "").strip()
            if ref:
                key = f"{clip_id}#{start}" if grouping is CaptionGrouping.frame else f"{clip_id}#{start}-{f}"
                candidates[key] = (cands[start] or "").strip()
                references[key] = [ref]
            start = f
    return candidates, references


def _check_java() -> None:
    if shutil.which("java") is None:
        raise RuntimeError("caption metrics need Java (PTB tokenizer, METEOR 1.5): install a JRE, e.g. "
                           "`apt-get install default-jre-headless`")


def _tokenize(captions: Mapping[str, list[str]]) -> dict[str, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})
    # The tokenizer zips ids with output lines; a trailing empty caption can lose its line. Restore it
    # as empty rather than letting the scorers' key checks fail.
    for k, v in captions.items():
        got = out.setdefault(k, [])
        got.extend([""] * (len(v) - len(got)))
    return out


def caption_scores(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   meteor: bool = True) -> dict[str, object]:
    """coco-caption scores of one candidate per id against that id's references.

    Returns bleu1..bleu4, meteor, rouge_l (0-1) and cider (CIDEr-D, 0-10), plus `images` and `version`.
    `meteor=False` skips the METEOR JVM (its key is then None) for quick checks.
    """
    return caption_scores_groups(candidates, references, {"all": list(candidates)}, meteor=meteor)["all"]


def caption_scores_groups(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]],
                          groups: Mapping[str, Sequence[str]], meteor: bool = True) -> dict[str, dict[str, object]]:
    """caption_scores for several subsets of ids (e.g. per category), each its own corpus.

    The captions are tokenized once and one METEOR JVM serves every group (it costs ~12 s to start).
    """
    if set(candidates) != set(references):
        missing = sorted(set(references) - set(candidates))[:3]
        extra = sorted(set(candidates) - set(references))[:3]
        raise ValueError(f"candidates and references must have the same ids (missing {missing}, extra {extra})")
    if not candidates:
        raise ValueError("no captions to score")
    for k, refs in references.items():
        if isinstance(refs, str) or not refs:
            raise ValueError(f"references[{k!r}] must be a non-empty list of strings")
    for name, ids in groups.items():
        if not ids or not set(ids) <= set(candidates):
            raise ValueError(f"group {name!r} is empty or names ids that have no caption")
    _check_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    all_ids = sorted(candidates)
    res_all = _tokenize({k: [candidates[k]] for k in all_ids})
    gts_all = _tokenize({k: list(references[k]) for k in all_ids})
    scorer = None
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
    out: dict[str, dict[str, object]] = {}
    try:
        for name, ids in groups.items():
            ids = sorted(ids)
            res = {k: res_all[k] for k in ids}
            gts = {k: gts_all[k] for k in ids}
            bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
            rouge, _ = Rouge().compute_score(gts, res)
            cider, _ = Cider().compute_score(gts, res)
            met = scorer.compute_score(gts, res)[0] if scorer is not None else None
            out[name] = {"bleu1": float(bleu[0]), "bleu2": float(bleu[1]), "bleu3": float(bleu[2]),
                         "bleu4": float(bleu[3]), "meteor": None if met is None else float(met),
                         "rouge_l": float(rouge), "cider": float(cider), "images": len(ids),
                         "version": CAPTION_VERSION}
    finally:
        del scorer  # Meteor.__del__ stops the JVM
    return out
