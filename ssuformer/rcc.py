"""Regional Consistency Constraint (eq. 5): L_clip = || MaskCLIP_v(M^p) - MaskCLIP_t(T^p) ||_2.

MaskCLIP_v(M^p) is the predicted region's embedding: MaskCLIP's dense features of the frame pooled over the
predicted (soft) mask, or with `clip.region: pooled` CLIP's embedding of the frame multiplied by the mask
(mcm.py); T^p is the predicted description. Sampling
discrete tokens would cut the gradient, so the text side uses *soft tokens*: at each position the caption
decoder's distribution softmax(logits / tau) is multiplied with our vocabulary's CLIP token embeddings
(FrozenClip.vocab_embed) and fed to CLIP's text transformer as inputs_embeds. Both CLIP towers are frozen;
the loss moves the mask head (through the image side) and the caption decoder (through the text side).
Embeddings are L2-normalised first, as CLIP compares them, so the loss lies in [0, 2].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssuformer.mcm import FrozenClip
from ssuformer.tokenizer import EOS, PAD


def rcc_loss(clip: FrozenClip, region_embeds: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
             tau: float = 1.0) -> torch.Tensor:
    """region_embeds (N, Dp) from FrozenClip (maskclip_region or encode_masked); logits (N, L, V)
    teacher-forced; targets (N, L).

    Frames whose reference caption is empty (nothing sounds) count as 0; the sum is divided by all N frames
    (not by the kept ones) so that DDP's gradient average equals the single-process loss exactly.
    """
    lengths = ((targets != PAD) & (targets != EOS)).sum(1)
    keep = lengths > 0
    if not bool(keep.any()):
        return region_embeds.sum() * 0.0
    probs = F.softmax(logits[keep].float() / tau, -1)
    text = clip.encode_soft_text(probs, lengths[keep])
    v = F.normalize(region_embeds[keep].float(), dim=-1)
    t = F.normalize(text.float(), dim=-1)
    return (v - t).norm(dim=-1).sum() / targets.shape[0]
