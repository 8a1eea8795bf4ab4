"""Table V's ablation ladder, read from the rungs' own config files (ssuformer/configs/<rung>.yaml).

Each rung file says what it adds to the one before (`focal.yaml`: `extends: baseline`, `loss: {text: focal}`).
The ladder trains every rung on the benchmark config, so a rung becomes overrides of it: the keys that any
rung file sets itself, with the values the rung's resolved config holds. A change to a rung file changes the
ladder; nothing here repeats the files.
"""

from __future__ import annotations

from typing import Any

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
