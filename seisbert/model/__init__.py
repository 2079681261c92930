"""The hand-written encoder and its task heads."""

from seisbert.model.encoder import MLP, Attention, Block, Encoder, EncoderConfig, optimizer_groups
from seisbert.model.heads import MLMHead, SequenceHead

__all__ = [
    "Attention",
    "Block",
    "Encoder",
    "EncoderConfig",
    "MLP",
    "MLMHead",
    "SequenceHead",
    "optimizer_groups",
]
