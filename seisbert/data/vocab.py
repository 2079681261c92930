"""Token ids, stated once: K spectral tokens ``0..K-1``, then the specials
``[PAD]=K, [CLS]=K+1, [SEP]=K+2, [MASK]=K+3``; K within the paper's range."""

from __future__ import annotations

from dataclasses import dataclass

MIN_VOCAB, MAX_VOCAB = 8, 150  # the paper's range of K; ids and the specials fit int16
SPECIALS = ("pad", "cls", "sep", "mask")  # their order after the K spectral ids


@dataclass(frozen=True)
class Specials:
    """The special ids of a vocabulary of ``vocab_size`` spectral tokens."""

    vocab_size: int  # K spectral tokens

    @property
    def pad(self) -> int:
        return self.vocab_size + SPECIALS.index("pad")

    @property
    def cls(self) -> int:
        return self.vocab_size + SPECIALS.index("cls")

    @property
    def sep(self) -> int:
        return self.vocab_size + SPECIALS.index("sep")

    @property
    def mask(self) -> int:
        return self.vocab_size + SPECIALS.index("mask")

    @property
    def n_ids(self) -> int:
        """Every id: the spectral tokens and the specials (rows of a token embedding)."""
        return self.vocab_size + len(SPECIALS)
