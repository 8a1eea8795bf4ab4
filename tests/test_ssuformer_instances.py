"""SSUFormer-I (model.instances): matching, the union map, per-frame targets, the decoder's refinement stages
and deep supervision, losses that reach every weight, training / resume / DDP exactness on the synthetic root,
and the summary of the paper_i config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_ssuformer_train import SMALL, _ddp_worker, _free_port, train_losses

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.errors import UserError
from schemas.models import Annotation, SoundSource
from ssuformer.config import LossConfig, load_config
from ssuformer.instances import iou_targets, joined_captions, match, suppress_duplicates, union_probs

INSTANCE = ["model.instances=true", "model.audio_queries=3", "model.mask_refine=1"]


def small_i(cache: Path, *extra: str):
    return load_config("tiny", [*SMALL, *INSTANCE, f"data.cache={cache}", *extra])


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ssu-i-cache")


def test_configs():
    cfg = load_config("paper_i")
    recipe = ["model.instances=true", "model.mask_refine=2"]
    assert cfg.model.instances and cfg.model == load_config("paper", recipe).model
    # the instance recipe is the default of the instance settings: an instance run needs no more switches
    assert (cfg.model.instance_nms, cfg.loss.deep_supervision, cfg.loss.score_target) == (0.5, 1.0, "iou")
    bench = load_config("bench_i")
    assert (bench.model, bench.loss) == (load_config("bench", recipe).model, load_config("bench", recipe).loss)
    with pytest.raises(UserError, match="model.instances needs model.segmentation"):
        load_config("ssu_d", ["model.instances=true"])
    with pytest.raises(UserError, match="model.mask_refine is for instance mode"):
        load_config("paper", ["model.mask_refine=2"])


def test_checkpoints_from_before_the_instance_recipe_keep_their_behaviour():
    from ssuformer.config import config_from_checkpoint

    saved = load_config("paper_i").model_dump(mode="json")
    assert config_from_checkpoint(saved) == load_config("paper_i")  # saved settings win
    for part, key in (("model", "instance_nms"), ("loss", "score_target"), ("loss", "deep_supervision")):
        del saved[part][key]
    old = config_from_checkpoint(saved)
    assert (old.loss.score_target, old.loss.deep_supervision) == ("matched", 0.0)
    assert old.model.instance_nms == 0.5  # the IoU at which the tracker already dropped their duplicates
    semantic = load_config("paper").model_dump(mode="json")
    del semantic["loss"]["score_target"]
    assert config_from_checkpoint(semantic).loss.score_target == "iou"  # not an instance model: the default


def test_match_assigns_each_target_to_the_query_that_predicts_it():
    h = w = 8
    targets = torch.zeros(2, 3, h, w)
    targets[0, 0, :4, :4] = 1   # frame 0: two sources
    targets[0, 1, 4:, 4:] = 1
    targets[1, 0, :, :2] = 1    # frame 1: one source
    valid = torch.tensor([[True, True, False], [True, False, False]])
    logits = torch.full((2, 4, h, w), -8.0)
    logits[0, 2][targets[0, 0] > 0] = 8   # query 2 draws source 0, query 0 draws source 1
    logits[0, 0][targets[0, 1] > 0] = 8
    logits[1, 3][targets[1, 0] > 0] = 8
    scores = torch.zeros(2, 4)
    pairs = match(logits, scores, targets, valid, LossConfig())
    got = sorted(zip(pairs.frame.tolist(), pairs.query.tolist(), pairs.target.tolist(), strict=True))
    assert got == [(0, 0, 1), (0, 2, 0), (1, 3, 0)]
    # the class cost breaks a tie between two identical masks: the query that says "sounding" wins
    logits[1, 1] = logits[1, 3]
    scores[1, 1], scores[1, 3] = 4.0, -4.0
    pairs = match(logits, scores, targets, valid, LossConfig())
    assert (1, 1, 0) in set(zip(pairs.frame.tolist(), pairs.query.tolist(), pairs.target.tolist(), strict=True))
    none = match(logits, scores, targets, torch.zeros_like(valid), LossConfig())
    assert len(none) == 0


def test_union_is_the_probability_that_some_sounding_source_covers_the_pixel():
    probs = torch.tensor([[[[1.0, 0.5]], [[0.0, 0.5]]]])  # (N=1, Q=2, 1, 2)
    scores = torch.tensor([[1.0, 0.5]])
    u = union_probs(probs, scores)
    assert torch.allclose(u, torch.tensor([[[1.0, 1 - 0.5 * 0.75]]]))
    assert torch.equal(union_probs(probs, torch.zeros(1, 2)), torch.zeros(1, 1, 2))  # nothing sounds: empty


def test_iou_targets_score_every_duplicate_of_a_source():
    probs = torch.zeros(2, 3, 4, 4)
    probs[0, 0, :2] = 0.9      # source 0 exactly
    probs[0, 1, :2] = 0.8      # a duplicate of it: the same target (matching would give it 0)
    probs[0, 2, :1] = 0.9      # half of it
    probs[1, 0, 2:] = 0.9      # frame 1 has no source
    targets = torch.zeros(2, 2, 4, 4)
    targets[0, 0, :2] = 1
    targets[0, 1, 2:] = 1      # not a valid target: ignored
    valid = torch.tensor([[True, False], [False, False]])
    got = iou_targets(probs, targets, valid)
    assert torch.allclose(got, torch.tensor([[1.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))


def test_suppress_duplicates_keeps_the_best_of_overlapping_masks():
    probs = torch.zeros(1, 4, 4, 4)
    probs[0, 0, :2] = 1
    probs[0, 1, :2] = 1
    probs[0, 1, 2, :2] = 1      # IoU 8/10 with query 0
    probs[0, 2, 2:] = 1         # elsewhere
    probs[0, 3, :2, :1] = 1     # inside query 1's (kept) mask: IoU 2/10
    scores = torch.tensor([[0.7, 0.9, 0.6, 0.8]])
    assert torch.allclose(suppress_duplicates(probs, scores, 0.5), torch.tensor([[0.0, 0.9, 0.6, 0.8]]))
    assert torch.equal(suppress_duplicates(probs, scores, 1.0), scores)
    assert torch.allclose(suppress_duplicates(probs, scores, 0.2), torch.tensor([[0.0, 0.9, 0.6, 0.0]]))


def test_joined_captions_go_left_to_right_like_the_contract():
    probs = torch.zeros(1, 4, 8, 8)
    probs[0, 0, :, 6:] = 1   # right
    probs[0, 1, :, :2] = 1   # left
    probs[0, 2, :, 3:5] = 1  # centre, but not sounding
    probs[0, 3] = 0.4        # sounding but no pixel above 0.5: no region, so prediction drafts no source
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.9]])
    tokens = torch.tensor([[[1], [2], [3], [4]]])
    words = {1: "right one", 2: "left one", 3: "silent one", 4: "nowhere one"}
    out = joined_captions(probs, scores, tokens, 0.5, lambda ids: words[ids[0]], " and ")
    assert out == ["left one and right one"]


def test_mask_decoder_stages_and_refinement():
    from ssuformer.mask_decoder import MaskDecoder

    torch.manual_seed(0)
    n, q, d, s = 2, 3, 16, 8
    queries, mem, mpos = torch.randn(n, q, d), torch.randn(n, 5, d), torch.randn(n, 5, d)
    levels = [torch.randn(n, d, s // 2 ** i, s // 2 ** i) for i in range(4)]
    dec = MaskDecoder(d, 2, layers=2, queries=q, dropout=0.0, refine=2, stages=True).eval()
    out = dec(queries, levels, mem, mpos)
    # deep supervision: layer 1, layer 2 (what refinement stage 1 reads), stage 1; stage 2 is the output itself
    assert len(out["aux"]) == 3
    assert all(m.shape == (n, q, s, s) for m in out["aux"])
    assert not torch.equal(out["aux"][-1], out["query_masks"])
    # a refinement stage reads the pixels under the query's own mask: another mask, another query
    stage, qpos = dec.refine[0], dec.query_pos[None].expand(n, -1, -1)
    pix = torch.randn(n, d, s, s)
    left, right = torch.full((n, q, s, s), -9.0), torch.full((n, q, s, s), -9.0)
    left[..., : s // 2], right[..., s // 2:] = 9.0, 9.0
    assert not torch.allclose(stage(queries, qpos, left, pix), stage(queries, qpos, right, pix))
    # the paper's decoder is unchanged: no refinement weights (its checkpoints load), no stages returned
    plain = MaskDecoder(d, 2, layers=2, queries=q, dropout=0.0)
    assert "aux" not in plain(queries, levels, mem, mpos)
    assert not [k for k in plain.state_dict() if k.startswith("refine.")]


def _source(i: int, frames: dict[int, np.ndarray], text: str) -> SoundSource:
    src = SoundSource(id=i, category="x", masks=[None] * NUM_FRAMES)
    src.set_masks([rle_mod.encode(frames[f]) if f in frames else None for f in range(NUM_FRAMES)], by="t")
    src.set_frame_captions([text if f in frames else None for f in range(NUM_FRAMES)], by="t")
    return src


def test_instance_targets_per_frame():
    from schemas.models import Agent, AgentKind
    from ssuformer.data import instance_targets

    big = np.zeros((SIZE, SIZE), bool)
    big[:200, :200] = True
    speck = np.zeros((SIZE, SIZE), bool)
    speck[300, 300] = True  # one pixel: vanishes at the model's size
    other = np.zeros((SIZE, SIZE), bool)
    other[300:, 300:] = True
    ann = Annotation(clip_id="c", agents={"t": Agent(kind=AgentKind.program, name="test")}, sources=[
        _source(5, {0: big, 1: big}, "a big one"), _source(2, {0: speck, 1: other}, "a small one"),
        _source(9, {1: big}, "a third one")])
    masks, valid, caps, dropped = instance_targets(ann, [0, 1], 32, slots=2)
    assert masks.shape == (2, 2, 32, 32) and valid.tolist() == [[True, False], [True, True]]
    assert caps[0] == ["a big one", None]          # the speck is no target
    assert caps[1] == ["a small one", "a big one"]  # id order: 2, 5; source 9 finds no slot
    assert dropped == 1 and masks[1, 0].sum() > 0 and masks[0, 1].sum() == 0


def _batch(cfg, tok, ds, items=(0, 1)):
    from ssuformer.batch import collate

    return collate([ds[i] for i in items])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["iou", "matched"])
def test_losses_reach_every_weight_and_predict_shapes(synth_root, cache, target):
    from ssuformer.data import ClipDataset
    from ssuformer.model import SSUFormer
    from ssuformer.trainer import caption_tokenizer

    cfg = small_i(cache, f"loss.score_target={target}")
    tok, _ = caption_tokenizer(synth_root, cfg)
    torch.manual_seed(0)
    model = SSUFormer(cfg.model, tok, loss=cfg.loss)
    ds = ClipDataset(synth_root, "train", cfg, tok)
    batch = _batch(cfg, tok, ds)
    assert batch["inst_masks"].shape == (2, cfg.data.frames, 3, 32, 32) and batch["inst_valid"].any()
    for silent in (False, True):
        if silent:  # no source has a caption: the all-PAD row keeps the caption weights in the graph (DDP)
            batch = dict(batch, inst_has_caption=torch.zeros_like(batch["inst_has_caption"]))
        model.zero_grad()
        out = model(batch)
        parts = model.losses(out, batch, cfg.loss)
        assert all(torch.isfinite(v) for v in parts.values()), parts
        assert {"dice", "inst_mask", "cls", "aux", "text", "clip", "loss"} <= set(parts)
        assert len(out["aux"]) == cfg.model.mask_layers - 1 + cfg.model.mask_refine
        parts["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, missing
    model.eval()
    pred = model.predict(batch)
    b, t, q, s = 2, cfg.data.frames, 3, 32
    assert pred["inst_probs"].shape == (b, t, q, s, s) and pred["inst_scores"].shape == (b, t, q)
    assert pred["inst_tokens"].shape == (b, t, q, cfg.model.max_caption_tokens)
    low = pred["inst_scores"] < cfg.model.instance_threshold
    assert (pred["inst_tokens"][low] == 0).all()  # PAD rows for queries that do not sound
    # the union is every query's noisy-OR; the instance scores are those after mask NMS
    with torch.no_grad():
        raw = model.segment(model.encode(batch["images"], batch["audio"]), (s, s))
    assert torch.allclose(pred["probs"], union_probs(raw["inst_probs"], raw["inst_scores"]).view(b, t, s, s))
    assert torch.equal(pred["inst_scores"].flatten(0, 1),
                       suppress_duplicates(raw["inst_probs"], raw["inst_scores"], cfg.model.instance_nms))


@pytest.fixture(scope="module")
def run_i(synth_root, cache, tmp_path_factory) -> Path:
    from ssuformer.trainer import train

    out = tmp_path_factory.mktemp("run-i") / "a"
    train(synth_root.path, small_i(cache, "train.epochs=2"), out, seed=3, progress=False)
    train(synth_root.path, small_i(cache, "train.epochs=3"), out, resume="auto", seed=3, progress=False)
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_train_resume_equals_uninterrupted(synth_root, cache, run_i, tmp_path):
    import csv

    from ssuformer.trainer import train

    losses = train_losses(run_i)
    assert len(losses) == 3 and losses[-1] < losses[0]
    rows = [r for r in csv.DictReader(open(run_i / "log.csv")) if r["phase"] == "val"]
    assert rows and rows[-1]["inst_mask"] and rows[-1]["cls"] and rows[-1]["miou"]
    out = tmp_path / "b"
    train(synth_root.path, small_i(cache, "train.epochs=3", "train.run_val=false"), out, seed=3, progress=False)
    assert train_losses(out) == pytest.approx(losses, rel=1e-5)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_ddp_two_processes_equal_one_process(synth_root, cache, tmp_path):
    """Matching happens per frame and every instance loss is a per-frame mean: 2 ranks = 1 process."""
    import torch.multiprocessing as mp

    from ssuformer.trainer import train

    single = tmp_path / "single"
    train(synth_root.path, small_i(cache, "train.epochs=1", "train.run_val=false"), single, seed=5, progress=False)
    ddp = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(synth_root.path), str(cache), str(ddp), tuple(INSTANCE)),
             nprocs=2, join=True)
    one, two = train_losses(single), train_losses(ddp)
    assert len(one) == len(two) == 1
    assert two[0] == pytest.approx(one[0], rel=1e-4)


@pytest.mark.slow
def test_summary_of_paper_i():
    from typer.testing import CliRunner

    from ssuformer.train_cli import app

    r = CliRunner().invoke(app, ["summary", "--config", "paper_i"])
    assert r.exit_code == 0, r.output
    assert "conditioner" in r.output and "FLOPs per sample" in r.output
