"""A procedural audio-visual source with exact ground truth, for demos, tests and benchmarks.

Each clip shows 2-3 moving shapes (distinct shape and colour) on a smooth textured background. Every shape
kind has its own sound (`SHAPES`); in every second at least one object sounds and at least one is silent,
so which object is the sound source can only be told from the audio. Ground truth per object and frame:
the mask of its *visible* pixels (objects drawn later cover earlier ones) while it sounds, null while
silent or fully hidden; a caption per sounding second ("a red circle on the left is beeping").

Second s covers frames [30 s, 30 s + 30) and samples [16000 s, 16000 s + 16000) exactly.
Everything is a pure function of (seed, index): same seed, same files (timestamps included).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from schemas import rle as rle_mod
from schemas.atomic import atomic_path
from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SECONDS, SIZE
from schemas.errors import UserError
from schemas.media import ffmpeg_exe, write_wav
from schemas.models import (
    RLE,
    Agent,
    AgentKind,
    Annotation,
    CatalogRow,
    Category,
    ClipStatus,
    Manifest,
    Origin,
    SoundSource,
    Split,
)
from schemas.root import MANIFEST, DatasetRoot

SYNTH_VERSION = "1.0"  # bump when the output for a given seed changes
AGENT_KEY = "synth"
AGENT_NAME = "ra-ssu synth"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # timestamps are derived from the seed so files are reproducible


class Shape(StrEnum):
    circle = "circle"
    square = "square"
    triangle = "triangle"
    star = "star"
    diamond = "diamond"


@dataclass(frozen=True)
class Preset(StrEnum):
    """libx264 presets worth using here: faster ones make bigger files."""

    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"


@dataclass(frozen=True)
class SoundKind:
    verb: str                  # used in captions: "a red circle ... is beeping"
    band: tuple[float, float]  # Hz range holding (nearly) all of the sound's energy; tests and users check it


# The category of an object is its shape; the sound is fixed per shape. Bands do not overlap.
SHAPES: dict[Shape, SoundKind] = {
    Shape.circle: SoundKind("beeping", (900.0, 1100.0)),     # 1 kHz tone, 4 beeps per second
    Shape.square: SoundKind("humming", (200.0, 240.0)),      # 220 Hz tone, slow tremolo
    Shape.triangle: SoundKind("whistling", (2300.0, 2500.0)),  # 2.4 kHz tone with vibrato
    Shape.star: SoundKind("hissing", (5000.0, 7000.0)),      # band-limited noise
    Shape.diamond: SoundKind("chirping", (1400.0, 1800.0)),  # 8 rising chirps per second
}

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35), "green": (40, 200, 60), "blue": (40, 80, 235), "yellow": (245, 215, 30),
    "magenta": (220, 50, 210), "cyan": (30, 210, 220), "orange": (250, 140, 20), "white": (250, 250, 250),
}


@dataclass(frozen=True)
class ObjectSpec:
    id: int
    shape: Shape
    colour: str
    radius: float
    path: tuple[float, ...]            # Lissajous: fx, fy (cycles per clip), phase x, phase y
    spin: tuple[float, float]          # initial angle (rad), angular speed (rad per second)
    sounding: tuple[bool, ...]         # one flag per second

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape.value}"

    def centres(self) -> np.ndarray:
        """(NUM_FRAMES, 2) float centre (x, y) per frame, kept inside the frame."""
        t = np.arange(NUM_FRAMES) / NUM_FRAMES
        fx, fy, px, py = self.path
        lo, hi = self.radius, SIZE - 1 - self.radius
        x = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * fx * t + px))
        y = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * fy * t + py))
        return np.stack([x, y], axis=1)


@dataclass(frozen=True)
class ClipSpec:
    seed: int
    index: int
    objects: tuple[ObjectSpec, ...]    # in drawing order: later objects cover earlier ones
    texture_seed: int

    @property
    def clip_id(self) -> str:
        return clip_id(self.seed, self.index)

    @property
    def main_category(self) -> str:
        """The shape that sounds for the most seconds (first in drawing order on ties)."""
        return max(self.objects, key=lambda o: sum(o.sounding)).shape.value

    def sounding(self) -> np.ndarray:
        """(objects, SECONDS) bool: who sounds when. The Annotation holds the same truth per frame."""
        return np.array([o.sounding for o in self.objects], dtype=bool)


def clip_id(seed: int, index: int) -> str:
    return f"synth_{seed}_{index:05d}"


def clip_spec(seed: int, index: int) -> ClipSpec:
    """The clip `index` of run `seed`: a pure function of both."""
    rng = np.random.default_rng([int(seed), int(index), 0x5E7])
    n = int(rng.integers(2, 4))
    shapes = rng.choice(list(Shape), size=n, replace=False)
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    # Per second choose a non-empty, non-full subset of sounding objects.
    flags = np.zeros((n, SECONDS), dtype=bool)
    for s in range(SECONDS):
        k = int(rng.integers(1, n))
        flags[rng.choice(n, size=k, replace=False), s] = True
    objs = []
    for i in range(n):
        objs.append(ObjectSpec(
            id=i, shape=Shape(shapes[i]), colour=str(colours[i]), radius=float(rng.uniform(45, 75)),
            path=(float(rng.uniform(0.4, 1.6)), float(rng.uniform(0.4, 1.6)),
                  float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi))),
            spin=(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-1.5, 1.5))),
            sounding=tuple(bool(v) for v in flags[i])))
    return ClipSpec(seed=int(seed), index=int(index), objects=tuple(objs),
                    texture_seed=int(rng.integers(0, 2**31)))


# -- pictures -----------------------------------------------------------------------------------------
_PAD = 96  # the texture is larger than the frame and scrolls


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation weights: a smooth upsampling as one matrix product."""
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    w = pos - i0
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), i0] = 1 - w
    m[np.arange(n_out), i0 + 1] = w
    return m


