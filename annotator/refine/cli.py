"""ssu-refine: the web app where refiners fix masks and captions (and reviewers accept them).

    ssu-refine ROOT --host 127.0.0.1 --port 7860 --users users.toml [--sam ID] [--sam2 ID] [--captioner ID]
    ssu-refine add-user users.toml NAME --role refiner      (password from a prompt or --password-stdin)
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from annotator.models import flags as model_flags
from annotator.models.settings import Device, DType, ModelKind
from schemas.cli_util import file_path, folder_path, new_app, run_cli
from schemas.errors import UserError

app = new_app("Refine automatic annotations in the browser: masks (SAM clicks, brush, SAM2 propagation), "
              "captions, review.\n\nExample: ssu-refine add-user users.toml alice --role refiner; "
              "ssu-refine data/root --users users.toml --sam facebook/sam-vit-base --port 7860")

SERVE_EXAMPLE = ("Example:\n\n  ssu-refine add-user users.toml alice --role refiner\n\n"
                 "  ssu-refine data/root --users users.toml --sam facebook/sam-vit-base "
                 "--sam2 facebook/sam2.1-hiera-tiny --port 7860")


@app.command("serve", epilog=SERVE_EXAMPLE)
def serve(
    root: Path = typer.Argument(..., help="dataset root (folder with ssu.json)", parser=folder_path),
    users: Path = typer.Option(..., "--users", parser=file_path, help="users.toml made with `ssu-refine add-user`"),
    host: str = typer.Option("127.0.0.1", help="address to listen on; keep 127.0.0.1 behind a reverse proxy"),
    port: int = typer.Option(7860, min=1, max=65535, help="TCP port"),
    sam: str | None = model_flags.source(ModelKind.sam, off_by_default=True),
    sam2: str | None = model_flags.source(ModelKind.sam2, off_by_default=True),
    sam2_config: str | None = model_flags.SAM2_CONFIG,
    captioner: str | None = model_flags.source(ModelKind.captioner, off_by_default=True),
    detector: str | None = model_flags.source(ModelKind.detector, off_by_default=True),
    audio_tagger: str | None = model_flags.source(ModelKind.audio_tagger, off_by_default=True),
    draft: bool = typer.Option(False, "--draft/--no-draft", help="give uploaded videos ssu-annotate's automatic "
                               "draft (needs all five models: --sam --sam2 --captioner --detector --audio-tagger)"),
    device: Device = model_flags.DEVICE,
    dtype: DType = model_flags.DTYPE,
    offline: bool = model_flags.offline(True),
    no_review: bool = typer.Option(False, "--no-review", help="let refiners accept clips as final"),
    lease_minutes: float = typer.Option(30.0, min=1, help="how long a claim lasts without activity"),
    frame_cache_mb: int = typer.Option(1024, min=32, help="memory for decoded frames shared by all users"),
) -> None:
    """Serve the refinement app (login required)."""
    import os

    from annotator.refine.auth import UserStore
    from schemas.root import DatasetRoot

    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    DatasetRoot.open(root)  # a clear error for a wrong root before anything heavy loads
    store = UserStore(users)
    if not store.users:
        raise UserError(f"{users}: has no users; add one with `ssu-refine add-user {users} NAME`")

    from annotator.refine.app import launch
    from annotator.refine.controller import Controller, RefineConfig
    from annotator.refine.frames import FrameStore
    from annotator.refine.models_hub import ModelsHub

    sources = {ModelKind.sam: sam, ModelKind.sam2: sam2, ModelKind.captioner: captioner,
               ModelKind.detector: detector, ModelKind.audio_tagger: audio_tagger}
    settings = model_flags.models_config(sources, sam2_config, device, dtype, offline)
    auto = None
    if draft:
        if missing_flags := [k.flag for k, v in sources.items() if not v]:
            raise UserError(f"--draft runs ssu-annotate's pipeline on uploads and needs {', '.join(missing_flags)} "
                            "too; give them, or drop --draft")
        from annotator.draft.pipeline import AutoAnnotator, DraftModels, PipelineConfig
        from annotator.refine.model_adapters import Sam2Propagator, SamSegmenter, VlmCaptioner
        from annotator.refine.upload import AutoDraft

        cfg = PipelineConfig()
        loaded = DraftModels.load(settings, cfg)  # the five models once; the tools share SAM, SAM2 and the VLM
        hub = ModelsHub(SamSegmenter(loaded.sam), Sam2Propagator(loaded.sam2), VlmCaptioner(loaded.captioner))
        auto = AutoDraft(AutoAnnotator(loaded, cfg), hub)
    else:
        hub = ModelsHub.load(settings, [k for k in (ModelKind.sam, ModelKind.sam2, ModelKind.captioner)
                                        if sources[k]])
    ctl = Controller(root, store, hub, RefineConfig(require_review=not no_review, lease_minutes=lease_minutes),
                     FrameStore(frame_cache_mb), draft=auto)
    missing = [k for k, v in hub.names().items() if v is None]
    print(f"ssu-refine: serving {root} on http://{host}:{port} ({len(store.users)} users"
          + (f"; tools off: {', '.join(missing)}" if missing else "") + ")", file=sys.stderr)
    launch(ctl, host, port, block=True)


@app.command("add-user", epilog="Example:\n\n  ssu-refine add-user users.toml alice --role refiner\n\n"
                                "  echo \"$PW\" | ssu-refine add-user users.toml rita --role reviewer --password-stdin")
def add_user_cmd(
    users: Path = typer.Argument(..., help="users.toml (created if missing)", parser=file_path),
    name: str = typer.Argument(..., help="login name"),
    role: str = typer.Option("refiner", help="refiner or reviewer"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
) -> None:
    """Add a user, or set a user's password and role."""
    from annotator.refine.auth import Role, add_user

    try:
        r = Role(role)
    except ValueError:
        raise UserError(f"--role {role!r}: use refiner or reviewer") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    new = add_user(users, name, password, r)
    print(f"{'added' if new else 'updated'} {name} ({r.value}) in {users}")


COMMANDS = {"serve", "add-user"}


def main() -> None:
    # `ssu-refine ROOT ...` is short for `ssu-refine serve ROOT ...`
    argv = sys.argv[1:]
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        sys.argv.insert(1, "serve")
    run_cli(app)


if __name__ == "__main__":
    main()
