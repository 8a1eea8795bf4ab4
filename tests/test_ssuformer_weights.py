"""Pretrained encoders: checkpoints of the real key layout load strictly and land; a wrong or missing file
is a user error that names it; `weights: none` is an explicit opt-out that the run's config and log show."""

from __future__ import annotations

import pytest
import torch

from schemas.errors import UserError
from ssuformer.config import AudioEncoderConfig, VisualEncoderConfig, load_config
from ssuformer.encoders import VisualEncoder, build_audio_encoder

PVT_TINY = dict(embed_dims=(8, 16, 32, 64), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 4))


@pytest.mark.slow
def test_vggish_checkpoint_of_the_real_layout_lands(tmp_path):
    from torchvggish.torchvggish import _vgg

    ref = _vgg(postprocess=False)  # torchvggish's own VGGish network, random weights
    state = ref.state_dict()
    state["pproc.pca_means"] = torch.zeros(128)  # a VGGish(postprocess=True) dump: PCA keys are dropped
    torch.save(state, tmp_path / "vggish.pth")
    enc = build_audio_encoder(AudioEncoderConfig(weights=str(tmp_path / "vggish.pth")))
    for k, v in ref.state_dict().items():
        assert torch.equal(enc.state_dict()[k], v), k
    x = torch.randn(2, 1, 96, 64)
    assert torch.allclose(enc.eval()(x), ref.eval()(x)) and enc(x).shape == (2, 128)
    assert str(tmp_path / "vggish.pth") in enc.weights_source

    del state["embeddings.4.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(UserError, match=r"model.audio.weights: .*1 missing keys: embeddings.4.weight; "
                                        r"1 unexpected keys: extra.weight"):
        build_audio_encoder(AudioEncoderConfig(weights=str(tmp_path / "broken.pth")))
    with pytest.raises(UserError, match="model.audio.weights: .*missing.pth not found"):
        build_audio_encoder(AudioEncoderConfig(weights=str(tmp_path / "missing.pth")))


def test_pvt_v2_checkpoint_of_the_real_layout_lands(tmp_path):
    import timm
    from safetensors.torch import save_file

    full = timm.create_model("pvt_v2_b0", pretrained=False, **PVT_TINY)  # classifier head included, as timm's
    save_file(full.state_dict(), str(tmp_path / "pvt.safetensors"))
    cfg = VisualEncoderConfig(arch="pvt_v2_b0", tiny_dims=[8, 16, 32, 64], tiny_depths=[1, 1, 1, 1],
                              weights=str(tmp_path / "pvt.safetensors"))
    vis = VisualEncoder(cfg)
    landed = vis.body.state_dict()
    for k, v in full.state_dict().items():
        if not k.startswith("head"):
            assert torch.equal(landed[k.replace("stages.", "stages_")], v), k
    feats = vis(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64] and [f.shape[-1] for f in feats] == [16, 8, 4, 2]

    other = timm.create_model("pvt_v2_b0", pretrained=False, embed_dims=(8, 16, 32, 48), depths=(1, 1, 1, 1),
                              num_heads=(1, 1, 2, 4))
    torch.save(other.state_dict(), tmp_path / "other.pth")
    with pytest.raises(UserError, match=r"model.visual.weights: .*keys of another shape: .*stages.3"):
        VisualEncoder(cfg.model_copy(update={"weights": str(tmp_path / "other.pth")}))


def test_weights_settings():
    assert load_config("paper").model.audio.weights == "pretrained"
    assert load_config("ssu_d").model.visual.weights == "pretrained"  # every paper-derived config
    assert load_config("paper", ["model.audio.weights=null"]).model.audio.weights == "none"
    with pytest.raises(UserError, match="model.audio.tiny builds a small random CNN"):
        load_config("paper", ["model.audio.tiny=true"])


@pytest.mark.slow
def test_offline_refusal_names_every_missing_file_and_none_is_logged(synth_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ssuformer.train_cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty torch hub cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    r = CliRunner().invoke(app, ["train", "--data", str(synth_root.path), "--config", "paper",
                                 "--set", "model.mohe=false", "--out", str(tmp_path / "run")])
    assert r.exit_code != 0 and isinstance(r.exception, UserError)
    msg = str(r.exception)
    assert "model.audio.weights: VGGish weights vggish-10086976.pth" in msg and "download https://" in msg
    assert "model.visual.weights: PVT-v2 (pvt_v2_b5) weights timm/pvt_v2_b5.in1k" in msg and "hf download" in msg
    assert "model.clip.name_or_path" in msg and "\n" not in msg
    assert not (tmp_path / "run").exists()

    from test_ssuformer_train import SMALL

    run = tmp_path / "none"
    r = CliRunner().invoke(app, ["train", "--data", str(synth_root.path), "--config", "tiny", "--out", str(run),
                                 "--max-steps", "1", "--no-progress", "--set", f"data.cache={tmp_path / 'c'}",
                                 *[a for s in SMALL for a in ("--set", s)], "--set", "train.run_val=false"])
    assert r.exit_code == 0, r.output
    assert "weights: none" in (run / "config.yaml").read_text()
    log = (run / "run.log").read_text()
    assert "model.audio.weights: none (random init, on purpose)" in log
    assert "model.visual.weights: none (random init, on purpose)" in log and "caption length limit" in log

    # a checkpoint holds its trained encoders: loading it never needs the pretrained files again
    from ssuformer.checkpoint import load_model, read_checkpoint, save_checkpoint

    state = read_checkpoint(run / "last.pt")
    state["config"]["model"]["audio"]["weights"] = str(tmp_path / "gone.pth")
    save_checkpoint(run / "moved.pt", state)
    model, cfg, _, _ = load_model(run / "moved.pt")
    assert cfg.model.audio.weights.endswith("gone.pth")
    assert torch.equal(model.audio_encoder.embeddings[2].weight, state["model"]["audio_encoder.embeddings.2.weight"])