def background(spec: ClipSpec) -> tuple[np.ndarray, tuple[float, float]]:
    """A muted texture of (SIZE+PAD)^2 (smooth noise blended with stripes) and its scroll speed (px/frame).

    Muted and low-saturation so that the objects' saturated colours stand out after H.264 compression.
    """
    rng = np.random.default_rng(spec.texture_seed)
    n = SIZE + _PAD
    g = int(rng.integers(4, 12))
    w = _interp_matrix(n, g)
    noise = np.stack([w @ rng.random((g, g)) @ w.T for _ in range(3)], axis=-1)  # (n, n, 3) in 0..1
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    ang, period = rng.uniform(0, np.pi), rng.uniform(12, 60)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang)) / period)
    mix = rng.uniform(0.2, 0.8)
    tex = (1 - mix) * noise + mix * stripes[..., None] * rng.uniform(0.6, 1.0, size=3)
    base, spread = rng.uniform(70, 110), rng.uniform(30, 60)
    tex = np.clip(base + spread * (tex - 0.5), 0, 255).astype(np.uint8)
    speed = (float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)))
    return tex, speed


def _triangle(u: np.ndarray, v: np.ndarray, r: float, theta: float) -> np.ndarray:
    """Equilateral triangle of circumradius r: inside all three edges (inradius r/2)."""
    inside = None
    for k in range(3):
        a = theta + np.pi / 2 + 2 * np.pi * k / 3
        edge = u * np.cos(a) + v * np.sin(a) <= r / 2
        inside = edge if inside is None else inside & edge
    return inside  # type: ignore[return-value]


def shape_mask(shape: Shape, dx: np.ndarray, dy: np.ndarray, r: float, theta: float) -> np.ndarray:
    """Inside-test of `shape` centred at 0 with size r, rotated by theta, at offsets (dx, dy)."""
    if shape is Shape.circle:
        return dx * dx + dy * dy <= r * r
    c, s = np.cos(theta), np.sin(theta)
    u, v = dx * c + dy * s, -dx * s + dy * c
    if shape is Shape.square:
        h = 0.8 * r
        return (np.abs(u) <= h) & (np.abs(v) <= h)
    if shape is Shape.diamond:
        return np.abs(u) / r + np.abs(v) / (0.6 * r) <= 1
    if shape is Shape.triangle:
        return _triangle(dx, dy, r, theta)
    return _triangle(dx, dy, r, theta) | _triangle(dx, dy, r, theta + np.pi)  # star: a hexagram


