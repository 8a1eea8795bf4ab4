"""The ra-ssu data contract: every other package reads and writes a dataset root through this one.

Public API (stable):
    constants   FPS, SIZE, SECONDS, NUM_FRAMES, SAMPLE_RATE, NUM_SAMPLES
    models      Manifest, CatalogRow, Annotation, SoundSource, CaptionSpan, Agent, ClipStatus, Origin, ...
    rle         encode, encode_many, decode, decode_many, area, union, iou
    spans       expand_spans, compress_to_spans
    root        DatasetRoot
    catalog     Catalog, Lease
    media       probe_video, read_frames, read_wav, ffmpeg_exe
    validate    validate_root
    errors      UserError
"""

from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SECONDS, SIZE
from schemas.errors import UserError

__all__ = ["FPS", "NUM_FRAMES", "NUM_SAMPLES", "SAMPLE_RATE", "SECONDS", "SIZE", "UserError"]
