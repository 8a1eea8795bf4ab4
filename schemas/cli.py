"""ssu-validate: check a dataset root against the contract and print a report (exit 1 if anything is wrong)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from schemas.cli_util import folder_path, new_app, run_cli

app = new_app("Check a dataset root: manifest, catalog, annotations, clips, audio and splits.")


@app.command()
def validate(
    root: Path = typer.Argument(..., help="dataset root (folder with ssu.json)", parser=folder_path),
    no_media: bool = typer.Option(False, "--no-media", help="skip decoding clips and wavs (fast)"),
    workers: int = typer.Option(2, "--workers", min=1, help="threads decoding clips"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    max_problems: int = typer.Option(50, "--max-problems", min=0, help="problems to list (all are counted)"),
) -> None:
    """Validate ROOT. Example: ssu-validate /data/f-music"""
    from tqdm import tqdm

    from schemas.validate import validate_root

    bar = tqdm(total=0, desc="validate", unit="file", disable=as_json, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    report = validate_root(root, media=not no_media, workers=workers, progress=progress)
    bar.close()
    if as_json:
        print(json.dumps({"root": report.root, "ok": report.ok, "checked": report.checked, "stats": report.stats,
                          "problems": [p.__dict__ for p in report.problems]}, indent=2))
    else:
        s = report.stats
        print(f"root        {report.root}")
        print(f"clips       {s['clips']} ({s['failed']} failed in collection)   annotations {s['annotations']}")
        print("status      " + ", ".join(f"{k} {v}" for k, v in s["status"].items()))  # type: ignore[union-attr]
        print("categories  " + ", ".join(f"{k} {v}" for k, v in s["categories"].items()))  # type: ignore[union-attr]
        print("splits      " + (", ".join(f"{k} {v}" for k, v in s["splits"].items()) or "none"))  # type: ignore[union-attr]
        print("checked     " + ", ".join(f"{k} {v}" for k, v in report.checked.items()))
        if report.ok:
            print("OK: no problems")
        else:
            print(f"FAILED: {len(report.problems)} problem(s)")
            for p in report.problems[:max_problems]:
                print(f"  {p}")
    raise typer.Exit(0 if report.ok else 1)


def main() -> None:
    run_cli(app)
