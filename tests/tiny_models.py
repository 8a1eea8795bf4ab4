"""Tiny random-weight models for tests: built from configs, saved like the real ones, loaded back through
annotator.models.loaders (the real loading code). Nothing is downloaded.

    paths = build_tiny_models(tmp_path / "models")     # ~10 s on 2 cores; reuse across a session
    cfg = paths.models_config()                        # annotator.models.ModelsConfig pointing at them

Outputs of random models are noise: tests check shapes, plumbing and provenance, never content.

`build_forced_models` (the whole-chain test, scripts/demo_real.sh) makes the same models give non-empty output
on real frames; what it forces, and why, is written above it. From a shell:

    python -m tests.tiny_models DIR [--forced]         # prints the ssu-annotate model flags for DIR
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annotator.models.settings import ModelsConfig

# Words the tiny tokenizer knows; everything else maps to <unk>.
_WORDS = ("a the of in on and is with sound describe region highlighted what this object person playing "
          "piano violin guitar dog cat car water circle square triangle star diamond red green blue left "
          "right top bottom centre sounding making noise silence background music speech photo image "
          "USER ASSISTANT : . , ? ! \n").split(" ")
_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]

SAM2_IMAGE_SIZE = 64
# A cut-down Hiera-T: one block per stage, no global attention, one memory-attention layer. Built from the
# packaged sam2.1_hiera_t.yaml so that the loader exercises the real config path.
SAM2_OVERRIDES = [
    f"++model.image_size={SAM2_IMAGE_SIZE}",
    "++model.image_encoder.trunk.stages=[1,1,1,1]",
    "++model.image_encoder.trunk.global_att_blocks=[]",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.dim_feedforward=256",
]


@dataclass(frozen=True)
class ModelPaths:
    sam: Path           # folder: sam.json + sam.pth (segment-anything layout for custom sizes)
    sam2: Path          # folder: sam2.yaml + model.pt
    captioner: Path     # transformers LLaVA folder (model + processor)
    detector: Path      # transformers OWLv2 folder
    audio_tagger: Path  # transformers CLAP folder

    def models_config(self, **runtime: object) -> ModelsConfig:
        from annotator.models.loaders import ModelsConfig, ModelSpec, Runtime

        return ModelsConfig(sam=ModelSpec(source=str(self.sam)), sam2=ModelSpec(source=str(self.sam2)),
                            captioner=ModelSpec(source=str(self.captioner)),
                            detector=ModelSpec(source=str(self.detector)),
                            audio_tagger=ModelSpec(source=str(self.audio_tagger)),
                            runtime=Runtime(**runtime))  # type: ignore[arg-type]


def tiny_tokenizer(model_max_length: int = 64):
    """A word-level fast tokenizer trained on the fixed word list (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=_SPECIALS, min_frequency=1)
    tok.train_from_iterator([" ".join(_WORDS)] * 2, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=model_max_length)


def _clip_dims(vocab: int, image_size: int, patch: int, proj: int) -> tuple[dict, dict]:
    text = dict(vocab_size=vocab, hidden_size=proj, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=2,
                eos_token_id=3)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=image_size, patch_size=patch)
    return text, vision


def build_tiny_sam(out: Path, seed: int = 0) -> Path:
    """segment-anything layout for a custom size: sam.json (architecture) + sam.pth (state dict)."""
    import torch

    from annotator.models.loaders import build_segment_anything

    torch.manual_seed(seed)
    arch = {"image_size": 256, "encoder_embed_dim": 64, "encoder_depth": 2, "encoder_num_heads": 2,
            "encoder_global_attn_indexes": [1], "prompt_embed_dim": 64, "vit_patch_size": 16}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(build_segment_anything(arch).state_dict(), out / "sam.pth")
    (out / "sam.json").write_text(json.dumps(arch, indent=1))
    return out


def build_tiny_sam2(out: Path, seed: int = 0) -> Path:
    import sam2  # noqa: F401  (registers sam2's hydra config module)
    import torch
    from hydra import compose
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    cfg = compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml", overrides=SAM2_OVERRIDES)
    OmegaConf.resolve(cfg)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "sam2.yaml")
    from hydra.utils import instantiate

    model = instantiate(cfg.model, _recursive_=True)
    torch.save({"model": model.state_dict()}, out / "model.pt")
    return out


