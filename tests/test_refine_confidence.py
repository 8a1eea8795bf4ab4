"""Review that starts where the drafter is unsure (issue 31, the refine side): the queue's order by the least
confident stretch, the confidence the editor page receives, and the dashboard's per-drafter figures.

A drafted root is made cheaply: `draft_with_scores` turns ssu-synth's exact truth into what `ssu-annotate
--drafter` writes — agent `ssuformer` with a checkpoint's name and sha256, every span by it, and per-frame
`scores` (0.9, or a chosen low value on chosen frames). The truth's masks stand in for the model's masks and
the written scores for its confidence; the drafter itself is tested in tests/test_annotate_drafter.py.
"""

from __future__ import annotations

import pytest
from test_refine_support import ColourPropagator, ColourSegmenter, EchoCaptioner, make_users

from annotator.refine import confidence, dashboard, payload
from annotator.refine.auth import UserStore
from annotator.refine.confidence import QueueOrder
from annotator.refine.controller import Controller, RefineConfig
from annotator.refine.frames import FrameStore
from annotator.refine.tool_models import ToolModels
from schemas.constants import NUM_FRAMES
from schemas.models import Agent, AgentKind, Annotation, ClipStatus, SoundSource
from schemas.root import DatasetRoot

SURE = 0.9


def draft_with_scores(root: DatasetRoot, clip_id: str, low: dict[int, tuple[range, float]],
                      sha: str = "ab" * 32) -> Annotation:
    """Rewrite the clip's truth as a checkpoint drafter's draft: scores SURE where a source has a mask, the
    given value on the given frames of the given sources (where they have a mask)."""
    ann = root.read_annotation(clip_id)
    ann.agents = {**ann.agents, "ssuformer": Agent(kind=AgentKind.model, name="ssuformer", version=sha[:12], params={
        "checkpoint": "best.pt", "checkpoint_sha256": sha, "instance_nms": 0.5})}
    for src in ann.sources:
        src.set_masks(list(src.masks), by="ssuformer")
        src.set_frame_captions(src.frame_captions(), by="ssuformer")
        frames, value = low.get(src.id, (range(0), SURE))
        src.scores = [None if m is None else (value if f in frames else SURE) for f, m in enumerate(src.masks)]
    root.write_annotation(ann)
    return ann


def masked(ann: Annotation, source_id: int) -> list[int]:
    return [f for f, m in enumerate(ann.source(source_id).masks) if m is not None]


@pytest.fixture()
def ctl(synth_root_copy, tmp_path):
    users = UserStore(make_users(tmp_path / "users.toml"))
    c = Controller(synth_root_copy.path, users, ToolModels(ColourSegmenter(), ColourPropagator(), EchoCaptioner()),
                   RefineConfig(), FrameStore(cap_mb=128))
    for name in ("alice", "bob", "rita"):
        c.open_session(f"s-{name}", name)
    return c


def test_least_confident_stretch():
    src = SoundSource(id=0, category="circle", masks=[None] * NUM_FRAMES)
    ann = Annotation(clip_id="c_1", sources=[src])
    assert confidence.least_confident_stretch(ann) is None  # truth: no scores
    src.scores = [None] * 10 + [0.9] * 200 + [None] * 90
    src.scores[50] = 0.0  # one bad frame in a good second
    assert confidence.least_confident_stretch(ann) == pytest.approx(0.9 - 0.9 / 30)
    src.scores[100:130] = [0.3] * 30  # a bad second
    assert confidence.least_confident_stretch(ann) == pytest.approx(0.3)
    short = SoundSource(id=1, category="star", masks=[None] * NUM_FRAMES, scores=[0.6] * 5 + [None] * 295)
    assert confidence.least_confident_stretch(Annotation(clip_id="c_1", sources=[short])) == pytest.approx(0.6)


