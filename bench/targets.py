"""What `ssu-bench learning` must show, per model kind: the semantic model (the paper's) and SSUFormer-I.

Each target compares one achieved figure with a bound; `report.json` keeps all three (achieved, bound, pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    achieved: float | None
    bound: float
    at_most: bool = False  # the achieved figure must be <= bound (default: >= bound)

    @property
    def passed(self) -> bool:
        if self.achieved is None:
            return False
        return self.achieved <= self.bound if self.at_most else self.achieved >= self.bound

    @property
    def required(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _get(d: dict[str, Any] | None, *keys: str) -> float | None:
    for k in keys:
        d = (d or {}).get(k)  # type: ignore[assignment]
    return None if d is None else float(d)  # type: ignore[arg-type]


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def semantic_targets(av: dict[str, Any], blind: dict[str, Any] | None) -> list[Target]:
    out = [Target("miou", "audio-visual mIoU", _get(av, "miou"), 0.80),
           Target("bleu4", "audio-visual BLEU-4", _get(av, "captions", "bleu4"), 0.50)]
    if blind is not None:
        out.append(Target("blind_gap", "mIoU: audio-visual - audio-blind", _gap(_get(av, "miou"), _get(blind, "miou")),
                          0.15))
    return out


def instance_targets(av: dict[str, Any], blind: dict[str, Any] | None, semantic: dict[str, Any] | None
                     ) -> list[Target]:
    """Issue 20's acceptance: instance mIoU >= 0.70, per-source BLEU-4 >= 0.50, the audio-blind control
    >= 0.15 worse on instance mIoU, and (given the semantic model's test scores) a union mIoU at most 0.02
    below the semantic model's."""
    inst = _get(av, "instances", "miou")
    out = [Target("instance_miou", "instance-matched mIoU", inst, 0.70),
           Target("source_bleu4", "per-source BLEU-4", _get(av, "instances", "captions", "bleu4"), 0.50)]
    if blind is not None:
        out.append(Target("blind_gap", "instance mIoU: audio-visual - audio-blind",
                          _gap(inst, _get(blind, "instances", "miou")), 0.15))
    if semantic is not None:
        out.append(Target("union_vs_semantic", "union mIoU: semantic model - instance model",
                          _gap(_get(semantic, "miou"), _get(av, "miou")), 0.02, at_most=True))
    return out
