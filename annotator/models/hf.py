"""transformers-backed models: VLM region captioner, text-grounded detector, audio tagger.

Load them through annotator.models.loaders (load_captioner, load_detector, load_audio_tagger). Every loader takes a
hub id or a local folder and honours offline mode; missing weights become a UserError saying how to get
them. Outputs are plain numpy / str: callers never see tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from annotator.models.settings import (
    MAX_NEW_TOKENS,
    ModelInfo,
    ModelKind,
    ModelSpec,
    Runtime,
    is_local,
    missing_weights,
    version_of,
)
from schemas.errors import UserError

DEFAULT_CAPTION_PROMPT = ("Describe the {category} inside the highlighted region in one short sentence: what it "
                          "looks like, where it is and what it is doing.")
DEFAULT_AUDIO_PROMPT = "the sound of {label}"
DEFAULT_BACKGROUND = ("silence", "background noise")


def _load(kind: ModelKind, spec: ModelSpec, rt: Runtime, cls: Any, **kw: Any) -> Any:
    try:
        return cls.from_pretrained(spec.source, local_files_only=rt.is_offline() or is_local(spec.source),
                                   revision=spec.revision, **kw)
    except (OSError, ValueError) as e:
        raise missing_weights(kind, spec.source, f" ({str(e).splitlines()[0][:160]})") from None


def _info(kind: ModelKind, spec: ModelSpec, model: Any) -> ModelInfo:
    return ModelInfo(kind, spec.source, version_of(spec.source, "transformers"),
                     f"transformers:{type(model).__name__}")


def _model_kwargs(rt: Runtime) -> dict[str, Any]:
    return {"dtype": rt.torch_dtype()}


# -- region captioner -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Highlight:
    """How the VLM is shown a region: the frame cropped to the mask's box (plus margin), with the pixels
    outside the mask dimmed so the region stands out while its context stays visible."""

    margin: float = 0.25   # of the box size, each side
    min_crop: int = 96     # px: tiny masks still get some context
    dim: float = 0.45      # outside-mask brightness factor

    def apply(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return frame
        h, w = mask.shape
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        mx = max(int((x1 - x0) * self.margin), (self.min_crop - (x1 - x0)) // 2, 0)
        my = max(int((y1 - y0) * self.margin), (self.min_crop - (y1 - y0)) // 2, 0)
        x0, x1, y0, y1 = max(0, x0 - mx), min(w, x1 + mx), max(0, y0 - my), min(h, y1 + my)
        out = frame.astype(np.float32)
        out[~mask] *= self.dim
        return out[y0:y1, x0:x1].clip(0, 255).astype(np.uint8)

    def params(self) -> dict[str, float | int]:
        return {"highlight_margin": self.margin, "highlight_min_crop": self.min_crop, "highlight_dim": self.dim}


class RegionCaptioner:
    def __init__(self, model: Any, processor: Any, info: ModelInfo, max_new_tokens: int = MAX_NEW_TOKENS,
                 highlight: Highlight | None = None) -> None:
        self.model, self.processor, self.info = model, processor, info
        self.max_new_tokens = max_new_tokens
        self.highlight = highlight or Highlight()

    def prompt_text(self, category: str, prompt: str | None = None) -> str:
        return (prompt or DEFAULT_CAPTION_PROMPT).format(category=category)

    def caption(self, frame: np.ndarray, mask: np.ndarray, category: str, prompt: str | None = None) -> str:
        """One sentence about the masked region of `frame` ((H, W, 3) uint8, mask (H, W) bool)."""
        return self.caption_many([(frame, mask)], category, prompt)[0]

    def caption_many(self, items: list[tuple[np.ndarray, np.ndarray]], category: str,
                     prompt: str | None = None) -> list[str]:
        """Captions for several (frame, mask) pairs of one category, in one batched generate call."""
        import torch
        from PIL import Image

        if not items:
            return []
        text = self.prompt_text(category, prompt)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        if getattr(self.processor, "chat_template", None):
            chat = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        else:
            chat = f"USER: <image>\n{text} ASSISTANT:"
        images = [Image.fromarray(self.highlight.apply(f, m)) for f, m in items]
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"  # decoder-only generation continues from the right end
        inputs = self.processor(images=images, text=[chat] * len(images), return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]


def load_captioner(spec: ModelSpec, rt: Runtime, max_new_tokens: int = MAX_NEW_TOKENS) -> RegionCaptioner:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = _load(ModelKind.captioner, spec, rt, AutoModelForImageTextToText, **_model_kwargs(rt))
    proc = _load(ModelKind.captioner, spec, rt, AutoProcessor)
    model = model.to(rt.torch_device()).eval()
    return RegionCaptioner(model, proc, _info(ModelKind.captioner, spec, model), max_new_tokens)


# -- text-grounded detector -------------------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the image given
    score: float
    query: str


class Detector:
    def __init__(self, model: Any, processor: Any, info: ModelInfo) -> None:
        self.model, self.processor, self.info = model, processor, info

    def detect(self, image: np.ndarray, queries: list[str], threshold: float = 0.0) -> list[Detection]:
        """Boxes for the text queries in `image` ((H, W, 3) uint8), best first."""
        import torch

        h, w = image.shape[:2]
        mt = self.model.config.model_type
        if mt.startswith("owl"):
            inputs = self.processor(text=[queries], images=image, return_tensors="pt")
            # OWL pads to a square at the bottom/right: boxes are relative to the padded side.
            sizes = [(max(h, w), max(h, w))]
        else:  # Grounding DINO & co take one lower-case string of "a. b."
            inputs = self.processor(text=". ".join(q.lower() for q in queries) + ".", images=image,
                                    return_tensors="pt")
            sizes = [(h, w)]
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model(**inputs)
        if mt.startswith("owl"):
            res = self.processor.post_process_grounded_object_detection(out, threshold=threshold,
                                                                        target_sizes=sizes, text_labels=[queries])[0]
            labels = [queries[int(i)] for i in res["labels"]]
        else:
            res = self.processor.post_process_grounded_object_detection(out, inputs["input_ids"],
                                                                        threshold=threshold, text_threshold=threshold,
                                                                        target_sizes=sizes)[0]
            labels = [str(t) for t in res.get("text_labels", res["labels"])]
        dets = []
        for box, score, q in zip(res["boxes"].float().cpu().numpy(), res["scores"].float().cpu().numpy(), labels,
                                 strict=True):
            x0, y0, x1, y1 = np.clip(box, 0, [w, h, w, h]).tolist()
            if x1 > x0 and y1 > y0:
                dets.append(Detection((x0, y0, x1, y1), float(score), q))
        return sorted(dets, key=lambda d: -d.score)


def load_detector(spec: ModelSpec, rt: Runtime) -> Detector:
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    model = _load(ModelKind.detector, spec, rt, AutoModelForZeroShotObjectDetection, **_model_kwargs(rt))
    proc = _load(ModelKind.detector, spec, rt, AutoProcessor)
    model = model.to(rt.torch_device()).eval()
    return Detector(model, proc, _info(ModelKind.detector, spec, model))


# -- audio tagger -----------------------------------------------------------------------------------
class AudioTagger(Protocol):
    """Per-second presence scores in [0, 1] of each label's sound: (seconds, labels)."""

    info: ModelInfo

    def scores(self, wav: np.ndarray, sr: int, labels: list[str]) -> np.ndarray: ...

    def params(self) -> dict[str, str | float | int | bool | None]: ...


