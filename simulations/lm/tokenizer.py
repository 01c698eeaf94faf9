"""A character tokenizer for the synthetic tasks: one id per character plus PAD, BOS, EOS.

>>> tok = CharTokenizer()
>>> tok.decode(tok.encode("12+3="))
'12+3='
>>> tok.encode("") == []
True
"""

from __future__ import annotations

__all__ = ["CharTokenizer", "CHARS"]

# Every character any task writes; the order fixes the ids (do not reorder: cached checkpoints).
CHARS = "0123456789+=,:|>RSA "


class CharTokenizer:
    """Maps task strings to ids; ids 0, 1, 2 are PAD, BOS and EOS."""

    pad_id = 0
    bos_id = 1
    eos_id = 2

    def __init__(self, chars: str = CHARS):
        if len(set(chars)) != len(chars):
            raise ValueError("chars: characters must be distinct")
        self.chars = chars
        self._stoi = {c: i + 3 for i, c in enumerate(chars)}
        self._itos = {i + 3: c for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 3

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; a character outside the alphabet raises ValueError."""
        try:
            return [self._stoi[c] for c in text]
        except KeyError as exc:
            raise ValueError(
                f"text: character {exc.args[0]!r} is not in the tokenizer alphabet {self.chars!r}"
            ) from None

    def decode(self, ids) -> str:
        """Text of ``ids``, stopping at the first EOS; PAD and BOS are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in self._itos:
                out.append(self._itos[i])
        return "".join(out)
