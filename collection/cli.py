"""ssu-collect: keywords -> 10 s, 30 fps, 512x512 clips (+ 16 kHz mono wav) in a dataset root."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from collection.request import default
from schemas.cli_util import any_path, file_path, folder_path, new_app, run_cli

app = new_app("Collect clips for keywords from VGG-Sound, MUSIC-AVQA, MUSIC or a local folder into a dataset "
              "root: fetch (local copies or yt-dlp), normalize to 512x512 / 30 fps / 300 frames + 16 kHz wav, "
              "compose multi-source clips. Re-running the same command resumes.")

EXAMPLE = ("Example: ssu-collect /data/f-music --source vggsound --index vggsound.csv --media-dir clips/ "
           "--keywords \"playing piano,orchestra\" --per-keyword 50 --seed 0 --split test")


@app.command(help=f"Collect into ROOT (created if absent). {EXAMPLE}")
def collect(
    root: Path = typer.Argument(None, parser=folder_path, help="dataset root (created when it does not exist)"),
    source: str = typer.Option(default("source"), "--source", help="vggsound | music_avqa | music21 | local"),
    index: Path = typer.Option(..., "--index", parser=any_path,
                               help="the source's index file (VGG-Sound CSV, avqa-*.json, "
                               "MUSIC *.json, or a folder with index.csv); never downloaded for you"),
    keywords: str = typer.Option(default("keywords"), "--keywords",
                                 help="comma-separated (';' if labels contain commas)"),
    per_keyword: int = typer.Option(default("per_keyword"), "--per-keyword", min=1,
                                    help="clips per keyword (paper: 50-100)"),
    seed: int = typer.Option(default("seed"), "--seed", min=0,
                             help="sampling seed (also picks MUSIC-AVQA/MUSIC windows)"),
    split: str = typer.Option(default("split"), "--split", help="only index rows of this split (train/test/...)"),
    list_keywords: bool = typer.Option(False, "--list-keywords", help="print the index's labels with counts"),
    synonyms: Path = typer.Option(default("synonyms"), "--synonyms", parser=file_path,
                                  help="synonym groups TOML (default: the shipped one)"),
    media_dir: Path = typer.Option(default("media_dir"), "--media-dir", parser=folder_path,
                                   help="local copies (<ytid>_<start:06d>.mp4, "
                                   "<video_id>.mp4 for MUSIC-AVQA); without it, yt-dlp downloads"),
    available_only: bool = typer.Option(default("available_only"), "--available-only",
                                        help="sample only entries with a file in "
                                        "--media-dir (others are not tried or recorded)"),
    fill: bool = typer.Option(default("fill"), "--fill", help="replace failed clips with further candidates until each "
                              "keyword has --per-keyword clips"),
    mix: list[str] = typer.Option(default("mix"), "--mix", help="multi-source clip spec, e.g. \"violin+piano\" (2-4 "
                                  "keywords; repeatable)"),
    mix_count: int = typer.Option(default("mix_count"), "--mix-count", min=1, help="clips per --mix spec"),
    fit: str = typer.Option(default("fit"), "--fit", help="pad | crop | stretch to 512x512 (recorded per clip)"),
    short: str = typer.Option(default("short"), "--short", help="sources under 10 s: reject | pad | loop"),
    no_audio: str = typer.Option(default("no_audio"), "--no-audio", help="sources without audio: reject | silence"),
    allow_silent: bool = typer.Option(default("allow_silent"), "--allow-silent",
                                      help="keep clips whose audio is silent"),
    crf: int = typer.Option(default("crf"), "--crf", min=0, max=51, help="x264 quality"),
    preset: str = typer.Option(default("preset"), "--preset", help="x264 preset"),
    workers: int = typer.Option(default("workers"), "--workers", min=1, help="local worker processes"),
    ffmpeg_threads: int = typer.Option(default("ffmpeg_threads"), "--ffmpeg-threads", min=0,
                                       help="threads per ffmpeg job (0: auto)"),
    ray: bool = typer.Option(default("ray"), "--ray", help="run the tasks on Ray"),
    ray_address: str = typer.Option(default("ray_address"), "--ray-address",
                                    help="Ray cluster address (default: local instance "
                                    "with --workers CPUs)"),
    url_template: str = typer.Option(default("url_template"), "--url-template",
                                     help="download URL; fields {youtube_id} {start} {clip_id}"),
    cookies: Path = typer.Option(default("cookies"), "--cookies", parser=file_path,
                                 help="cookies.txt passed to yt-dlp"),
    retries: int = typer.Option(default("retries"), "--retries", min=0, help="download retries on transient errors"),
    backoff: float = typer.Option(default("backoff"), "--backoff", min=0,
                                  help="seconds before the first retry (doubles)"),
    rate_limit: str = typer.Option(default("rate_limit"), "--rate-limit", help="download bytes/s per worker, e.g. 2M"),
    min_interval: float = typer.Option(default("min_interval"), "--min-interval", min=0,
                                       help="seconds between downloads per worker"),
    name: str = typer.Option(default("name"), "--name", help="dataset name for a new root (default: folder name)"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when any clip failed (a run in which every clip "
                                "failed exits 1 anyway)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    from collection import job as jobs
    from collection.request import CollectRequest
    from schemas.errors import UserError

    flags = dict(source=source, index=index, keywords=keywords, per_keyword=per_keyword, seed=seed, split=split,
                 synonyms=synonyms, media_dir=media_dir, available_only=available_only, fill=fill, mix=mix,
                 mix_count=mix_count, fit=fit, short=short, no_audio=no_audio, allow_silent=allow_silent, crf=crf,
                 preset=preset, workers=workers, ffmpeg_threads=ffmpeg_threads, ray=ray, ray_address=ray_address,
                 url_template=url_template, cookies=cookies, retries=retries, backoff=backoff,
                 rate_limit=rate_limit, min_interval=min_interval, name=name)
    if list_keywords:
        print(jobs.list_keywords(CollectRequest.from_flags(**flags)))
        return
    if root is None:
        raise UserError("ROOT: missing; give the dataset root to collect into (created when absent)")
    request = CollectRequest.from_flags(**flags)
    job, manifest_name = jobs.build_job(root, request)
    try:
        stats = jobs.run_job(root, job, manifest_name, quiet=quiet)
    except KeyboardInterrupt:
        print("interrupted: what finished is kept; run the same command again to resume", flush=True)
        raise typer.Exit(130) from None
    # a run that collected nothing (every planned clip failed) is an error even without --strict: scripts notice
    all_failed = stats.failed > 0 and stats.done + stats.skipped == 0
    if all_failed:  # run_job printed the summary (always, --quiet or not): the reasons are on screen
        print(f"error: all {stats.failed} clip(s) failed; the reasons are in the summary and in the catalog",
              file=sys.stderr)
    raise typer.Exit(1 if all_failed or (strict and stats.failed) else 0)


def main() -> None:
    run_cli(app)