def test_queue_orders_by_least_confident_stretch(ctl):
    root = ctl.root
    a = root.read_annotation("synth_0_00001")
    draft_with_scores(root, "synth_0_00001", {0: (range(masked(a, 0)[0], NUM_FRAMES), 0.6)})
    b = root.read_annotation("synth_0_00003")
    draft_with_scores(root, "synth_0_00003", {b.sources[0].id: (range(NUM_FRAMES), 0.2)})
    draft_with_scores(root, "synth_0_00004", {})
    plain = [r["clip_id"] for r in ctl.queue("s-alice")]
    assert plain == sorted(plain) and "least sure" not in ctl.queue("s-alice")[0]
    rows = ctl.queue("s-alice", order=QueueOrder.unsure)
    unscored = [c for c in plain if c not in {"synth_0_00001", "synth_0_00003", "synth_0_00004"}]
    assert [r["clip_id"] for r in rows] == ["synth_0_00003", "synth_0_00001", "synth_0_00004", *unscored]
    assert [r["least sure"] for r in rows[:3]] == ["0.20", "0.60", "0.90"] and rows[3]["least sure"] == ""
    # filters still apply, and the order follows edits (the cache is keyed by the annotation file's version)
    cat = rows[0]["category"]
    assert {r["category"] for r in ctl.queue("s-alice", category=cat, order=QueueOrder.unsure)} == {cat}
    draft_with_scores(root, "synth_0_00003", {})
    assert [r["clip_id"] for r in ctl.queue("s-alice", order=QueueOrder.unsure)][:3] == \
        ["synth_0_00001", "synth_0_00003", "synth_0_00004"]
    # "Next clip" in this order takes the least sure free clip; the next user gets the next one
    assert ctl.next_clip_id("s-alice", order=QueueOrder.unsure) == "synth_0_00001"
    assert ctl.next_clip_id("s-bob", order=QueueOrder.unsure) == "synth_0_00003"  # a tie keeps the clip order
    assert ctl.next_clip_id("s-bob") == "synth_0_00000"  # the default order is unchanged


def test_editor_state_carries_scores_and_an_edit_drops_them(ctl):
    ann = ctl.root.read_annotation("synth_0_00002")
    f0 = masked(ann, 0)[0]
    draft_with_scores(ctl.root, "synth_0_00002", {0: (range(f0, f0 + 10), 0.25)})
    v = ctl.open_clip("s-alice", "synth_0_00002")
    st = payload.editor_state(ctl, v)
    assert st["unsure_below"] == confidence.UNSURE_BELOW == 0.5
    s0 = next(s for s in st["sources"] if s["id"] == 0)
    assert s0["scores"][f0] == 0.25 and s0["scores"][f0 + 10] == SURE
    assert all((s is None) == (m is None) for s, m in zip(s0["scores"], s0["masks"], strict=True))
    # a refiner redraws the unsure frame: it has no score any more, so it no longer counts as unsure
    v = ctl.stroke("s-alice", v.revision, f0, 0, [[256, 256]], 40)
    s0 = next(s for s in payload.editor_state(ctl, v)["sources"] if s["id"] == 0)
    assert s0["scores"][f0] is None and s0["scores"][f0 + 1] == 0.25


