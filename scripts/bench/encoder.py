"""Training throughput of seisbert's encoder + MLM head vs. two reference encoders.

Times forward + backward + AdamW step (tokens/s) on CPU for our ``Encoder`` + ``MLMHead``,
Hugging Face ``BertForMaskedLM`` (SDPA attention) and ``nn.TransformerEncoder``, all of the
same size; ``ours_masked`` computes the logits at the masked positions only, as seisbert's
pretraining does. The headline ratio is seisbert's training step as it runs (``ours_masked``
at ``--ours-precision``, default bf16 where the CPU has native bf16 instructions) over
``BertForMaskedLM`` in float32 at the ``small`` preset. The body lives in
``seisbert.model.throughput``.

    python scripts/bench/encoder.py                      # small and base presets
    python scripts/bench/encoder.py --threads 1 --clock cpu   # on a busy machine

Rounds interleave the models and the best round counts, so a burst of load from
another process hurts every model alike and is then discarded. On a shared machine
``--threads 1 --clock cpu`` counts only this process's CPU seconds.
"""

from __future__ import annotations

import argparse
import os

from seisbert.model.throughput import (
    DEFAULT_BATCH,
    DEFAULT_STEPS,
    DEFAULT_VARIANTS,
    PRECISIONS,
    compare_throughput,
    parse_variants,
    throughput_table,
)


def per_preset(spec: str) -> dict[str, int]:
    """'small=64,base=8' -> {'small': 64, 'base': 8}."""
    return {k: int(v) for k, v in (kv.split("=") for kv in spec.split(","))}


def spec(values: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["small", "base"])
    p.add_argument(
        "--batch",
        type=str,
        default=spec(DEFAULT_BATCH),
        help="sequences per step, per preset (base at 64 takes ~1 min a step on 2 cores)",
    )
    p.add_argument("--seq-len", type=int, default=92)
    p.add_argument(
        "--vocab-size", type=int, default=150, help="spectral tokens K (the tokenizer default)"
    )
    p.add_argument(
        "--steps", type=str, default=spec(DEFAULT_STEPS), help="timed steps per round, per preset"
    )
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this process's CPU seconds; with --threads 1 it ignores other processes' load",
    )
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="model:precision pairs to time")
    p.add_argument(
        "--ours-precision",
        choices=["auto", *PRECISIONS],
        default="auto",
        help="precision of the headline 'ours' (auto: bf16 where the CPU has native bf16)",
    )
    args = p.parse_args(argv)
    try:
        parse_variants(args.variants)  # checked before any model is built
    except ValueError as err:
        raise SystemExit(f"--{err}") from None
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    rows = compare_throughput(
        presets=args.presets,
        batch=per_preset(args.batch),
        steps=per_preset(args.steps),
        seq_len=args.seq_len,
        vocab_size=args.vocab_size,
        warmup=args.warmup,
        rounds=args.rounds,
        threads=args.threads,
        clock=args.clock,
        variants=args.variants,
        ours_precision=args.ours_precision,
    )
    print(
        throughput_table(rows, args.seq_len, args.vocab_size, args.threads, args.clock, args.rounds)
    )
    return rows


if __name__ == "__main__":
    main()
