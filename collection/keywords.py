"""Keyword -> index label: exact, then case-insensitive, then a synonym group (collection/synonyms.toml).

A keyword resolves to exactly one label of the chosen index; that label is the clip's category.
An unknown keyword is a UserError that names the closest labels (difflib).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schemas.errors import UserError


@dataclass(frozen=True)
class Keyword:
    text: str     # what the user typed
    label: str    # the index label it selects (= category)
    how: str      # "exact" | "case" | "synonym"


def norm(s: str) -> str:
    """Case-insensitive, '_'/'-' as spaces, runs of spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]", " ", s)).strip().casefold()


def load_synonyms(path: Path | None = None) -> list[list[str]]:
    """Synonym groups from `path`, or the file shipped in the package."""
    try:
        if path is None:
            text = resources.files("collection").joinpath("synonyms.toml").read_text(encoding="utf-8")
            where = "collection/synonyms.toml"
        else:
            text, where = Path(path).read_text(encoding="utf-8"), str(path)
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UserError(f"--synonyms {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where}: invalid TOML ({e}); see collection/synonyms.toml for the format") from None
    groups = data.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, list) and all(isinstance(s, str) for s in g)
                                               for g in groups):
        raise UserError(f"{where}: 'groups' must be a list of lists of strings")
    return groups


def split_keywords(text: str) -> list[str]:
    """'a,b' -> ['a', 'b']. Labels that contain commas ('playing violin, fiddle') can be given with ';'
    as the separator instead: 'playing violin, fiddle;cello'."""
    sep = ";" if ";" in text else ","
    out = [k.strip() for k in text.split(sep) if k.strip()]
    if not out:
        raise UserError("--keywords: empty; give e.g. --keywords \"playing piano,orchestra\"")
    return out


def resolve(keyword: str, labels: list[str] | dict[str, int], groups: list[list[str]],
            flag: str = "--keywords") -> Keyword:
    labels = list(labels)
    if keyword in labels:
        return Keyword(keyword, keyword, "exact")
    by_norm = {norm(lab): lab for lab in labels}
    if (lab := by_norm.get(norm(keyword))) is not None:
        return Keyword(keyword, lab, "case")
    for group in groups:
        if norm(keyword) in {norm(g) for g in group}:
            for name in group:  # group order is preference order
                if (lab := by_norm.get(norm(name))) is not None:
                    return Keyword(keyword, lab, "synonym")
    close = difflib.get_close_matches(norm(keyword), list(by_norm), n=5, cutoff=0.5)
    close += [k for k in by_norm if norm(keyword) in k and k not in close][: max(0, 5 - len(close))]
    hint = ("closest labels: " + ", ".join(repr(by_norm[c]) for c in close)) if close else \
        "run with --list-keywords to see the labels"
    raise UserError(f"{flag}: {keyword!r} is not a label of this index; {hint}")


def resolve_all(keywords: list[str], labels: dict[str, int], groups: list[list[str]]) -> list[Keyword]:
    """Resolve each keyword; two keywords naming the same label are merged (first wins)."""
    out: list[Keyword] = []
    for k in keywords:
        kw = resolve(k, labels, groups)
        if kw.label not in {o.label for o in out}:
            out.append(kw)
    return out


def format_label_counts(labels: dict[str, int]) -> str:
    width = max((len(k) for k in labels), default=0)
    lines = [f"{lab:<{width}}  {n}" for lab, n in sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines + [f"{len(labels)} labels, {sum(labels.values())} entries"])
