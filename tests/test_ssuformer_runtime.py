"""Precision by GPU capability (mocked), per-rank seeds, temporal jitter, multi-source caption order and the
caption length limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from schemas.errors import UserError
from ssuformer.config import Precision
from ssuformer.runtime import autocast_dtype, seed_everything


@pytest.mark.parametrize("capability,precision,expect", [
    ((7, 0), Precision.auto, torch.float16),   # V100: bf16 would be emulated, so fp16 (+ GradScaler)
    ((7, 5), Precision.auto, torch.float16),   # T4
    ((8, 0), Precision.auto, torch.bfloat16),  # A100
    ((9, 0), Precision.auto, torch.bfloat16),  # H100
    ((7, 0), Precision.fp16, torch.float16),
    ((8, 6), Precision.bf16, torch.bfloat16),
    ((7, 0), Precision.fp32, None),
])
def test_autocast_dtype_follows_the_gpu_capability(monkeypatch, capability, precision, expect):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # true on V100 too (emulated)
    assert autocast_dtype(precision, torch.device("cuda", 0)) == expect
    assert autocast_dtype(precision, torch.device("cpu")) is None


def test_bf16_on_a_gpu_without_native_bf16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-32GB")
    with pytest.raises(UserError, match=r"train.precision bf16: Tesla V100-SXM2-32GB \(sm_70\) has no native bf16"):
        autocast_dtype(Precision.bf16, torch.device("cuda", 0))


def test_each_rank_draws_its_own_stream():
    draws = []
    for rank in (0, 1, 0):
        seed_everything(3, rank)
        draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])
    seed_everything(3)
    assert torch.equal(torch.rand(4), draws[0])  # rank 0 keeps the plain seed: one-process runs are unchanged


def test_jitter_draws_one_frame_per_slot_reproducibly(synth_root, tmp_path):
    from ssuformer.config import load_config
    from ssuformer.data import ClipDataset
    from ssuformer.sampling import jitter_frames, sample_frames

    rng = np.random.default_rng(0)
    draws = np.array([jitter_frames(10, rng) for _ in range(300)])
    for k in range(10):
        assert draws[:, k].min() == 30 * k and draws[:, k].max() == 30 * k + 29  # the whole second, no more
    cfg = load_config("tiny", ["data.frames=2", "data.image_size=32", f"data.cache={tmp_path}"])
    ds = ClipDataset(synth_root.path, "train", cfg, None, jitter=True, seed=1)
    assert ds[0]["frames"].tolist() == sample_frames(2) == [75, 225]  # an int index: the evaluation frames
    a, b = ds[(0, 0)], ds[(0, 1)]
    assert a["frames"].tolist() != b["frames"].tolist()
    assert torch.equal(ClipDataset(synth_root.path, "train", cfg, None, jitter=True, seed=1)[(0, 0)]["images"],
                       a["images"])  # same seed, epoch and clip: same frames in any process
    from schemas.media import read_frames

    f = a["frames"].tolist()
    expect = read_frames(synth_root.clip_path(ds.ids[0]), f, size=32)
    assert torch.equal(a["images"], torch.from_numpy(expect).permute(0, 3, 1, 2).float() / 255.0)
    assert not ClipDataset(synth_root.path, "train", cfg, None).jitter  # evaluation never jitters


def _two_sources(first_x: int, second_x: int):
    from schemas import rle
    from schemas.models import Annotation, SoundSource

    sources = []
    for sid, (x, text) in enumerate([(first_x, "a violin is playing"), (second_x, "a drum is beating")]):
        m = np.zeros((512, 512), bool)
        m[200:260, x:x + 60] = True
        src = SoundSource(id=sid, category="thing", masks=[rle.encode(m)] * 300)
        src.set_frame_captions([text] * 300)
        sources.append(src)
    return Annotation(clip_id="c0000001", sources=sources)


def test_captions_of_several_sources_read_left_to_right():
    from ssuformer.data import ordered_captions

    left_first = ordered_captions(_two_sources(400, 40), [0, 150])
    assert left_first == ["a drum is beating and a violin is playing"] * 2  # annotation order: violin first
    assert ordered_captions(_two_sources(40, 400), [0]) == ["a violin is playing and a drum is beating"]


def test_caption_limit_from_the_data_and_truncation_counted(synth_root, tmp_path):
    from ssuformer.config import load_config
    from ssuformer.data import ClipDataset, train_captions
    from ssuformer.tokenizer import CaptionTokenizer
    from ssuformer.trainer import caption_limit

    texts = train_captions(synth_root)
    tok = CaptionTokenizer.train(sorted(set(texts)), 100)
    longest = max(tok.length(t) for t in texts)
    n, line = caption_limit(tok, texts, "auto")
    assert n == longest and "covers 100.00 %" in line and f"max {longest}" in line
    n, line = caption_limit(tok, texts, 4)
    assert n == 4 and "covers 100.00 %" not in line
    cfg = load_config("tiny", ["data.frames=2", "data.image_size=32", f"data.cache={tmp_path}",
                               "model.max_caption_tokens=4"])
    ds = ClipDataset(synth_root.path, "train", cfg, tok)
    item = ds[0]
    cut = sum(tok.length(c) > 4 for c in item["captions"])
    assert int(item["truncated"]) == cut > 0 and item["tokens"].shape == (2, 4)
