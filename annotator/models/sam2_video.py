"""SAM2 video propagation in bounded memory (load through annotator.models.load_sam2_video).

sam2's video predictor keeps every frame (as float tensors at image_size², 12 MB each at 1024) and every
frame's memory features in its inference state. Long clips therefore run in windows of `window` frames:
each window gets a fresh state, seeded with the previous window's last masks (windows overlap by one
frame), and frames and state are offloaded to CPU (`offload_video_to_cpu` / `offload_state_to_cpu`).
Both directions: forward from the earliest seed, backward from the latest; a frame reached from both takes
the result of the nearer seed. Frames are handed to sam2 as a JPEG folder, its public input format.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from annotator.models.settings import (
    SAM2_WINDOW,
    Direction,
    ModelInfo,
    ModelKind,
    ModelSpec,
    Runtime,
    is_local,
    local_path,
    missing_weights,
    version_of,
)
from schemas.errors import UserError
from schemas.media import read_frames

Masks = dict[int, dict[int, np.ndarray]]  # frame -> source id -> (H, W) bool

# sam2 1.1.0 turns these on in build_sam2_video_predictor; a local yaml gets the same.
VIDEO_OVERRIDES = {
    "_target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
    "sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 8,
}
_SIZE_NAMES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def hub_files(model_id: str) -> tuple[str, str] | None:
    """(packaged config name, checkpoint file name) of an official facebook/sam2* hub id."""
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    return HF_MODEL_ID_TO_FILENAMES.get(model_id)


def _config_for_checkpoint(ckpt: Path) -> str:
    """sam2.1_hiera_large.pt -> configs/sam2.1/sam2.1_hiera_l.yaml (the official names)."""
    stem = ckpt.stem
    for long, short in _SIZE_NAMES.items():
        if stem.endswith(f"hiera_{long}"):
            ver = "sam2.1" if stem.startswith("sam2.1") else "sam2"
            return f"configs/{ver}/{ver}_hiera_{short}.yaml"
    raise UserError(f"--sam2 {ckpt}: cannot tell the config from the file name; pass --sam2-config "
                    "(a packaged name like configs/sam2.1/sam2.1_hiera_l.yaml, or a yaml file)")


def _resolve(spec: ModelSpec, rt: Runtime) -> tuple[str, Path | None]:
    """(config name or yaml path, checkpoint path or None)."""
    if not is_local(spec.source):
        files = hub_files(spec.source)
        if files is None:
            raise UserError(f"--sam2 {spec.source}: not a known SAM2 hub id; use one of facebook/sam2.1-hiera-"
                            "{tiny,small,base-plus,large} or a local checkpoint")
        from huggingface_hub import hf_hub_download

        try:
            ckpt = hf_hub_download(spec.source, files[1], revision=spec.revision, local_files_only=rt.is_offline())
        except Exception as e:
            raise missing_weights(ModelKind.sam2, spec.source, f" ({type(e).__name__})") from None
        return spec.config or files[0], Path(ckpt)
    p = local_path(ModelKind.sam2, spec.source)
    if p.is_dir():
        cks, ymls = sorted(p.glob("*.pt")), sorted(p.glob("*.yaml"))
        if len(cks) != 1:
            raise UserError(f"--sam2 {p}: expected one *.pt checkpoint in the folder, found {len(cks)}")
        if spec.config:
            return spec.config, cks[0]
        if len(ymls) == 1:
            return str(ymls[0]), cks[0]
        return _config_for_checkpoint(cks[0]), cks[0]
    return spec.config or _config_for_checkpoint(p), p


def _build(config: str, ckpt: Path | None, device: str) -> Any:
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if Path(config).is_file():
        cfg = OmegaConf.load(config)
        for k, v in VIDEO_OVERRIDES.items():
            OmegaConf.update(cfg, f"model.{k}", v, force_add=True)
        OmegaConf.resolve(cfg)
        model = instantiate(cfg.model, _recursive_=True)
        if ckpt is not None:
            sd = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
            model.load_state_dict(sd)  # strict: a wrong config must not pass silently
        return model.to(device).eval()
    from sam2.build_sam import build_sam2_video_predictor

    try:
        return build_sam2_video_predictor(config, ckpt_path=str(ckpt) if ckpt else None, device=device)
    except Exception as e:  # hydra's MissingConfigException and load_state_dict mismatches
        raise UserError(f"--sam2-config {config}: cannot build SAM2 ({type(e).__name__}: {str(e)[:160]})") from None


class VideoPropagator:
    """Propagates masks through a clip. No state between calls."""

    def __init__(self, predictor: Any, info: ModelInfo, rt: Runtime, window: int = SAM2_WINDOW, offload: bool = True,
                 jpeg_quality: int = 95) -> None:
        if window < 2:
            raise UserError(f"--sam2-window {window}: need at least 2 frames per window")
        self.predictor, self.info, self.rt = predictor, info, rt
        self.window, self.offload, self.jpeg_quality = window, offload, jpeg_quality

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)

    def propagate(self, frames: np.ndarray | str | Path, seeds: Masks, start: int = 0, end: int | None = None,
                  direction: Direction = Direction.both,
                  on_frame: Callable[[int], None] | None = None) -> Masks:
        """Masks for frames [start, end) from seed masks ({frame: {source_id: (H, W) bool}}).

        frames: (N, H, W, 3) uint8 RGB, or a video file (decoded once). A source gets masks only on frames
        reachable from one of its seeds in the given direction. on_frame(frame) ticks a progress bar.
        """
        if not isinstance(frames, np.ndarray):

            frames = read_frames(frames)
        n = len(frames)
        end = n if end is None else end
        if not 0 <= start < end <= n:
            raise ValueError(f"frame range [{start}, {end}) is outside the clip's {n} frames")
        seeds = {int(f): {int(s): np.asarray(m, bool) for s, m in ms.items()} for f, ms in seeds.items()
                 if start <= f < end and ms}
        if not seeds:
            return {}
        direction = Direction(direction)
        fwd = self._pass(frames, seeds, list(range(min(seeds), end)), False, on_frame) \
            if direction in (Direction.forward, Direction.both) else {}
        bwd = self._pass(frames, seeds, list(range(max(seeds), start - 1, -1)), True, on_frame) \
            if direction in (Direction.backward, Direction.both) else {}
        return _merge(fwd, bwd, seeds)

    def _windows(self, order: list[int], seeds: Masks) -> list[list[int]]:
        """Cut the processing order into windows of at most `window` frames that share their boundary frame,
        with every seed frame starting a window: then every source in a window has its input on the window's
        first frame (sam2 1.1.0 fails on CPU for a source whose only input lies ahead of the frame tracked)."""
        cuts = [i for i, f in enumerate(order) if f in seeds and i > 0] + [len(order) - 1]
        wins, a = [], 0
        for b in cuts:
            while True:
                e = min(b, a + self.window - 1)
                wins.append(order[a:e + 1])
                a = e
                if e == b:
                    break
        return [w for w in wins if len(w) > 1 or len(order) == 1]

    def _pass(self, frames: np.ndarray, seeds: Masks, order: list[int], reverse: bool,
              on_frame: Callable[[int], None] | None) -> Masks:
        out: Masks = {}
        carried: dict[int, np.ndarray] = {}
        with tempfile.TemporaryDirectory(prefix="sam2win-") as tmp:
            for k, win in enumerate(self._windows(order, seeds)):
                inputs = {**carried, **seeds.get(win[0], {})}
                if inputs:
                    res = self._window(frames, win, inputs, reverse, Path(tmp))
                    out.update(res)
                    # carried even when empty: every frame reachable from a seed gets a mask, found or not
                    carried = dict(res.get(win[-1], {}))
                for f in win[1:] if k else win:
                    if on_frame:
                        on_frame(f)
        return out

    def _window(self, frames: np.ndarray, win: list[int], inputs: dict[int, np.ndarray], reverse: bool,
                tmp: Path) -> Masks:
        import torch
        from PIL import Image

        asc = sorted(win)
        folder = tmp / f"w{win[0]}-{len(win)}"
        folder.mkdir()
        for i, g in enumerate(asc):
            Image.fromarray(frames[g]).save(folder / f"{i:05d}.jpg", quality=self.jpeg_quality)
        p = self.predictor
        dev = self.rt.torch_device()
        autocast = dev.startswith("cuda") and self.rt.torch_dtype() != torch.float32
        out: Masks = {}
        with warnings.catch_warnings(), _no_sam2_bars(), torch.inference_mode(), \
                torch.autocast("cuda", dtype=self.rt.torch_dtype(), enabled=autocast):
            warnings.filterwarnings("ignore", message=r"(?s).*Skipping the post-processing step")
            state = p.init_state(str(folder), offload_video_to_cpu=self.offload, offload_state_to_cpu=self.offload)
            first = asc.index(win[0])
            for s, m in inputs.items():
                p.add_new_mask(state, first, s, m)
            for fidx, obj_ids, logits in p.propagate_in_video(state, start_frame_idx=first, reverse=reverse):
                masks = (logits[:, 0] > 0.0).cpu().numpy()
                out[asc[fidx]] = {int(s): masks[i] for i, s in enumerate(obj_ids)}
            p.reset_state(state)
            del state
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        return out


@contextlib.contextmanager
def _no_sam2_bars() -> Iterator[None]:
    """sam2 draws its own tqdm bars per window (frame loading, propagation); the runner's bar is the one
    the user should see, so swap sam2's module-level `tqdm` for a pass-through while we run."""
    import sam2.sam2_video_predictor as vp
    import sam2.utils.misc as misc

    saved = vp.tqdm, misc.tqdm
    vp.tqdm = misc.tqdm = lambda it, *a, **k: it  # type: ignore[assignment]
    try:
        yield
    finally:
        vp.tqdm, misc.tqdm = saved