def build_tiny_captioner(out: Path, seed: int = 0) -> Path:
    """The project's one tiny LLaVA (bench.tiny_llava), with this file's tokenizer and a chat template."""
    from bench.tiny_llava import build_tiny_llava

    return build_tiny_llava(out, seed, tokenizer=tiny_tokenizer(), text_layers=1,
                            chat_template="{% for m in messages %}{{ m['role'] | upper }}: "
                                          "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
                                          "{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
                                          "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def build_tiny_detector(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    torch.manual_seed(seed)
    tok = tiny_tokenizer(model_max_length=16)
    text, vision = _clip_dims(len(tok), 64, 16, 32)
    cfg = Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
    model = Owlv2ForObjectDetection(cfg).eval()
    # Random box heads saturate the sigmoid and give zero-area boxes; a small last layer keeps the boxes
    # near OWL's per-patch prior (a box per patch, a quarter of the image wide), which SAM can use.
    with torch.no_grad():
        model.box_head.dense2.weight.mul_(0.01)
        model.box_head.dense2.bias.zero_()
    proc = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def build_tiny_audio_tagger(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    torch.manual_seed(seed)
    tok = tiny_tokenizer(model_max_length=32)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=64, pad_token_id=0, type_vocab_size=1,
                projection_dim=16)
    audio = dict(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4),
                 depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32, patch_embeds_hidden_size=16,
                 projection_dim=16, enable_fusion=False)
    cfg = ClapConfig(text_config=text, audio_config=audio, projection_dim=16)
    model = ClapModel(cfg).eval()
    fe = ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, fft_window_size=400,
                              frequency_min=50, frequency_max=8000,
                              max_length_s=1, truncation="rand_trunc", padding="repeatpad")
    model.save_pretrained(out)
    ClapProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(out)
    return out


def build_tiny_models(root: Path, seed: int = 0) -> ModelPaths:
    """Build all five tiny models under `root` (one folder each) and return their paths."""
    root = Path(root)
    return ModelPaths(sam=build_tiny_sam(root / "sam", seed), sam2=build_tiny_sam2(root / "sam2", seed),
                      captioner=build_tiny_captioner(root / "captioner", seed),
                      detector=build_tiny_detector(root / "detector", seed),
                      audio_tagger=build_tiny_audio_tagger(root / "audio_tagger", seed))


# -- forced outputs ----------------------------------------------------------------------------------
# With random weights the chain stops early on real clips: SAM2's object-score head says "no object" on every
# frame it tracks, so only the seed frame keeps a mask, and a caption could be empty should greedy decoding
# pick </s> first. `build_forced_models` edits the saved weights (state dicts, then loaded back through
# annotator.models.loaders like any checkpoint) so that each stage hands the next one something:
# - SAM and SAM2 mask decoders: one channel of the upscaled image embedding is a constant GELU(MASK_BIAS) and
#   every mask token's hypernetwork reads it with weight 1, i.e. +0.026 on every mask logit. The random logits
#   are about that small, so on the real clips masks are noisy regions of ~25-100 % of the frame, not empty
#   (measured on 4 of ../shared/data's clips; a bias of 0.2 already fills the whole frame).
# - SAM2's object-score head: weight 0, bias +10, so every tracked frame says "object present" and its
#   mask logits are kept (otherwise sam2 replaces them with -1024).
# - the captioner's lm_head rows of the special tokens (<pad> <unk> <s> </s> <image>) are zero, so greedy
#   decoding picks a word (some word's random logit is > 0): every caption is max_new_tokens words of noise.
# Not forced: the detector (OWL's per-patch box prior already gives boxes) and the audio tagger (its CLAP
# scores sit near 1/3, under ssu-annotate's 0.5 threshold: the chain runs with --no-gate).
# The masks and captions are still noise: they show the plumbing, never what a model has learned.
MASK_BIAS = 0.05  # before the GELU: GELU(0.05) = 0.026