def render_second(spec: ClipSpec, second: int, tex: np.ndarray, speed: tuple[float, float],
                  centres: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Frames (FPS, SIZE, SIZE, 3) uint8 of one second and the owner map (FPS, SIZE, SIZE) int8.

    owner[f, y, x] is the index of the object visible at that pixel (-1: background), so an object's
    visible mask is `owner == i`: occlusion comes out exactly as drawn.
    """
    frames = np.empty((FPS, SIZE, SIZE, 3), dtype=np.uint8)
    # Stored x-major and viewed as (f, y, x): then `owner == i` is already in the Fortran (y, x, f) layout
    # that pycocotools wants, and rle.encode_many skips a copy.
    owner = np.full((FPS, SIZE, SIZE), -1, dtype=np.int8).transpose(0, 2, 1)
    for k in range(FPS):
        f = second * FPS + k
        ox = int(round(_PAD / 2 + _PAD / 2 * np.sin(speed[0] * f / 40)))
        oy = int(round(_PAD / 2 + _PAD / 2 * np.sin(speed[1] * f / 40)))
        frames[k] = tex[oy:oy + SIZE, ox:ox + SIZE]
        for i, o in enumerate(spec.objects):
            cx, cy = centres[i][f]
            ext = int(np.ceil(o.radius)) + 1
            x0, x1 = max(0, int(cx) - ext), min(SIZE, int(cx) + ext + 1)
            y0, y1 = max(0, int(cy) - ext), min(SIZE, int(cy) + ext + 1)
            dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]  # broadcasting: no full grids
            dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
            m = shape_mask(o.shape, dx, dy, o.radius, o.spin[0] + o.spin[1] * f / FPS)
            for c, value in enumerate(COLOURS[o.colour]):  # per channel: 8x faster than an RGB tuple
                frames[k, y0:y1, x0:x1, c][m] = value
            owner[k, y0:y1, x0:x1][m] = i
    return frames, owner


# -- sounds -------------------------------------------------------------------------------------------
_FADE = 80  # samples (5 ms) of raised-cosine fade where a source starts or stops, inside its sounding second


def object_sound(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """The shape's sound over the whole clip (NUM_SAMPLES float32, peak ~0.25), before gating."""
    t = np.arange(NUM_SAMPLES) / SAMPLE_RATE
    if shape is Shape.circle:
        gate = (np.sin(2 * np.pi * 4 * t) > -0.2).astype(np.float64)
        gate = np.convolve(gate, np.hanning(161) / np.hanning(161).sum(), mode="same")  # soft beep edges
        y = np.sin(2 * np.pi * 1000 * t) * gate
    elif shape is Shape.square:
        y = np.sin(2 * np.pi * 220 * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 3 * t))
    elif shape is Shape.triangle:
        y = np.sin(2 * np.pi * 2400 * t + (40 / 5) * np.sin(2 * np.pi * 5 * t))  # +-40 Hz vibrato
    elif shape is Shape.diamond:
        tau = np.mod(t, 0.125) / 0.125  # 8 chirps per second, 1450 -> 1750 Hz
        phase = 2 * np.pi * 0.125 * (1450 * tau + 150 * tau**2)
        y = np.sin(phase) * np.sin(np.pi * tau) ** 2
    else:
        spec = np.fft.rfft(rng.standard_normal(NUM_SAMPLES))
        freqs = np.fft.rfftfreq(NUM_SAMPLES, 1 / SAMPLE_RATE)
        spec[(freqs < 5100) | (freqs > 6900)] = 0
        y = np.fft.irfft(spec, n=NUM_SAMPLES)
        y /= np.abs(y).max() + 1e-9
    return (0.25 * y).astype(np.float32)


def sound_gate(sounding: tuple[bool, ...]) -> np.ndarray:
    """Per-sample gain: 1 in sounding seconds, 0 in silent ones, with short fades kept inside the sounding
    second, so a silent second is exactly silent."""
    g = np.repeat(np.asarray(sounding, dtype=np.float32), SAMPLE_RATE)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, _FADE))).astype(np.float32)
    for s, on in enumerate(sounding):
        if not on:
            continue
        a = s * SAMPLE_RATE
        if s == 0 or not sounding[s - 1]:
            g[a:a + _FADE] = ramp
        if s == SECONDS - 1 or not sounding[s + 1]:
            g[a + SAMPLE_RATE - _FADE:a + SAMPLE_RATE] = ramp[::-1]
    return g


