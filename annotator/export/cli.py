"""ssu-export: splits, standard formats (YouTube-VIS, COCO, Hugging Face, WebDataset, Croissant) and the card.

Heavy libraries (pyarrow, datasets, webdataset, mlcroissant, matplotlib, PIL) load inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from annotator.export.options import MediaMode
from schemas.cli_util import folder_path, new_app, run_cli

if TYPE_CHECKING:
    from annotator.export.common import Selection
    from schemas.root import DatasetRoot

app = new_app("Export a dataset root: make splits, write standard formats, and a dataset card.\n\n"
              "Example: ssu-export splits /data/f-music --ratios 75,10,15 && ssu-export all /data/f-music")

ROOT = typer.Argument(..., help="dataset root (folder with ssu.json)", parser=folder_path)
STATUS_HELP = "clip status to export (repeat or comma-separate); default: accepted"
OUT_HELP = "output folder; default ROOT/export"
SKIP_HELP = ("leave out clips that fail the checks (annotation against the contract, media present) and list "
             "them with their reasons; default: stop at the first, before writing anything")
MEDIA_HELP = ("how clips/*.mp4 and audio/*.wav get into OUT: hardlink (default; a copy across filesystems), copy, "
              "or symlink (absolute links into the root: local use only, not a release)")
# The options every format command takes, declared once.
OUT = typer.Option(None, "--out", parser=folder_path, help=OUT_HELP)
STATUS = typer.Option(None, "--status", help=STATUS_HELP)
SKIP_BAD = typer.Option(False, "--skip-bad", help=SKIP_HELP)


def _open(root: Path) -> DatasetRoot:
    from schemas.root import DatasetRoot

    return DatasetRoot.open(root)


def _report(paths: list[Path]) -> None:
    for p in paths:
        typer.echo(f"wrote {p}")


def _prepare(root: Path, out: Path | None, status: list[str] | None,
             skip_bad: bool = False) -> tuple[Selection, Path]:
    """(Selection, output folder): --out checked first (cheap, one line), then every selected clip."""
    from annotator.export.common import check_out, parse_statuses, select

    droot = _open(root)
    dest = check_out(droot, out if out is not None else droot.path / "export")
    sel = select(droot, parse_statuses(status), skip_bad=skip_bad)
    if sel.unsplit:
        typer.echo(f"note: {sel.unsplit} clip(s) of the chosen status are in no split and are left out; "
                   f"re-run `ssu-export splits {root}` to place them", err=True)
    for k in sel.skipped:
        typer.echo(f"skipped {k}", err=True)
    return sel, dest


def _summary(sel: Selection) -> None:
    sizes = ", ".join(f"{s} {len(ids)}" for s, ids in sel.splits.items())
    typer.echo(f"exported {len(sel.clip_ids)} clip(s) ({sizes}); skipped {len(sel.skipped)}"
               + (": " + ", ".join(k.clip_id for k in sel.skipped) if sel.skipped else ""))


def _export(root: Path, out: Path | None, status: list[str] | None, skip_bad: bool,
            write: Callable[[Selection, Path], list[Path]]) -> None:
    """Every format command: check and select, write (no empty folders left if it fails), report, summarise.
    `write(selection, out_folder)` returns the files it wrote."""
    from annotator.export.common import no_empty_dirs_on_failure

    sel, dest = _prepare(root, out, status, skip_bad)
    with no_empty_dirs_on_failure(dest):
        written = write(sel, dest)
    _report(written)
    _summary(sel)


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
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    frames: bool = typer.Option(True, "--frames/--no-frames",
                                help="write every frame as JPEG (300 per clip) where file_names point"),
    media: MediaMode = typer.Option(MediaMode.hardlink, "--media", help=MEDIA_HELP),
) -> None:
    """YouTube-VIS style JSON per split (+ per-frame captions) in OUT/yvis/, frames in OUT/yvis/JPEGImages/,
    the media it refers to in OUT/clips/ and OUT/audio/.

    Example: ssu-export yvis /data/f-music --status accepted
    """
    from annotator.export.media import place_media
    from annotator.export.yvis import export_yvis

    _export(root, out, status, skip_bad, lambda sel, dest: [
        *place_media(sel, dest, media), *export_yvis(sel, dest / "yvis", dest, frames=frames)])


@app.command()
def coco(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    fps: float = typer.Option(1.0, "--fps", min=0.1, max=30, help="frames sampled per second"),
) -> None:
    """COCO instances JSON per split of frames sampled at --fps, with the frame images, in OUT/coco/.

    Example: ssu-export coco /data/f-music --fps 1
    """
    from annotator.export.coco import export_coco

    _export(root, out, status, skip_bad, lambda sel, dest: export_coco(sel, dest / "coco", fps=fps))


@app.command()
def hf(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    shard_size: int = typer.Option(200, "--shard-size", min=1, help="clips per Parquet shard"),
) -> None:
    """Hugging Face `datasets` layout: OUT/data/<split>-*.parquet and OUT/README.md with `configs:`.

    Example: ssu-export hf /data/f-music && python -c "import datasets; datasets.load_dataset('/data/f-music/export')"
    """
    from annotator.export.hf import export_hf

    _export(root, out, status, skip_bad, lambda sel, dest: export_hf(sel, dest, shard_size=shard_size))


@app.command()
def wds(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    shard_size: int = typer.Option(100, "--shard-size", min=1, help="clips per tar shard"),
) -> None:
    """WebDataset tar shards (mp4 + wav + json per clip) in OUT/wds/.

    Example: ssu-export wds /data/f-music --shard-size 100
    """
    from annotator.export.wds import export_wds

    _export(root, out, status, skip_bad,
            lambda sel, dest: export_wds(sel, dest / "wds", shard_size=shard_size))


@app.command()
def croissant(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    validate: bool = typer.Option(True, "--validate/--no-validate", help="check the result with mlcroissant"),
    url: str = typer.Option(None, "--url", help="where the dataset will be published; default: none"),
    media: MediaMode = typer.Option(MediaMode.hardlink, "--media", help=MEDIA_HELP),
) -> None:
    """Croissant JSON-LD (OUT/croissant.json) with clip and frame tables, validated with mlcroissant; the media
    its clips table lists go to OUT/clips/ and OUT/audio/.

    Example: ssu-export croissant /data/f-music
    """
    from annotator.export.croissant import export_croissant
    from annotator.export.media import place_media

    _export(root, out, status, skip_bad, lambda sel, dest: [
        *place_media(sel, dest, media), export_croissant(sel, dest, validate=validate, url=url)])


@app.command()
def card(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
) -> None:
    """Dataset card OUT/README.md (Hugging Face style) with statistics, provenance and plots (OUT/figures/).

    Example: ssu-export card /data/f-music
    """
    from annotator.export.card import write_card

    _export(root, out, status, skip_bad, lambda sel, dest: write_card(sel, dest))


@app.command(name="all")
def all_(
    root: Path = ROOT,
    out: Path = OUT,
    status: list[str] = STATUS,
    skip_bad: bool = SKIP_BAD,
    fps: float = typer.Option(1.0, "--fps", min=0.1, max=30, help="COCO frames sampled per second"),
    media: MediaMode = typer.Option(MediaMode.hardlink, "--media", help=MEDIA_HELP),
) -> None:
    """A self-contained release in OUT: every format, the card, the frames and media they refer to (splits must
    exist: run `ssu-export splits` first). Every path inside is relative; OUT can be moved or uploaded.

    Example: ssu-export all /data/f-music --out /data/f-music-release --skip-bad
    """
    from annotator.export.card import write_card
    from annotator.export.coco import export_coco
    from annotator.export.croissant import export_croissant
    from annotator.export.hf import export_hf
    from annotator.export.media import place_media
    from annotator.export.wds import export_wds
    from annotator.export.yvis import export_yvis

    _export(root, out, status, skip_bad, lambda sel, dest: [
        *place_media(sel, dest, media), *export_yvis(sel, dest / "yvis", dest),
        *export_coco(sel, dest / "coco", fps=fps), *export_hf(sel, dest), *export_wds(sel, dest / "wds"),
        *write_card(sel, dest), export_croissant(sel, dest)])


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