def test_dashboard_compares_drafters(ctl):
    """Two drafters: a checkpoint whose unsure frames the refiner fixed, and ssu-synth's truth accepted as is.
    Clips still being refined are not counted."""
    root = ctl.root
    ann = root.read_annotation("synth_0_00001")
    bad = masked(ann, 0)[:3]  # the checkpoint is unsure on three frames of source 0, and right to be
    draft = draft_with_scores(root, "synth_0_00001", {0: (range(bad[0], bad[-1] + 1), 0.2)})
    assert bad == list(range(bad[0], bad[-1] + 1))
    draft_with_scores(root, "synth_0_00005", {})  # same checkpoint, still in progress: not counted
    v = ctl.open_clip("s-alice", "synth_0_00001")
    for f in bad:  # cut the source out there: draft-vs-final IoU 0 on these frames
        v = ctl.polygon("s-alice", v.revision, f, 0, [[0, 0], [511, 0], [511, 511], [0, 511]], erase=True)
    v = ctl.decide("s-alice", v.revision, "accept")
    v = ctl.open_clip("s-rita", "synth_0_00002")
    ctl.decide("s-rita", v.revision, "accept")
    ctl.open_clip("s-bob", "synth_0_00005")
    assert root.catalog.get("synth_0_00001").status == ClipStatus.needs_review

    clips = {c.clip_id: c for c in dashboard.drafter_clips(root)}
    assert set(clips) == {"synth_0_00001", "synth_0_00002"}
    ck = clips["synth_0_00001"]
    assert ck.drafter == "ssuformer best.pt @" + "ab" * 6
    drafted = sum(len(masked(draft, s.id)) for s in draft.sources)
    assert (ck.frames, ck.kept, ck.edits) == (drafted, drafted - 3, 3)
    assert ck.unsure == (3, 3) and ck.sure == (0, drafted - 3)
    assert ck.mask_iou == pytest.approx((drafted - 3) / drafted, abs=1e-3)  # the cut leaves at most an edge pixel
    truth = clips["synth_0_00002"]
    assert truth.drafter.startswith("ra-ssu") and truth.edits == 0 and truth.mask_iou == 1.0

    rows = {r["drafter"]: r for r in dashboard.summary(root)["drafters"]}
    assert rows[ck.drafter] == {
        "drafter": ck.drafter, "clips refined": 1, "clips untouched": 0, "edits / clip": 3.0,
        "mask IoU draft→final": round(ck.mask_iou, 3),
        "source-frames kept (IoU ≥ 0.9)": round((drafted - 3) / drafted, 3), "caption frames changed": 0.0,
        "changed where unsure": 1.0, "changed where sure": 0.0}
    assert rows[truth.drafter]["clips untouched"] == 1 and rows[truth.drafter]["changed where unsure"] == ""
    assert rows[truth.drafter]["source-frames kept (IoU ≥ 0.9)"] == 1.0


@pytest.mark.slow  # trains a tiny SSUFormer-I checkpoint
@pytest.mark.usefixtures("one_torch_thread")
def test_a_real_drafters_output_reaches_the_queue_editor_and_dashboard(ctl, tmp_path):
    """The contract between `ssu-annotate --drafter` and the review side: a tiny random SSUFormer-I checkpoint
    (nothing trained: its scores are whatever it predicts) drafts one clip; the queue ranks it by those
    scores, the editor receives them, and the dashboard names the drafter by the checkpoint's sha256."""
    import hashlib

    import torch
    from test_annotate_drafter import SMALL

    from annotator.draft.drafter import DrafterSettings
    from ssuformer.checkpoint import save_checkpoint
    from ssuformer.config import load_config
    from ssuformer.data import train_captions
    from ssuformer.model import SSUFormer
    from ssuformer.tokenizer import CaptionTokenizer

    root = ctl.root
    cfg = load_config("tiny", [*SMALL, "model.instances=true"])
    tok = CaptionTokenizer.train(train_captions(root), cfg.model.vocab_size)
    torch.manual_seed(0)
    ck = tmp_path / "best.pt"
    save_checkpoint(ck, {"model": SSUFormer(cfg.model, tok, loss=cfg.loss).state_dict(),
                         "config": cfg.model_dump(mode="json"), "tokenizer": tok.to_json(), "expert_dim": None})
    clip = root.read_split("test")[0]
    ann = DrafterSettings(checkpoint=ck, mask_stride=30)().annotate(root, clip).annotation
    root.write_annotation(ann)
    low = confidence.least_confident_stretch(ann)
    assert low is not None  # the random model proposes instances on this clip: the checks below are not vacuous

    rows = ctl.queue("s-alice", order=QueueOrder.unsure)
    assert rows[0]["clip_id"] == clip and rows[0]["least sure"] == f"{low:.2f}"
    v = ctl.open_clip("s-alice", clip)
    sent = {s["id"]: s["scores"] for s in payload.editor_state(ctl, v)["sources"]}
    assert sent == {s.id: [None if x is None else round(x, 3) for x in s.scores] for s in ann.sources}
    ctl.decide("s-alice", v.revision, "accept")
    (row,) = [c for c in dashboard.drafter_clips(root) if c.clip_id == clip]
    sha = hashlib.sha256(ck.read_bytes()).hexdigest()
    assert row.drafter == f"ssuformer best.pt @{sha[:12]}"
    assert (row.edits, row.kept, row.mask_iou) == (0, row.frames, 1.0) and row.frames > 0
    assert row.unsure[0] == row.sure[0] == 0 and row.unsure[1] + row.sure[1] == row.frames