def render_audio(spec: ClipSpec) -> np.ndarray:
    """(NUM_SAMPLES,) float32 mono mix of the sounding objects plus a faint noise floor."""
    rng = np.random.default_rng([spec.seed, spec.index, 0xA0D])
    mix = 0.002 * rng.standard_normal(NUM_SAMPLES).astype(np.float32)
    for o in spec.objects:
        mix += object_sound(o.shape, rng) * sound_gate(o.sounding)
    return np.clip(mix, -1.0, 1.0)


# -- ground truth -------------------------------------------------------------------------------------
def position_phrase(x: float, y: float) -> str:
    """'on the left', 'at the top', 'in the bottom right', 'in the centre' from a centre point."""
    col = ("left", "centre", "right")[min(2, int(3 * x / SIZE))]
    row = ("top", "middle", "bottom")[min(2, int(3 * y / SIZE))]
    if row == "middle":
        return "in the centre" if col == "centre" else f"on the {col}"
    return f"at the {row}" if col == "centre" else f"in the {row} {col}"


def caption(o: ObjectSpec, x: float, y: float) -> str:
    article = "an" if o.name[0] in "aeiou" else "a"
    return f"{article} {o.name} {position_phrase(x, y)} is {SHAPES[o.shape].verb}"


def timestamp(seed: int) -> datetime:
    """The fixed 'updated_at' of a run: reproducible, and different runs still get different times."""
    return _EPOCH + timedelta(seconds=int(seed) % (10 * 365 * 86400))


def build_annotation(spec: ClipSpec, masks: list[list[rle_mod.RLEDict | None]],
                     centres: list[np.ndarray]) -> Annotation:
    """The clip's Annotation from per-object, per-frame RLEs (None where silent)."""
    agent = Agent(kind=AgentKind.program, name=AGENT_NAME, version=SYNTH_VERSION,
                  params={"seed": spec.seed, "index": spec.index})
    sources = []
    for i, o in enumerate(spec.objects):
        src = SoundSource(id=o.id, category=o.shape.value, name=o.name, masks=[None] * NUM_FRAMES)
        src.set_masks([None if m is None else RLE(**m) for m in masks[i]], by=AGENT_KEY)
        caps: list[str | None] = []
        for s in range(SECONDS):
            cx, cy = centres[i][s * FPS:(s + 1) * FPS].mean(axis=0)
            caps += [caption(o, float(cx), float(cy)) if o.sounding[s] else None] * FPS
        src.set_frame_captions(caps, by=AGENT_KEY)
        sources.append(src)
    return Annotation(clip_id=spec.clip_id, status=ClipStatus.auto, sources=sources,
                      agents={AGENT_KEY: agent}, note=f"synthetic, seed {spec.seed}: exact ground truth",
                      updated_at=timestamp(spec.seed))


def iter_seconds(spec: ClipSpec) -> Iterator[tuple[np.ndarray, list[list[rle_mod.RLEDict | None]]]]:
    """Per second: the frames and, per object, the RLEs of its 30 frames (None while silent)."""
    tex, speed = background(spec)
    centres = [o.centres() for o in spec.objects]
    for s in range(SECONDS):
        frames, owner = render_second(spec, s, tex, speed, centres)
        rles: list[list[rle_mod.RLEDict | None]] = []
        for i, o in enumerate(spec.objects):
            if not o.sounding[s]:
                rles.append([None] * FPS)
                continue
            mine = owner == i
            seen = mine.any(axis=(1, 2))  # fully covered by another object: absent (null), never an empty mask
            rles.append([r if v else None for r, v in zip(rle_mod.encode_many(mine), seen, strict=True)])
        yield frames, rles


class RenderedClip(NamedTuple):
    frames: np.ndarray        # (300, 512, 512, 3) uint8
    audio: np.ndarray         # (160000,) float32
    annotation: Annotation


