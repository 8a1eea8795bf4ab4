"""ssu-synth: write a synthetic dataset root with exact ground truth (see docs/synthetic.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.cli_util import folder_path, new_app, run_cli

app = new_app("Write a synthetic dataset root: moving shapes that sound, with exact masks and captions.")


@app.command()
def synth(
    root: Path = typer.Argument(..., parser=folder_path,
                                help="folder of the dataset root (created, or resumed if partial)"),
    clips: int = typer.Option(20, "--clips", "-n", min=1, help="number of clips"),
    seed: int = typer.Option(0, "--seed", "-s", min=0, help="random seed; same seed, same dataset"),
    workers: int = typer.Option(0, "--workers", "-w", min=0,
                                help="clips rendered in parallel (processes); 0: one per core"),
    splits: str = typer.Option("0.7,0.15,0.15", "--splits", help="train,val,test fractions"),
    preset: str = typer.Option("veryfast", "--preset", help="libx264 preset: ultrafast, superfast, veryfast, faster"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    union_baseline: Path | None = typer.Option(
        None, "--union-baseline", parser=folder_path,
        help="instead of rendering: write the 'union of all objects' baseline for "
        "ROOT's --split into this folder (annotation format, for ssu-eval --predictions)"),
    split: str = typer.Option("test", "--split", help="split for --union-baseline"),
    caption: str | None = typer.Option(None, "--caption", help="caption the --union-baseline predicts on every frame"),
) -> None:
    """Render CLIPS 10 s clips (512x512, 30 fps, H.264+AAC mp4 + 16 kHz wav) with annotations and splits.

    Clips already complete in ROOT (annotation written) are skipped, so an interrupted run resumes.

    Example: ssu-synth /tmp/r --clips 20 --seed 0 --workers 2 && ssu-validate /tmp/r
    """
    import os

    if union_baseline is not None:
        from collection.synth_baseline import write_union_baseline

        n = len(write_union_baseline(root, union_baseline, split, caption, progress=progress))
        print(f"{union_baseline}: union-of-all-objects baseline for {n} {split} clips")
        return

    from collection.synth import Preset, generate
    from schemas.errors import UserError

    try:
        fractions = tuple(float(x) for x in splits.split(","))
    except ValueError:
        raise UserError(f"--splits {splits!r}: give three numbers like 0.7,0.15,0.15") from None
    if len(fractions) != 3:
        raise UserError(f"--splits {splits!r}: give three numbers like 0.7,0.15,0.15")
    workers = workers or os.cpu_count() or 1
    if preset not in {p.value for p in Preset}:
        raise UserError(f"--preset {preset!r}: use one of {', '.join(p.value for p in Preset)}")
    run = generate(root, clips=clips, seed=seed, splits=fractions, workers=workers,  # type: ignore[arg-type]
                   progress=progress, preset=Preset(preset))
    stats = run.root.stats()
    run.root.close()
    print(f"{root}: {stats['clips']} clips ({run.made} made, {run.skipped} already complete), "
          f"splits {stats['splits']}")
    if run.made:
        print(f"{run.made} clips in {run.seconds:.1f} s: {run.clips_per_second:.2f} clips/s "
              f"({workers} worker{'s' if workers > 1 else ''})")


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
