"""Caption tokenizer: byte-level BPE trained on the training split's captions, saved with the checkpoint.

Byte-level BPE decodes back to exactly the text it encoded (spaces and punctuation included), which keeps
predicted captions comparable with references. Ids 0-3 are PAD, BOS, EOS, UNK.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from schemas import atomic

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]


class CaptionTokenizer:
    def __init__(self, tok) -> None:  # tok: tokenizers.Tokenizer
        self.tok = tok

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> CaptionTokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        texts = [t for t in texts if t]
        # The alphabet is only what the captions use, so a small vocab still leaves room for merges.
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                      initial_alphabet=[])
        tok.train_from_iterator(texts or ["empty"], trainer=trainer)
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> CaptionTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(text))

    @classmethod
    def load(cls, path: str | Path) -> CaptionTokenizer:
        return cls.from_json(Path(path).read_text())

    def to_json(self) -> str:
        return self.tok.to_str()

    def save(self, path: str | Path) -> None:

        atomic.write_text(path, self.to_json())

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())

    def encode(self, text: str, max_len: int) -> list[int]:
        """Token ids of `text` followed by EOS, truncated to max_len (EOS kept last)."""
        ids = self.tok.encode(text).ids if text else []
        return [*ids[: max_len - 1], EOS]

    def length(self, text: str) -> int:
        """Tokens `text` needs, EOS included (what encode keeps when max_len is large enough)."""
        return (len(self.tok.encode(text).ids) if text else 0) + 1

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i > UNK:
                out.append(i)
        return self.tok.decode(out).strip()

    def token_text(self, i: int) -> str:
        """The text one id stands for (used to map our vocabulary onto CLIP's, see rcc.py)."""
        return self.tok.decode([i]) if i > UNK else ""
