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
from annotator.refine.config import RefineConfig
from schemas.cli_util import file_path, folder_path, new_app, run_cli
from schemas.errors import UserError

app = new_app("Refine automatic annotations in the browser: masks (SAM clicks, brush, SAM2 propagation), "
              "captions, review.\n\nExample: ssu-refine add-user users.toml alice --role refiner; "
              "ssu-refine data/root --users users.toml --sam facebook/sam-vit-base --port 7860")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _opt(name: str) -> object:
    """A serve flag whose default, help and range are RefineConfig's (written once, in annotator/refine/config.py)."""
    bounds: dict[str, object] = {}
    for m in RefineConfig.model_fields[name].metadata:  # pydantic's ge / gt / le constraints
        if getattr(m, "ge", None) is not None:
            bounds["min"] = m.ge
        if getattr(m, "gt", None) is not None:  # (typer has no open bound: RefineConfig refuses the bound itself)
            bounds["min"] = m.gt
        if getattr(m, "le", None) is not None:
            bounds["max"] = m.le
    return typer.Option(RefineConfig.default(name), help=RefineConfig.help(name), **bounds)  # type: ignore[arg-type]


SERVE_EXAMPLE = ("Example:\n\n  ssu-refine add-user users.toml alice --role refiner\n\n"
                 "  ssu-refine data/root --users users.toml --sam facebook/sam-vit-base "
                 "--sam2 facebook/sam2.1-hiera-tiny --port 7860\n\n"
                 "  behind a TLS reverse proxy: ssu-refine data/root --users users.toml --public-url "
                 "https://refine.example.com")


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
    lease_minutes: float = _opt("lease_minutes"),
    frame_cache_mb: int = typer.Option(1024, min=32, help="memory for decoded frames shared by all users"),
    public_url: str | None = _opt("public_url"),
    login_idle_minutes: float = _opt("login_idle_minutes"),
    login_hours: float = _opt("login_hours"),
    login_limit_user: str = _opt("login_limit_user"),
    login_limit_address: str = _opt("login_limit_address"),
    max_body_kb: int = _opt("max_body_kb"),
    max_upload_mb: int = _opt("max_upload_mb"),
    max_upload_files: int = _opt("max_upload_files"),
    max_pixels: int = _opt("max_pixels"),
    max_fps: float = _opt("max_fps"),
    new_categories: bool = typer.Option(RefineConfig.default("new_categories"), "--new-categories/--no-new-categories",
                                        help=RefineConfig.help("new_categories")),
) -> None:
    """Serve the refinement app (login required). Security: docs/refine.md, "Security"."""
    import os

    from annotator.refine.auth import UserStore
    from schemas.root import DatasetRoot

    config = RefineConfig.from_flags(
        require_review=not no_review, lease_minutes=lease_minutes, public_url=public_url,
        login_idle_minutes=login_idle_minutes, login_hours=login_hours, login_limit_user=login_limit_user,
        login_limit_address=login_limit_address, max_body_kb=max_body_kb, max_upload_mb=max_upload_mb,
        max_upload_files=max_upload_files, max_pixels=max_pixels, max_fps=max_fps, new_categories=new_categories)
    if host not in LOOPBACK_HOSTS and config.public_url is None:
        raise UserError(f"--host {host}: give --public-url with the address browsers use (e.g. "
                        f"https://refine.example.org, or http://<this machine's name>:{port}); requests from any "
                        "other origin are refused")
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    DatasetRoot.open(root)  # a clear error for a wrong root before anything heavy loads
    store = UserStore(users)
    if not store.users:
        raise UserError(f"{users}: has no users; add one with `ssu-refine add-user {users} NAME`")

    from annotator.refine.app import launch
    from annotator.refine.controller import Controller
    from annotator.refine.frames import FrameStore
    from annotator.refine.tool_models import ToolModels

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
        models = ToolModels(SamSegmenter(loaded.sam), Sam2Propagator(loaded.sam2), VlmCaptioner(loaded.captioner))
        auto = AutoDraft(AutoAnnotator(loaded, cfg), models)
    else:
        models = ToolModels.load(settings, [k for k in (ModelKind.sam, ModelKind.sam2, ModelKind.captioner)
                                            if sources[k]])
    ctl = Controller(root, store, models, config, FrameStore(frame_cache_mb), draft=auto)
    missing = [k for k, v in models.names().items() if v is None]
    print(f"ssu-refine: serving {root} on {config.public_url or f'http://{host}:{port}'} ({len(store.users)} users"
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
