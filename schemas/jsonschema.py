"""Generate schemas/json/*.schema.json from the pydantic models.

    python -m schemas.jsonschema          # rewrite the files
    python -m schemas.jsonschema --check  # exit 1 if the checked-in files drifted from the models
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas import atomic
from schemas.models import Annotation, AuditEntry, CatalogRow, Manifest

JSON_DIR = Path(__file__).parent / "json"
MODELS: dict[str, type[BaseModel]] = {
    "manifest": Manifest,
    "annotation": Annotation,
    "catalog_row": CatalogRow,
    "audit_entry": AuditEntry,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def drifted() -> list[str]:
    out = []
    for name, model in MODELS.items():
        path = JSON_DIR / f"{name}.schema.json"
        if not path.is_file() or path.read_text() != render(model):
            out.append(str(path))
    return out


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = drifted()
        for p in bad:
            print(f"{p}: out of date; run `python -m schemas.jsonschema`", file=sys.stderr)
        return 1 if bad else 0
    for name, model in MODELS.items():
        atomic.write_text(JSON_DIR / f"{name}.schema.json", render(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
