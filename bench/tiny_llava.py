"""The one tiny random LLaVA (CLIP tower + small Llama) of the project, saved with its processor.

`ssu-bench ladder` uses it as the MoHE expert on machines where no real LLaVA can be downloaded, and the
tests use it as their LLaVA (the captioner of tests/tiny_models.py, the expert of test_ssuformer_experts).
It lives here, not in tests/, because the benchmark needs it at run time and bench does not import tests.
It carries no knowledge: what it measures is plumbing (router, caches, batching), never content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The words the default tokenizer knows (the ladder's expert prompt); everything else maps to <unk>.
WORDS = "USER ASSISTANT : Describe the object that makes sound in this frame . <image>".split()
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]


def word_tokenizer(words: list[str] | tuple[str, ...] = tuple(WORDS), model_max_length: int = 128) -> Any:
    """A word-level fast tokenizer over `words` (ids: <pad> 0, <unk> 1, <s> 2, </s> 3, <image> 4)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.train_from_iterator([" ".join(words)] * 2, trainer=trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>", model_max_length=model_max_length)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok


def build_tiny_llava(out: Path, seed: int = 0, tokenizer: Any = None, text_width: int = 32, text_layers: int = 2,
                     chat_template: str | None = None) -> Path:
    """A random LlavaForConditionalGeneration (CLIP vision 32 px / patch 16, width 32, one layer; Llama of
    `text_layers` x `text_width`) and its LlavaProcessor, saved to `out` (kept when already there).

    tokenizer: a fast tokenizer with an `<image>` token (default: word_tokenizer()); pad/bos/eos must be
    ids 0/2/3 as in word_tokenizer. chat_template: for captioning through apply_chat_template."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(seed)
    tok = tokenizer if tokenizer is not None else word_tokenizer()
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16)
    vocab = max(tok.get_vocab().values()) + 1  # ids need not be contiguous after the special tokens
    text = LlamaConfig(vocab_size=vocab, hidden_size=text_width, intermediate_size=2 * text_width,
                       num_hidden_layers=text_layers, num_attention_heads=2, num_key_value_heads=2,
                       max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_layer=-1, pad_token_id=0)
    model = LlavaForConditionalGeneration(cfg).eval()
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 3
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=tok, patch_size=16, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=chat_template)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out
