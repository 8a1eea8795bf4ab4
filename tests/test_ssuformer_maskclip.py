"""RCC's image side: MaskCLIP's dense features pooled over the predicted mask, checked against a step-by-step
reference written from the weights of a tiny transformers CLIPModel; the plain pooled-CLIP option stays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssuformer.config import ClipConfig, RegionFeatures
from ssuformer.mcm import FrozenClip
from ssuformer.tokenizer import CaptionTokenizer


def _ln(x, m):
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


def _lin(x, m):
    return x @ m.weight.T + m.bias


def reference_dense(clip, pixels: torch.Tensor) -> torch.Tensor:
    """MaskCLIP by hand: patchify, CLS + positions, pre-LN, full blocks but the last, then the last block's
    value path in place of attention (LN1 -> v_proj -> out_proj, no query-key weights) with its residual and MLP,
    post-LN, projection (MaskCLIP's ViT code: `v += x; v = ffn(norm2(v), identity=v)`)."""
    vm = clip.vision_model
    emb = vm.embeddings
    x = F.conv2d(pixels, emb.patch_embedding.weight, stride=emb.patch_embedding.stride).flatten(2).transpose(1, 2)
    x = torch.cat([emb.class_embedding.expand(len(x), 1, -1), x], 1) + emb.position_embedding.weight[None]
    x = _ln(x, vm.pre_layrnorm)
    heads = clip.config.vision_config.num_attention_heads
    for layer in vm.encoder.layers[:-1]:
        a = layer.self_attn
        h = _ln(x, layer.layer_norm1)
        n, t, d = h.shape
        q, k, v = (_lin(h, p).view(n, t, heads, d // heads).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        w = (q @ k.transpose(-1, -2) * (d // heads) ** -0.5).softmax(-1)
        x = x + _lin((w @ v).transpose(1, 2).reshape(n, t, d), a.out_proj)
        h = _ln(x, layer.layer_norm2)
        h = _lin(h, layer.mlp.fc1)
        x = x + _lin(h * torch.sigmoid(1.702 * h), layer.mlp.fc2)  # CLIP's quick_gelu
    last = vm.encoder.layers[-1]
    v = x + _lin(_lin(_ln(x, last.layer_norm1), last.self_attn.v_proj), last.self_attn.out_proj)
    h = _lin(_ln(v, last.layer_norm2), last.mlp.fc1)
    v = (v + _lin(h * torch.sigmoid(1.702 * h), last.mlp.fc2))[:, 1:]
    return _ln(v, vm.post_layernorm) @ clip.visual_projection.weight.T


def test_maskclip_region_matches_a_step_by_step_reference():
    tok = CaptionTokenizer.train(["a red circle is beeping"], 40)
    fc = FrozenClip(ClipConfig(tiny=True, tiny_hidden=16, tiny_image_size=32, tiny_patch=8), tok, 12)
    torch.manual_seed(0)
    images = torch.rand(3, 3, 32, 32)
    probs = torch.zeros(3, 8, 8)
    probs[0, :2, :2] = 1.0  # the top-left patch only (8 px patches: 2x2 mask cells each)
    probs[1] = torch.rand(8, 8)
    probs[2, 4:, :] = 0.5  # the bottom half, at half weight: the same region as fully weighted
    probs.requires_grad_(True)

    dense = fc.dense_features(images)
    pixels = (images - fc.mean) / fc.std
    ref = reference_dense(fc.clip, pixels)  # (N, 16 patches, Dp), row-major over the 4x4 grid
    assert dense.shape == (3, 4, 4, ref.shape[-1])
    assert torch.allclose(dense.flatten(1, 2), ref, atol=1e-5)

    region = fc.maskclip_region(images, probs)
    w = F.interpolate(probs.detach()[:, None], size=(4, 4), mode="area")[:, 0].flatten(1)
    expect = (w[..., None] * ref).sum(1) / w.sum(1, keepdim=True)
    assert torch.allclose(region, expect, atol=1e-5)
    assert torch.allclose(region[0], ref[0, 0], atol=1e-5)
    assert torch.allclose(region[2], ref[2, 8:].mean(0), atol=1e-5)

    region.sum().backward()  # the mask head learns through the pooling weights
    assert probs.grad is not None and probs.grad.abs().sum() > 0

    # the named alternative: CLIP's pooled embedding of the masked frame, a different vector
    _, pooled = fc.encode_masked(images, probs.detach())
    assert pooled.shape == region.shape and not torch.allclose(pooled, region.detach(), atol=1e-3)


@pytest.mark.slow
def test_model_uses_the_configured_region_features():
    from test_ssuformer_model import SMALL, make_batch

    from ssuformer.config import load_config
    from ssuformer.model import SSUFormer

    tok = CaptionTokenizer.train(["a red circle is beeping", "a blue square is humming"], 80)
    regions = {}
    for mode in RegionFeatures:
        cfg = load_config("tiny", [*SMALL, f"model.clip.region={mode.value}"])
        torch.manual_seed(0)
        model = SSUFormer(cfg.model, tok)
        batch = make_batch(cfg, tok)
        out = model(batch)
        regions[mode] = out["region"]
        assert "clip" in model.losses(out, batch, cfg.loss)
    assert not torch.allclose(regions[RegionFeatures.maskclip], regions[RegionFeatures.pooled])
