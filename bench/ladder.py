"""Table V's ablation ladder, read from the rungs' own config files (ssuformer/configs/<rung>.yaml).

Each rung file says what it adds to the one before (`focal.yaml`: `extends: baseline`, `loss: {text: focal}`).
The ladder trains every rung on the benchmark config, so a rung becomes overrides of it: the keys that any
rung file sets itself, with the values the rung's resolved config holds. A change to a rung file changes the
ladder; nothing here repeats the files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Table V's row name -> its config name.
RUNGS = {"baseline": "baseline", "+Focal": "focal", "+MCM": "mcm", "+RCC": "rcc", "+MoHE": "mohe"}


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in data.items():
        out += _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return out


def switched_keys(names: list[str]) -> list[str]:
    """The dotted keys that the named config files set themselves (not through `extends`), first seen first."""
    import yaml

    from ssuformer.config import CONFIG_DIR

    keys: dict[str, None] = {}
    for name in names:
        data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {}
        data.pop("extends", None)
        keys.update((k, None) for k, _ in _flat(data))
    return list(keys)


def _lookup(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def rung_overrides(names: list[str] | None = None) -> dict[str, list[str]]:
    """Config name -> `--set` overrides (e.g. ["model.mcm=false", ..., "loss.text=ce"]) for the named rungs."""
    from ssuformer.config import load_config

    keys = switched_keys(list(RUNGS.values()))
    out = {}
    for name in names or list(RUNGS.values()):
        values = load_config(name).model_dump(mode="json")
        out[name] = [f"{k}={_scalar(_lookup(values, k))}" for k in keys]
    return out


def _scalar(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


# -- the two-seed batch (issue 29) ----------------------------------------------------------------
CONTROL = "+RCC (audio-blind)"  # the full model's audio-blind control (silence), one per seed
COLUMNS = ["miou", "fscore", "bleu4", "rouge_l", "cider", "colour_accuracy", "shape_accuracy", "position_accuracy"]
RESULT = "result.json"  # written last in a run folder: the run is trained and scored


def slug(rung: str) -> str:
    return "rcc-blind" if rung == CONTROL else rung.strip("+").lower()


def run_dir(out, seed: int, rung: str):
    return out / "runs" / f"seed{seed}" / slug(rung)


def caption_attributes(root_path, pred_annotations, split: str = "test") -> dict[str, float]:
    """Colour / shape / position accuracy (bench.captions) of the predicted per-frame captions."""
    from bench.captions import attribute_accuracy
    from schemas.models import Annotation
    from schemas.root import DatasetRoot

    root = DatasetRoot.open(root_path)
    pairs = []
    for clip_id in root.read_split(split):
        pred = Annotation.model_validate_json((pred_annotations / f"{clip_id}.json").read_bytes())
        pairs += list(zip(pred.frame_captions(), root.read_annotation(clip_id).frame_captions(), strict=True))
    root.close()
    return attribute_accuracy(pairs)


def flat_scores(test: dict[str, Any]) -> dict[str, float | None]:
    """A run's test scores under COLUMNS (captions are nested in ssu-eval's result)."""
    cap = test.get("captions") or {}
    return {k: test.get(k, cap.get(k)) for k in COLUMNS}


def ladder_table(results: dict[tuple[int, str], dict[str, Any]], seeds: list[int], rungs: list[str]) -> str:
    """One markdown table: each rung per seed, then the mean over the seeds it has (n shown)."""
    head = ["rung", "seed", *COLUMNS, "steps", "train min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    for rung in rungs:
        done = [results[(s, rung)] for s in seeds if (s, rung) in results]
        for s in seeds:
            r = results.get((s, rung))
            if r is None:
                lines.append(f"| {rung} | {s} | " + " | ".join(["missing"] + ["-"] * (len(head) - 3)) + " |")
                continue
            sc = flat_scores(r["test"])
            lines.append(f"| {rung} | {s} | " + " | ".join(fmt(sc[k]) for k in COLUMNS)
                         + f" | {r['steps']} | {r['train_seconds'] / 60:.1f} |")
        if len(done) > 1:
            means = [np.mean([v for d in done if (v := flat_scores(d["test"])[k]) is not None] or [np.nan])
                     for k in COLUMNS]
            lines.append(f"| **{rung}** | mean of {len(done)} | " + " | ".join(f"{m:.4f}" for m in means)
                         + f" | | {np.mean([d['train_seconds'] for d in done]) / 60:.1f} |")
    return "\n".join(lines)