def render_clip(spec: ClipSpec) -> RenderedClip:
    """Everything of one clip in memory (no files): for tests and benchmarks. ~240 MB of frames."""
    chunks, per_obj = [], [[] for _ in spec.objects]  # type: list[np.ndarray], list[list]
    for frames, rles in iter_seconds(spec):
        chunks.append(frames)
        for i, r in enumerate(rles):
            per_obj[i] += r
    ann = build_annotation(spec, per_obj, [o.centres() for o in spec.objects])
    return RenderedClip(np.concatenate(chunks), render_audio(spec), ann)


# -- files --------------------------------------------------------------------------------------------
def ffmpeg_cmd(out: Path, wav: Path, threads: int = 0, preset: Preset = Preset.veryfast) -> list[str]:
    """ffmpeg reading raw RGB frames on stdin and the wav, writing H.264 + AAC mp4 (faststart)."""

    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "pipe:0",
            "-i", str(wav), "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", Preset(preset).value, "-crf", "23", "-pix_fmt", "yuv420p",
            "-threads", str(threads), "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", str(SAMPLE_RATE),
            "-frames:v", str(NUM_FRAMES), "-map_metadata", "-1", "-movflags", "+faststart", str(out)]


def write_clip_media(spec: ClipSpec, mp4: Path, wav: Path, threads: int = 0,
                     preset: Preset = Preset.veryfast) -> Annotation:
    """Write the wav, then the mp4 (frames piped into ffmpeg, audio from the wav); return the annotation.

    Both files are written atomically; the caller writes the annotation last, marking the clip complete.
    """

    write_wav(wav, render_audio(spec), SAMPLE_RATE)
    per_obj: list[list[rle_mod.RLEDict | None]] = [[] for _ in spec.objects]
    # stderr to a file, not a pipe: a chatty ffmpeg could otherwise block while we block writing frames.
    with atomic_path(mp4) as tmp, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(ffmpeg_cmd(tmp, wav, threads, preset), stdin=subprocess.PIPE, stderr=log)
        assert proc.stdin is not None
        try:
            for frames, rles in iter_seconds(spec):
                proc.stdin.write(memoryview(frames))  # C-contiguous: no copy
                for i, r in enumerate(rles):
                    per_obj[i] += r
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg died: its stderr below says why
        if proc.wait() != 0:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"{mp4}: ffmpeg failed ({proc.returncode}): {err.strip()[-500:]}")
    return build_annotation(spec, per_obj, [o.centres() for o in spec.objects])


def _make_one(mp4: Path, wav: Path, seed: int, index: int, threads: int, preset: Preset) -> tuple[int, str, float]:
    """Process-pool task: write one clip's media (paths from DatasetRoot); return (index, annotation JSON, s)."""
    t0 = time.perf_counter()
    ann = write_clip_media(clip_spec(seed, index), mp4, wav, threads, preset)
    return index, ann.model_dump_json(), time.perf_counter() - t0


# -- a dataset root -----------------------------------------------------------------------------------
@dataclass
class SynthRun:
    root: DatasetRoot
    made: int        # clips rendered in this run
    skipped: int     # complete clips found from an earlier run
    seconds: float

    @property
    def clips_per_second(self) -> float:
        return self.made / self.seconds if self.seconds > 0 else 0.0


