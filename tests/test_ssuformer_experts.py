"""The real loading code of MCM/RCC's CLIP and MoHE's LLaVA expert, with tiny random models saved to tmp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssuformer.config import ClipConfig, ExpertConfig
from ssuformer.tokenizer import CaptionTokenizer

WORDS = ["a", "red", "blue", "circle", "square", "is", "beeping", "humming", "on", "the", "left"]


def _fast_tokenizer(extra: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *extra, *WORDS])}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", additional_special_tokens=extra or None)


def test_clip_from_a_saved_folder_maps_our_vocabulary(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from ssuformer.mcm import FrozenClip

    fast = _fast_tokenizer([])
    text = dict(vocab_size=len(fast), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=20, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=16,
                  patch_size=8)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(tmp_path / "clip")
    fast.save_pretrained(tmp_path / "clip")
    ours = CaptionTokenizer.train(["a red circle is beeping", "a blue square on the left is humming"], 60)
    clip = FrozenClip(ClipConfig(name_or_path=str(tmp_path / "clip")), ours, max_text=12)
    assert clip.vocab_embed.shape == (ours.vocab_size, 16)
    table = clip.clip.text_model.embeddings.token_embedding.weight
    red = next(i for i in range(ours.vocab_size) if ours.token_text(i).strip() == "red")
    assert torch.allclose(clip.vocab_embed[red], table[fast.convert_tokens_to_ids("red")])
    probs = torch.softmax(torch.randn(3, 5, ours.vocab_size, requires_grad=True), -1)
    emb = clip.encode_soft_text(probs, torch.tensor([2, 5, 1]))
    assert emb.shape == (3, 8)
    tokens, region = clip.encode_masked(torch.rand(3, 3, 32, 32), torch.rand(3, 8, 8))
    assert tokens.shape == (3, 5, 16) and region.shape == (3, 8)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from bench.tiny_llava import build_tiny_llava

    path = tmp_path_factory.mktemp("llava") / "tiny-llava"
    return build_tiny_llava(path, tokenizer=_fast_tokenizer(["<image>"]), text_width=24, text_layers=3)


def test_llava_expert_features_and_cache(tiny_llava, synth_root, tmp_path):
    from ssuformer.config import load_config
    from ssuformer.data import ClipDataset, sample_frames
    from ssuformer.mohe import LlavaExpert, cache_expert, read_meta

    cfg = ExpertConfig(name_or_path=str(tiny_llava), prompt="<image> a red circle is", layers=[-1, -2], tokens=4,
                       cache=str(tmp_path / "expert"))
    feats = LlavaExpert(cfg).features(np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8))
    assert feats.shape == (2, 2, 4, 24) and feats.dtype == np.float16 and np.isfinite(feats).all()
    assert not np.allclose(feats[:, 0], feats[:, 1])  # two different prompt levels
    frames = sample_frames(2)
    ids = synth_root.read_split("val")
    folder = cache_expert(synth_root, cfg, frames, size=32, clip_ids=ids)
    assert read_meta(folder)["dim"] == 24
    run_cfg = load_config("tiny", ["data.frames=2", "data.image_size=32", f"data.cache={tmp_path / 'c'}"])
    item = ClipDataset(synth_root, "val", run_cfg, None, expert_dir=folder)[0]
    assert item["expert"].shape == (2, 2, 4, 24)
