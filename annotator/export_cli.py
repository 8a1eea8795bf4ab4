"""ssu-export: splits, standard formats (YouTube-VIS, COCO, Hugging Face, WebDataset, Croissant) and the card.

Heavy libraries (pyarrow, datasets, webdataset, mlcroissant, matplotlib, PIL) load inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.cli_util import folder_path, new_app, run_cli

app = new_app("Export a dataset root: make splits, write standard formats, and a dataset card.\n\n"
              "Example: ssu-export splits /data/f-music --ratios 75,10,15 && ssu-export all /data/f-music")

ROOT = typer.Argument(..., help="dataset root (folder with ssu.json)", parser=folder_path)
STATUS_HELP = "clip status to export (repeat or comma-separate); default: accepted"


def _out(root: Path, out: Path | None) -> Path:
    return out if out is not None else root / "export"


def _open(root: Path):  # -> DatasetRoot
    from schemas.root import DatasetRoot

    return DatasetRoot.open(root)


def _report(paths: list[Path]) -> None:
    for p in paths:
        typer.echo(f"wrote {p}")


def _select(root: Path, status: list[str] | None):  # -> Selection
    from annotator.export.common import parse_statuses, select

    sel = select(_open(root), parse_statuses(status))
    if sel.unsplit:
        typer.echo(f"note: {sel.unsplit} clip(s) of the chosen status are in no split and are left out; "
                   f"re-run `ssu-export splits {root}` to place them", err=True)
    return sel


@app.command()
def splits(
    root: Path = ROOT,
    ratios: str = typer.Option("75,10,15", "--ratios", help="train,val,test shares, e.g. 75,10,15 or 70,15,15"),
    seed: int = typer.Option(0, "--seed", min=0, help="same seed, same splits"),
    status: list[str] = typer.Option(None, "--status", help="clip status to split; default: accepted"),
    balance_test: bool = typer.Option(True, "--balance-test/--proportional-test",
                                      help="same number of test clips per category (the paper) or proportional"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, write nothing"),
) -> None:
    """Split clips into train/val/test by source video, stratified by category.

    Example: ssu-export splits /data/f-music --ratios 75,10,15 --seed 0
    """
    from annotator.export.common import parse_statuses
    from annotator.export.splits import parse_ratios, split_report, split_root

    plan = split_root(_open(root), parse_ratios(ratios), seed, parse_statuses(status), balance_test, dry_run)
    for line in split_report(plan):
        typer.echo(line)
    sizes = ", ".join(f"{s.value} {len(ids)}" for s, ids in plan.splits.items())
    typer.echo(f"{'would write' if dry_run else 'wrote'} splits: {sizes} ({plan.groups} source groups)")


@app.command()
def yvis(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    frames: bool = typer.Option(False, "--frames", help="also write every frame as JPEG (300 per clip)"),
) -> None:
    """YouTube-VIS style JSON per split (+ per-frame captions) in OUT/yvis/.

    Example: ssu-export yvis /data/f-music --status accepted
    """
    from annotator.export.yvis import export_yvis

    _report(export_yvis(_select(root, status), _out(root, out) / "yvis", frames=frames))


@app.command()
def coco(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    fps: float = typer.Option(1.0, "--fps", min=0.1, max=30, help="frames sampled per second"),
) -> None:
    """COCO instances JSON per split of frames sampled at --fps, with the frame images, in OUT/coco/.

    Example: ssu-export coco /data/f-music --fps 1
    """
    from annotator.export.coco import export_coco

    _report(export_coco(_select(root, status), _out(root, out) / "coco", fps=fps))


@app.command()
def hf(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    shard_size: int = typer.Option(200, "--shard-size", min=1, help="clips per Parquet shard"),
) -> None:
    """Hugging Face `datasets` layout: OUT/data/<split>-*.parquet and OUT/README.md with `configs:`.

    Example: ssu-export hf /data/f-music && python -c "import datasets; datasets.load_dataset('/data/f-music/export')"
    """
    from annotator.export.hf import export_hf

    _report(export_hf(_select(root, status), _out(root, out), shard_size=shard_size))


@app.command()
def wds(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    shard_size: int = typer.Option(100, "--shard-size", min=1, help="clips per tar shard"),
) -> None:
    """WebDataset tar shards (mp4 + wav + json per clip) in OUT/wds/.

    Example: ssu-export wds /data/f-music --shard-size 100
    """
    from annotator.export.wds import export_wds

    _report(export_wds(_select(root, status), _out(root, out) / "wds", shard_size=shard_size))


@app.command()
def croissant(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="check the result with mlcroissant"),
    url: str = typer.Option(None, "--url", help="where the dataset will be published; default: OUT as a file URL"),
) -> None:
    """Croissant JSON-LD (OUT/croissant.json) with clip and frame tables, validated with mlcroissant.

    Example: ssu-export croissant /data/f-music
    """
    from annotator.export.croissant import export_croissant

    _report([export_croissant(_select(root, status), _out(root, out), validate=validate, url=url)])


@app.command()
def card(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
) -> None:
    """Dataset card OUT/README.md (Hugging Face style) with statistics, provenance and plots (OUT/figures/).

    Example: ssu-export card /data/f-music
    """
    from annotator.export.card import write_card

    _report(write_card(_select(root, status), _out(root, out)))


@app.command(name="all")
def all_(
    root: Path = ROOT,
    out: Path = typer.Option(None, "--out", parser=folder_path, help="output folder; default ROOT/export"),
    status: list[str] = typer.Option(None, "--status", help=STATUS_HELP),
    fps: float = typer.Option(1.0, "--fps", min=0.1, max=30, help="COCO frames sampled per second"),
) -> None:
    """Every format and the card into OUT (splits must exist: run `ssu-export splits` first).

    Example: ssu-export all /data/f-music --out /data/f-music-release
    """
    from annotator.export.card import write_card
    from annotator.export.coco import export_coco
    from annotator.export.croissant import export_croissant
    from annotator.export.hf import export_hf
    from annotator.export.wds import export_wds
    from annotator.export.yvis import export_yvis

    sel = _select(root, status)
    dest = _out(root, out)
    written = [*export_yvis(sel, dest / "yvis"), *export_coco(sel, dest / "coco", fps=fps), *export_hf(sel, dest),
               *export_wds(sel, dest / "wds"), *write_card(sel, dest), export_croissant(sel, dest)]
    _report(written)


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