def assign_splits(ids: list[str], seed: int, fractions: tuple[float, float, float]) -> dict[Split, list[str]]:
    """Shuffle (seeded) and cut; val and test get at least one clip each once there are 3 clips."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"--splits {fractions}: need three fractions >= 0 (train, val, test) summing to 1")
    n = len(ids)
    order = [ids[i] for i in np.random.default_rng([int(seed), n, 0x5B1]).permutation(n)]
    n_val = max(1, round(fractions[1] * n)) if n >= 3 else 0
    n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
    if n >= 3 and n_val + n_test >= n:  # keep at least one training clip
        n_val, n_test = 1, 1
    val, test = order[:n_val], order[n_val:n_val + n_test]
    return {Split.train: sorted(order[n_val + n_test:]), Split.val: sorted(val), Split.test: sorted(test)}


def _manifest(seed: int) -> Manifest:
    return Manifest(name=f"synthetic-seed{seed}", description=(
        "Procedural clips of moving shapes, each shape with its own sound; exact sound-source masks and "
        "captions (ra-ssu synth)."), license="CC0-1.0",
        categories=[Category(name=s.value, supercategory="shape") for s in Shape],
        sources=[Origin.synthetic.value], created_at=timestamp(seed))


def _open_or_create(path: Path, seed: int, ids: set[str]) -> DatasetRoot:
    if (path / MANIFEST).is_file():
        root = DatasetRoot.open(path)
        foreign = [r.clip_id for r in root.catalog.rows() if r.clip_id not in ids]
        if foreign:
            raise UserError(f"{path}: holds clips of another run (e.g. {foreign[0]}); resume with the same "
                            "--seed and at least as many --clips, or choose an empty folder")
        m = root.manifest  # an empty root made elsewhere: make sure it lists our categories and origin
        missing = [c for c in _manifest(seed).categories if c.name not in m.category_names()]
        if missing or Origin.synthetic.value not in m.sources:
            root.write_manifest(m.model_copy(update={
                "categories": [*m.categories, *missing],
                "sources": sorted({*m.sources, Origin.synthetic.value})}))
        return root
    return DatasetRoot.create(path, _manifest(seed))


def _complete(root: DatasetRoot, cid: str) -> bool:
    return (root.annotation_path(cid).is_file() and root.clip_path(cid).is_file()
            and root.audio_path(cid).is_file() and root.catalog.get(cid) is not None)


def _record(root: DatasetRoot, seed: int, index: int, ann_json: str) -> None:
    """Catalog row first, annotation last: an annotation on disk means the clip is complete."""
    spec = clip_spec(seed, index)
    root.catalog.upsert(CatalogRow(
        clip_id=spec.clip_id, origin=Origin.synthetic, category=spec.main_category,
        keywords=[o.shape.value for o in spec.objects], status=ClipStatus.collected,
        meta={"seed": seed, "index": index, "objects": [o.name for o in spec.objects],
              "synth_version": SYNTH_VERSION}), actor=AGENT_NAME, action="synth")
    root.write_annotation(Annotation.model_validate_json(ann_json), actor=AGENT_NAME)


def generate(path: str | Path, clips: int, seed: int,
             splits: tuple[float, float, float] = (0.7, 0.15, 0.15), workers: int = 1,
             progress: bool = False, preset: Preset = Preset.veryfast) -> SynthRun:
    """Write (or complete) a synthetic root of `clips` clips; returns the root and how long it took."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm import tqdm

    if clips < 1:
        raise UserError(f"--clips {clips}: need at least 1 clip")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    if workers < 1:
        raise UserError(f"--workers {workers}: need at least 1 worker")
    path = Path(path)
    ids = [clip_id(seed, i) for i in range(clips)]
    split_ids = assign_splits(ids, seed, splits)  # checks the fractions before any work
    root = _open_or_create(path, seed, set(ids))
    todo = [i for i, cid in enumerate(ids) if not _complete(root, cid)]
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), unit="clip", desc="ssu-synth", disable=not progress or not todo)
    if workers == 1 or len(todo) <= 1:
        for i in todo:
            _, ann_json, _ = _make_one(root.clip_path(ids[i]), root.audio_path(ids[i]), seed, i, 0, preset)
            _record(root, seed, i, ann_json)
            bar.update()
    else:
        import os

        threads = max(1, (os.cpu_count() or 1) // workers)  # ffmpeg threads per worker
        # spawn, not fork: the parent may hold torch threads or an sqlite connection.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futs = [pool.submit(_make_one, root.clip_path(ids[i]), root.audio_path(ids[i]), seed, i, threads, preset)
                    for i in todo]
            for fut in as_completed(futs):
                i, ann_json, _ = fut.result()
                _record(root, seed, i, ann_json)
                bar.update()
    bar.close()
    root.write_splits(split_ids)
    return SynthRun(root=root, made=len(todo), skipped=clips - len(todo), seconds=time.perf_counter() - t0)


def make_synthetic_root(path: str | Path, clips: int, seed: int,
                        splits: tuple[float, float, float] = (0.7, 0.15, 0.15), workers: int = 1,
                        progress: bool = False) -> DatasetRoot:
    """A complete, valid dataset root of synthetic clips with exact ground truth (resumes a partial one)."""
    return generate(path, clips, seed, splits, workers, progress).root