def force_mask_logits(state: dict, prefix: str, bias: float = MASK_BIAS) -> None:
    """Add GELU(`bias`) to a SAM / SAM2 mask decoder's mask logits, in place on its state dict (keys under `prefix`)."""
    up_w, up_b = state[f"{prefix}output_upscaling.3.weight"], state[f"{prefix}output_upscaling.3.bias"]
    up_w[:, 0] = 0.0  # channel 0 of the upscaled embedding: GELU(bias) everywhere ...
    up_b[0] = bias
    if f"{prefix}conv_s0.weight" in state:  # SAM2 adds high-resolution features before that GELU
        state[f"{prefix}conv_s0.weight"][0] = 0.0
        state[f"{prefix}conv_s0.bias"][0] = 0.0
    i = 0
    while f"{prefix}output_hypernetworks_mlps.{i}.layers.2.weight" in state:  # ... read with weight 1 by every token
        state[f"{prefix}output_hypernetworks_mlps.{i}.layers.2.weight"][0] = 0.0
        state[f"{prefix}output_hypernetworks_mlps.{i}.layers.2.bias"][0] = 1.0
        i += 1
    if i == 0:
        raise KeyError(f"{prefix}: no mask decoder hypernetworks in this state dict")


def force_sam(folder: Path) -> Path:
    """The segment-anything folder (sam.json + sam.pth) with a bias on its mask logits."""
    import torch

    state = torch.load(folder / "sam.pth", map_location="cpu", weights_only=True)
    force_mask_logits(state, "mask_decoder.")
    torch.save(state, folder / "sam.pth")
    return folder


def force_sam2(folder: Path) -> Path:
    """The SAM2 folder (sam2.yaml + model.pt) with a bias on its mask logits and "object present" on every frame."""
    import torch

    ckpt = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    state = ckpt["model"]
    force_mask_logits(state, "sam_mask_decoder.")
    state["sam_mask_decoder.pred_obj_score_head.layers.2.weight"].zero_()
    state["sam_mask_decoder.pred_obj_score_head.layers.2.bias"].fill_(10.0)
    torch.save(ckpt, folder / "model.pt")
    return folder


def force_captioner_words(folder: Path) -> Path:
    """The LLaVA folder with the special tokens' lm_head rows zeroed (greedy decoding always emits words)."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    tok = AutoProcessor.from_pretrained(folder, local_files_only=True).tokenizer
    ids = sorted({i for i in tok.convert_tokens_to_ids(_SPECIALS) if i is not None} | set(tok.all_special_ids))
    with torch.no_grad():
        model.get_output_embeddings().weight[ids] = 0.0
    model.save_pretrained(folder)
    return folder


def build_forced_models(root: Path, seed: int = 0) -> ModelPaths:
    """The tiny models of `build_tiny_models`, with the outputs forced as described above."""
    paths = build_tiny_models(root, seed)
    force_sam(paths.sam)
    force_sam2(paths.sam2)
    force_captioner_words(paths.captioner)
    return paths


def annotate_flags(paths: ModelPaths) -> list[str]:
    """ssu-annotate's model flags for these models (CPU, offline)."""
    return ["--sam", str(paths.sam), "--sam2", str(paths.sam2), "--captioner", str(paths.captioner),
            "--detector", str(paths.detector), "--audio-tagger", str(paths.audio_tagger), "--device", "cpu",
            "--offline"]


_SESSION: ModelPaths | None = None


def session_tiny_models() -> ModelPaths:
    """One set of tiny models per test process (built on first use into a temp folder, removed at exit), so
    that several test modules share them without a conftest fixture."""
    global _SESSION
    if _SESSION is None:
        import atexit
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="ra-ssu-tiny-models-"))
        atexit.register(shutil.rmtree, tmp, True)
        _SESSION = build_tiny_models(tmp)
    return _SESSION


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.tiny_models",
                                 description="Build the tiny random-weight test models into OUT (one folder "
                                             "each) and print ssu-annotate's model flags for them.")
    ap.add_argument("out", type=Path, help="folder to build into (created)")
    ap.add_argument("--forced", action="store_true", help="force non-empty masks and captions (see the module)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    paths = (build_forced_models if args.forced else build_tiny_models)(args.out.resolve(), args.seed)
    print(" ".join(annotate_flags(paths)))


if __name__ == "__main__":
    main()