def _merge(fwd: Masks, bwd: Masks, seeds: Masks) -> Masks:
    seed_frames: dict[int, list[int]] = {}
    for f, ms in seeds.items():
        for s in ms:
            seed_frames.setdefault(s, []).append(f)
    out: Masks = {}
    for f in sorted(set(fwd) | set(bwd)):
        row: dict[int, np.ndarray] = {}
        for s in set(fwd.get(f, {})) | set(bwd.get(f, {})):
            a, b = fwd.get(f, {}).get(s), bwd.get(f, {}).get(s)
            if a is None or b is None:
                row[s] = a if b is None else b  # type: ignore[assignment]
                continue
            before = [x for x in seed_frames[s] if x <= f]
            after = [x for x in seed_frames[s] if x >= f]
            d_fwd = f - max(before) if before else 1 << 30
            d_bwd = min(after) - f if after else 1 << 30
            row[s] = a if d_fwd <= d_bwd else b
        out[f] = row
    return out


def load_sam2_video(spec: ModelSpec, rt: Runtime, window: int = SAM2_WINDOW, offload: bool = True) -> VideoPropagator:
    config, ckpt = _resolve(spec, rt)
    if not Path(config).is_file() and not config.startswith("configs/"):
        raise UserError(f"--sam2-config {config}: not a file and not a packaged name (configs/sam2.1/...yaml)")
    predictor = _build(config, ckpt, rt.torch_device())
    info = ModelInfo(ModelKind.sam2, spec.source, version_of(spec.source, "sam2")
                     + f"; config {Path(config).name}; image_size {predictor.image_size}",
                     "sam2:SAM2VideoPredictor")
    return VideoPropagator(predictor, info, rt, window=window, offload=offload)
