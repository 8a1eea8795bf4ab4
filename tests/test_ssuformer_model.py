"""SSUFormer modules: config loading, shapes, every config switch, MCM/RCC gradients, MoHE mixing, loaders."""

from __future__ import annotations

import pytest
import torch

from schemas.errors import UserError
from ssuformer.config import available_configs, load_config
from ssuformer.model import SSUFormer
from ssuformer.tokenizer import EOS, PAD, CaptionTokenizer

SMALL = [
    "data.image_size=32", "data.frames=2", "data.workers=0",
    "model.hidden=32", "model.heads=2", "model.fusion_blocks=1", "model.audio_queries=2",
    "model.mask_layers=1", "model.caption_layers=1", "model.max_caption_tokens=12", "model.vocab_size=80",
    "model.visual.tiny_dims=[8,16,32,64]", "model.audio.tiny_channels=[4,8]",
    "model.clip.tiny_hidden=16", "model.clip.tiny_image_size=16",
]
CAPTIONS = ["a red circle on the left is beeping", "a blue square in the centre is humming",
            "a green star at the top is hissing"]


@pytest.fixture(scope="module")
def tok() -> CaptionTokenizer:
    return CaptionTokenizer.train(CAPTIONS, 80)


def make_batch(cfg, tok, b: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    t, s, L = cfg.data.frames, cfg.data.image_size, cfg.model.max_caption_tokens
    tokens = torch.full((b, t, L), PAD)
    for i in range(b):
        for j in range(t):
            ids = tok.encode(CAPTIONS[(i + j) % 3], L)
            tokens[i, j, :len(ids)] = torch.tensor(ids)
    masks = torch.zeros(b, t, s, s)
    masks[..., s // 4: s // 2, s // 4: s // 2] = 1
    return {"images": torch.rand(b, t, 3, s, s, generator=g), "audio": torch.randn(b, t, 1, 96, 64, generator=g),
            "masks": masks, "tokens": tokens}


def build(tok, extra=(), expert_dim=None, name="tiny"):
    cfg = load_config(name, [*SMALL, *extra])
    torch.manual_seed(0)
    return SSUFormer(cfg.model, tok, expert_dim=expert_dim), cfg


def test_every_config_loads_and_validates():
    names = available_configs()
    assert {"paper", "tiny", "ssu_s", "ssu_d", "baseline", "focal", "mcm", "rcc", "mohe"} <= set(names)
    for n in names:
        load_config(n)
    paper = load_config("paper")
    assert (paper.train.lr, paper.train.batch_size, paper.train.epochs, paper.loss.alpha) == (2e-5, 4, 60, 0.25)
    assert paper.model.fusion_blocks == 3 and paper.model.mohe and paper.model.visual.arch == "pvt_v2_b5"
    assert load_config("baseline").loss.text == "ce" and not load_config("baseline").model.mcm
    assert load_config("mohe").model == paper.model  # the ladder's top equals the full model


def test_config_errors_and_overrides(tmp_path):
    assert load_config("tiny", ["model.fusion_blocks=5"]).model.fusion_blocks == 5
    with pytest.raises(UserError, match="model.no_such_key"):
        load_config("tiny", ["model.no_such_key=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny\ntrain: {epochs: 2, typo: 1}\n")
    with pytest.raises(UserError, match="train.typo"):
        load_config(str(bad))
    with pytest.raises(UserError, match="need both"):
        load_config("tiny", ["model.segmentation=false"])  # MCM without a mask head
    with pytest.raises(UserError, match="no such config"):
        load_config("nope")


@pytest.mark.slow
def test_shapes_forward_and_decoding(tok):
    model, cfg = build(tok)
    batch = make_batch(cfg, tok)
    n, s, L = 2 * cfg.data.frames, cfg.data.image_size, cfg.model.max_caption_tokens
    out = model(batch)
    assert out["probs"].shape == (n, s, s) and 0 <= float(out["probs"].min()) <= float(out["probs"].max()) <= 1
    assert out["query_masks"].shape == (n, cfg.model.audio_queries, s // 4, s // 4)
    used = int((batch["tokens"] != 0).sum(-1).max())  # teacher forcing stops after the longest caption (PAD = 0)
    assert used < L and out["logits"].shape == (n, used, tok.vocab_size)
    assert out["region"].ndim == 2 and out["region"].shape[0] == n
    parts = model.losses(out, batch, cfg.loss)
    assert set(parts) == {"dice", "bce", "text", "ada", "clip", "loss"}
    assert torch.isclose(parts["ada"], 0.25 * (parts["dice"] + parts["bce"]) + 0.75 * parts["text"])
    model.eval()
    for beam in (1, 3):
        pred = model.predict(batch, beam=beam)
        assert pred["probs"].shape == (2, cfg.data.frames, s, s)
        assert pred["tokens"].shape[:2] == (2, cfg.data.frames) and pred["tokens"].shape[2] <= L


@pytest.mark.parametrize("name,keys", [
    ("ssu_s", {"dice", "ada", "loss"}),
    ("ssu_d", {"text", "ada", "loss"}),
    ("baseline", {"dice", "text", "ada", "loss"}),
    ("focal", {"dice", "text", "ada", "loss"}),
    ("mcm", {"dice", "text", "ada", "loss"}),
    ("rcc", {"dice", "text", "ada", "clip", "loss"}),
])
def test_config_switches(tok, name, keys):
    # the ablation files extend `paper`; swap in the tiny parts so they run here
    tiny = ["model.audio.tiny=true", "model.audio.weights=none", "model.visual.arch=pvt_v2_b0",
            "model.visual.weights=none", "model.clip.tiny=true", "loss.seg_bce=0"]
    model, cfg = build(tok, tiny, name=name)
    assert (model.mask_decoder is not None) == cfg.model.segmentation
    assert (model.caption_decoder is not None) == cfg.model.caption
    assert (model.mcm is not None) == cfg.model.mcm and model.mohe is None
    batch = make_batch(cfg, tok)
    parts = model.losses(model(batch), batch, cfg.loss)
    assert set(parts) == keys
    if name in ("baseline", "focal"):  # Focal down-weights tokens: it must differ from plain CE on the same model
        other = "focal" if name == "baseline" else "ce"
        cfg2 = load_config(name, [*SMALL, *tiny, f"loss.text={other}"])
        assert not torch.isclose(model.losses(model(batch), batch, cfg2.loss)["text"], parts["text"])


def _mask_head_grad(model) -> float:
    g = [p.grad for p in model.mask_decoder.mask_embed.parameters() if p.grad is not None]
    return float(sum(x.abs().sum() for x in g)) if g else 0.0


@pytest.mark.slow
def test_mcm_gradient_reaches_mask_head(tok):
    for mcm, expect in ((True, True), (False, False)):
        model, cfg = build(tok, [f"model.mcm={str(mcm).lower()}", "model.rcc=false"])
        batch = make_batch(cfg, tok)
        model.losses(model(batch), batch, cfg.loss)["text"].backward()  # caption loss only
        assert (_mask_head_grad(model) > 0) == expect


def test_rcc_alone_moves_mask_head(tok):
    model, cfg = build(tok, ["model.mcm=false", "model.rcc=true"])
    batch = make_batch(cfg, tok)
    before = [p.detach().clone() for p in model.mask_decoder.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    parts = model.losses(model(batch), batch, cfg.loss)
    parts["clip"].backward()  # L_clip alone
    assert _mask_head_grad(model) > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.caption_decoder.parameters())
    assert all(p.grad is None for p in model.clip.parameters())  # CLIP stays frozen
    opt.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.mask_decoder.parameters(), strict=True))


@pytest.mark.slow
def test_mohe_router_mixes_cached_expert_features(tok):
    model, cfg = build(tok, ["model.mohe=true", "model.expert.layers=[-1,-2]", "model.expert.tokens=3"],
                       expert_dim=24)
    batch = make_batch(cfg, tok)
    g = torch.Generator().manual_seed(1)
    batch["expert"] = torch.randn(2, cfg.data.frames, 2, 3, 24, generator=g)
    out = model(batch)
    w = model.mohe.last_weights
    assert w.shape == (2 * cfg.data.frames, out["logits"].shape[1], 3)  # the used caption columns
    assert torch.allclose(w.sum(-1), torch.ones_like(w[..., 0]))
    assert bool((w[..., 1:] > 0.01).all())  # the expert levels carry weight
    other = dict(batch, expert=batch["expert"].flip(0))  # another clip's expert features
    assert not torch.allclose(model(other)["logits"], out["logits"])
    model.losses(out, batch, cfg.loss)["text"].backward()
    assert model.mohe.router.weight.grad.abs().sum() > 0
    assert model.mohe.proj[0][1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expert"):
        model({k: v for k, v in batch.items() if k != "expert"})


def test_tokenizer_round_trip(tok):
    ids = tok.encode(CAPTIONS[0], 40)
    assert ids[-1] == EOS and tok.decode(ids) == CAPTIONS[0]
    assert CaptionTokenizer.from_json(tok.to_json()).encode(CAPTIONS[1], 40) == tok.encode(CAPTIONS[1], 40)
    assert len(tok.encode(CAPTIONS[0], 4)) == 4


def test_each_frame_hears_its_own_second():
    """A frame's audio example is its second's: at 9.5 s it holds second 9, not the end of second 8
    (back-to-back 0.96 s VGGish examples would give it 0.36 s of second 8), and the first frame of a
    second hears that second, not the one before."""
    import numpy as np

    from ssuformer.data import frame_example, log_mel

    sr = 16000
    wav = np.zeros(10 * sr, np.float32)
    t = np.arange(sr) / sr
    wav[8 * sr:9 * sr] = 0.5 * np.sin(2 * np.pi * 1000 * t)  # a 1 kHz tone in second 8 only
    mel = log_mel(wav, sr)
    assert mel.shape == (998, 64)
    loud = lambda f: float(frame_example(mel, f)[0].max())  # noqa: E731
    quiet = float(mel.min()) + 1.0
    assert min(loud(240), loud(255), loud(269)) > quiet + 5  # every frame of second 8: the tone
    assert max(loud(239), loud(270), loud(285)) < quiet  # the last frame before, the first after: silence
    assert frame_example(mel, 0).shape == (1, 96, 64)
    assert np.array_equal(frame_example(mel, 299)[0], mel[900:996])


def test_cutting_unused_pad_columns_keeps_the_losses(tok):
    """Teacher forcing stops after the batch's longest caption: token loss and L_clip equal those of the
    full padded length (causal decoding; PAD ignored; RCC reads each row up to its length)."""
    from ssuformer.losses import token_loss
    from ssuformer.model import used_tokens
    from ssuformer.rcc import rcc_loss

    model, cfg = build(tok)
    model.eval()
    batch = make_batch(cfg, tok)
    full = batch["tokens"].flatten(0, 1)
    cut = used_tokens(full)
    assert cut.shape[1] < full.shape[1] and (full[:, cut.shape[1]:] == 0).all()
    mem = torch.randn(full.shape[0], 7, cfg.model.hidden)
    dec = model.caption_decoder
    lf, lc = dec.logits(dec.shift(full), mem), dec.logits(dec.shift(cut), mem)
    assert torch.allclose(token_loss(lf, full, 2.0), token_loss(lc, cut, 2.0), atol=1e-6)
    region = torch.randn(full.shape[0], model.clip.clip.config.projection_dim)
    assert torch.allclose(rcc_loss(model.clip, region, lf, full), rcc_loss(model.clip, region, lc, cut), atol=1e-5)
    assert used_tokens(torch.zeros(3, 5, dtype=torch.long)).shape == (3, 1)