def _resample(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return wav.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr, target)
    return resample_poly(wav, target // g, sr // g).astype(np.float32)


def _seconds(wav: np.ndarray, sr: int) -> list[np.ndarray]:
    wav = wav if wav.ndim == 1 else wav.mean(axis=1)
    n = max(1, int(round(len(wav) / sr)))
    return [wav[i * sr:(i + 1) * sr] for i in range(n)]


@dataclass
class ClapTagger:
    """CLAP zero-shot: per second and label, softmax over [the label's prompt, background prompts]: the
    probability that the label explains the second better than silence or noise. Labels are scored
    independently, so two sources sounding together can both pass."""

    model: Any
    processor: Any
    info: ModelInfo
    prompt: str = DEFAULT_AUDIO_PROMPT
    background: tuple[str, ...] = DEFAULT_BACKGROUND
    _text_cache: dict[str, Any] = field(default_factory=dict)

    def _text(self, texts: list[str]) -> Any:
        import torch

        missing = [t for t in texts if t not in self._text_cache]
        if missing:
            tok = self.processor.tokenizer(missing, return_tensors="pt", padding=True).to(self.model.device)
            with torch.inference_mode():
                emb = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
            emb = getattr(emb, "pooler_output", emb)
            for t, e in zip(missing, torch.nn.functional.normalize(emb.float(), dim=-1), strict=True):
                self._text_cache[t] = e
        return torch.stack([self._text_cache[t] for t in texts])

    def scores(self, wav: np.ndarray, sr: int, labels: list[str]) -> np.ndarray:
        import torch

        fe = self.processor.feature_extractor
        secs = _seconds(_resample(np.asarray(wav, np.float32), sr, fe.sampling_rate), fe.sampling_rate)
        feats = fe([s for s in secs], sampling_rate=fe.sampling_rate, return_tensors="pt")
        feats = {k: v.to(self.model.device) for k, v in feats.items() if k in ("input_features", "is_longer")}
        feats["input_features"] = feats["input_features"].to(self.model.dtype)
        with torch.inference_mode():
            a = self.model.get_audio_features(**feats)
        a = torch.nn.functional.normalize(getattr(a, "pooler_output", a).float(), dim=-1)
        bg = self._text([self.prompt.format(label=b) for b in self.background])
        scale = float(self.model.logit_scale_a.detach().exp())
        out = np.zeros((len(secs), len(labels)), np.float32)
        for j, label in enumerate(labels):
            t = torch.cat([self._text([self.prompt.format(label=label)]), bg])
            out[:, j] = torch.softmax(scale * a @ t.T, dim=-1)[:, 0].cpu().numpy()
        return out

    def params(self) -> dict[str, str | float | int | bool | None]:
        return {"audio_prompt": self.prompt, "background": ", ".join(self.background), "segment_s": 1.0}


@dataclass
class ClassifierTagger:
    """An AudioSet classifier (AST & co): per second, the highest sigmoid score among the classes whose name
    matches the label (all of the label's words in the class name, or the class name within the label)."""

    model: Any
    extractor: Any
    info: ModelInfo

    def classes_for(self, label: str) -> list[int]:
        words = set(label.lower().replace(",", " ").split())
        hits = []
        for i, name in self.model.config.id2label.items():
            n = name.lower()
            if words and (words <= set(n.replace(",", " ").replace("(", " ").replace(")", " ").split())
                          or n in label.lower()):
                hits.append(int(i))
        return hits

    def scores(self, wav: np.ndarray, sr: int, labels: list[str]) -> np.ndarray:
        import torch

        classes = {lab: self.classes_for(lab) for lab in labels}
        if unmatched := [lab for lab, c in classes.items() if not c]:
            raise UserError(f"--audio-tagger {self.info.name}: no class of this classifier matches "
                            f"{unmatched[0]!r}; use a CLAP model (zero-shot, any label) or rename the category")
        rate = self.extractor.sampling_rate
        secs = _seconds(_resample(np.asarray(wav, np.float32), sr, rate), rate)
        feats = self.extractor(secs, sampling_rate=rate, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            probs = torch.sigmoid(self.model(**feats).logits.float()).cpu().numpy()
        return np.stack([probs[:, classes[lab]].max(axis=1) for lab in labels], axis=1).astype(np.float32)

    def params(self) -> dict[str, str | float | int | bool | None]:
        return {"segment_s": 1.0, "match": "class name words"}


def load_audio_tagger(spec: ModelSpec, rt: Runtime) -> AudioTagger:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, AutoProcessor

    cfg = _load(ModelKind.audio_tagger, spec, rt, AutoConfig)
    if cfg.model_type == "clap":
        from transformers import ClapModel

        model = _load(ModelKind.audio_tagger, spec, rt, ClapModel, **_model_kwargs(rt)).to(rt.torch_device()).eval()
        proc = _load(ModelKind.audio_tagger, spec, rt, AutoProcessor)
        return ClapTagger(model, proc, _info(ModelKind.audio_tagger, spec, model))
    model = _load(ModelKind.audio_tagger, spec, rt, AutoModelForAudioClassification, **_model_kwargs(rt))
    fe = _load(ModelKind.audio_tagger, spec, rt, AutoFeatureExtractor)
    model = model.to(rt.torch_device()).eval()
    return ClassifierTagger(model, fe, _info(ModelKind.audio_tagger, spec, model))
