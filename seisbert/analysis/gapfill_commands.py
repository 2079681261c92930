"""Gap filling applied to a pretrained checkpoint: scored on the test split, or on a trace.

The two commands of ``scripts/fill_gaps.py``. The tokens artifact (tokenizer, centroids,
features link, metadata) is the one named by the checkpoint's ``tokenizer_digest`` under
``cache_dir``, or ``tokens``. A ``task.params.target=psd`` model predicts windows directly;
a k-means-target model gives the expected centroid under its softmax; random-projection
models cannot fill gaps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seisbert.analysis import gapfill as G
from seisbert.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_checkpoint(
    checkpoint: str | Path,
    cache_dir: str | Path,
    out: str | Path,
    lengths: list[int],
    max_records: int,
    tokens: str | Path | None = None,
) -> pd.DataFrame:
    """Log-spectral distance on gaps of ``lengths`` windows at pre-P, P, S and coda on the
    first ``max_records`` test records, beside the baselines; writes ``out``/gapfill.csv and
    a figure of a 10 s gap at P (filled_gap.png) and returns the table."""
    out = Path(out)
    module, tdir, fcfg, centroids = G.load_model(checkpoint, cache_dir, tokens)
    table, toks, feats, test = G.evaluate_test(module, tdir, fcfg, centroids, lengths, max_records)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "gapfill.csv", index=False)
    log.info(
        "gap filling, LSD in dB on the gap (test split, %d records):\n%s",
        len(test),
        table.to_string(index=False),
    )
    figure(module, toks, feats, test[0], centroids, out / "filled_gap.png", fcfg, 10)
    return table


def figure(module, tokens, feats, row, centroids, path, fcfg, length: int) -> None:
    """One record's windows with a ``length``-window gap at P: the model's filling beside
    linear interpolation."""
    ids, psd = G.record_batch(tokens, feats, np.array([row]), module.cfg.vocab_size)
    start = round(fcfg["pre_s"] / fcfg["window_s"])  # the gap starts at P
    gap = G.gap_mask(ids, torch.tensor([start]), length, module.cfg.vocab_size)
    model = G.fill_windows(module, ids, psd, gap, centroids)[0, 1:-1].numpy()
    interp = psd.clone()
    spectral = ids < module.cfg.vocab_size
    step_mean = torch.zeros(psd.shape[1], psd.shape[2])
    interp[gap] = G.window_baselines(psd, spectral & ~gap, gap, step_mean, G.time_steps(spectral))[
        "interpolation"
    ]
    G.plot_filled_gap(
        psd[0, 1:-1].numpy(),
        {"model": model, "linear interpolation": interp[0, 1:-1].numpy()},
        (start, start + length),
        path,
        f"{length} s gap at P, test record {row}",
    )


@torch.no_grad()
def fill_trace(
    trace: str | Path,
    checkpoint: str | Path,
    cache_dir: str | Path,
    out: str | Path,
    tokens: str | Path | None = None,
    p_time: str | None = None,
    channel: str | None = None,
) -> Path:
    """Fill the gaps of a trace file (miniSEED, SAC, ...): writes ``out``/<name>_filled.npz
    (features, filled, gap) and, when it has gaps, a figure; returns the .npz path.
    ``p_time``: the P arrival (UTC, ISO 8601), default the start + pre_s."""
    if trace is None:
        raise ValueError("command trace needs a trace file")
    trace, out = Path(trace), Path(out)
    module, tdir, fcfg, centroids = G.load_model(checkpoint, cache_dir, tokens)
    feats, in_gap = G.trace_windows(trace, fcfg, p_time, channel)
    toks = Tokenizer.load(tdir / "tokenizer").tokenize(feats[None]).astype(np.int64)
    ids, psd = G.record_batch(toks, feats[None], np.array([0]), module.cfg.vocab_size)
    gap = torch.zeros_like(ids, dtype=torch.bool)
    gap[0, 1:-1] = torch.from_numpy(in_gap)
    filled = G.fill_windows(module, ids, psd, gap, centroids)[0, 1:-1].numpy()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{trace.stem}_filled.npz"
    np.savez(path, features=feats, filled=filled, gap=in_gap)
    runs = np.flatnonzero(in_gap)
    log.info("%s: %d of %d windows in gaps, filled -> %s", trace, len(runs), len(in_gap), path)
    if len(runs):
        G.plot_filled_gap(
            feats,
            {"filled": filled},
            (runs[0], runs[-1] + 1),
            out / f"{trace.stem}_filled.png",
            f"{trace.name}: {len(runs)} gap windows",
        )
    return path
