"""Gap filling: predict the PSD windows of a run of missing seconds with a pretrained model.

The natural use of a bidirectional model, as Linville's case study names it: the gap's
windows are [MASK]ed and predicted from both sides. A ``task.params.target=psd`` model
predicts a window directly; a k-means-target model (token or window input) predicts the
expected centroid under its softmax. Both are compared on the same gaps with linear
interpolation between the nearest windows either side and the per-time-step training mean,
by the log-spectral distance (dB) on the gap, per gap length and position in the event.
Windows outside the gap are returned unchanged, bit for bit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seisbert.config import build
from seisbert.data.sequences import Specials, window_stats, with_specials
from seisbert.features import featurize_chunk
from seisbert.figures import pyplot, save_figure
from seisbert.model.targets import log_spectral_distance, time_steps, window_baselines
from seisbert.tasks.pretrain import PretrainModule

log = logging.getLogger(__name__)

POSITIONS = (
    "pre_p",
    "p",
    "s",
    "coda",
)  # where a gap starts: first window, P, S, P + CODA_AFTER_P_S
CODA_AFTER_P_S = 40.0


def gap_starts(
    meta: pd.DataFrame, position: str, length: int, pre_s: float, window_s: float, n_windows: int
) -> np.ndarray:
    """(N,) first gap window of each record: at the record's start, P, S or in the coda."""
    fs = meta["trace_sampling_rate_hz"].to_numpy()
    p_step = round(pre_s / window_s)
    if position == "pre_p":
        start = np.zeros(len(meta), np.int64)
    elif position == "p":
        start = np.full(len(meta), p_step)
    elif position == "s":
        s_minus_p = (
            meta["trace_s_arrival_sample"] - meta["trace_p_arrival_sample"]
        ).to_numpy() / fs
        start = p_step + np.floor(s_minus_p / window_s).astype(np.int64)
    elif position == "coda":
        start = np.full(len(meta), p_step + round(CODA_AFTER_P_S / window_s))
    else:
        raise ValueError(
            f"gap position {position!r} is not allowed; choose one of {list(POSITIONS)}"
        )
    return np.clip(start, 0, n_windows - length)


def gap_mask(ids: torch.Tensor, starts: torch.Tensor, length: int, vocab_size: int) -> torch.Tensor:
    """(B, L) True at the ``length`` spectral positions from time step ``starts`` (B,)."""
    t = time_steps(ids < vocab_size)
    return (ids < vocab_size) & (t >= starts[:, None]) & (t < starts[:, None] + length)


@torch.no_grad()
def fill_windows(
    module,
    ids: torch.Tensor,
    psd: torch.Tensor,
    gap: torch.Tensor,
    centroids: torch.Tensor | None = None,
) -> torch.Tensor:
    """``psd`` (B, L, F) with the ``gap`` (B, L) windows predicted; every other window unchanged.

    ``module`` is a pretraining module; its masked positions are set to [MASK] (the gap's
    own windows are never read). A classification target needs ``centroids`` (K, F).
    """
    module.eval()
    inputs = torch.where(gap, torch.full_like(ids, module.cfg.mask_id), ids)
    hidden = module.encode({"segments": torch.zeros_like(ids)}, inputs, psd)[gap]  # (M, d)
    if module.psd_head is not None:
        pred = module.psd_head(hidden)  # (M, F)
    elif centroids is not None and module.p.target == "kmeans":
        pred = module.mlm_head(hidden).softmax(-1) @ centroids.to(hidden.dtype)  # expected centroid
    else:
        raise ValueError(
            f"gap filling needs a task.params.target=psd model or k-means centroids; this model "
            f"has target={module.p.target!r}"
        )
    filled = psd.clone()
    filled[gap] = pred.to(psd.dtype)
    return filled


def record_batch(tokens: np.ndarray, features: np.ndarray, rows: np.ndarray, vocab_size: int):
    """ids (B, T+2) ``[CLS] t [SEP]`` and windows (B, T+2, F) of ``rows``."""
    sp = Specials(vocab_size)
    ids = np.stack([np.concatenate([[sp.cls], tokens[r], [sp.sep]]) for r in rows]).astype(np.int64)
    psd = np.stack([with_specials(np.asarray(features[r])) for r in rows])
    return torch.from_numpy(ids), torch.from_numpy(psd)


def evaluate_gaps(
    module,
    tokens,
    features,
    meta: pd.DataFrame,
    rows: np.ndarray,
    train_rows: np.ndarray,
    lengths,
    fcfg: dict,
    centroids=None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Mean LSD (dB) on the gap of the model, interpolation and the step mean.

    One row per gap length x position.
    """
    step_mean = torch.tensor(window_stats(features, train_rows)["step_mean"], dtype=torch.float32)
    K, out = module.cfg.vocab_size, []
    for length in lengths:
        for position in POSITIONS:
            starts = gap_starts(
                meta.iloc[rows], position, length, fcfg["pre_s"], fcfg["window_s"], tokens.shape[1]
            )
            sums = {"model": 0.0, "interpolation": 0.0, "step_mean": 0.0}
            n = 0
            for i in range(0, len(rows), batch_size):
                ids, psd = record_batch(tokens, features, rows[i : i + batch_size], K)
                gap = gap_mask(ids, torch.from_numpy(starts[i : i + batch_size]), length, K)
                truth = psd[gap]
                sums["model"] += float(
                    log_spectral_distance(
                        fill_windows(module, ids, psd, gap, centroids)[gap], truth
                    ).sum()
                )
                spectral = ids < K
                base = window_baselines(psd, spectral & ~gap, gap, step_mean, time_steps(spectral))
                for name in ("interpolation", "step_mean"):
                    sums[name] += float(log_spectral_distance(base[name], truth).sum())
                n += int(gap.sum())
            out.append(
                {
                    "gap_s": length * fcfg["window_s"],
                    "position": position,
                    "windows": n,
                    **{f"{k}_lsd_db": v / max(n, 1) for k, v in sums.items()},
                }
            )
    return pd.DataFrame(out)


def load_model(checkpoint: str | Path, cache_dir: str | Path, tokens: str | Path | None = None):
    """A pretraining checkpoint's module (eval mode), its tokens artifact folder (the one
    named by its ``tokenizer_digest`` under ``cache_dir``, or ``tokens``), features config
    and centroids (K, F)."""
    module = PretrainModule.load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=True
    ).eval()
    tokens = (
        Path(tokens) if tokens else Path(cache_dir) / "tokens" / module.hparams.tokenizer_digest
    )
    if not (tokens / "tokens.npy").is_file():
        raise FileNotFoundError(
            f"{checkpoint}: no tokens artifact at {tokens}; pass the tokens folder or the cache dir"
        )
    fcfg = json.loads((tokens / "artifact.json").read_text())["config"]["features"]
    centroids = torch.from_numpy(np.load(tokens / "centroids.npy")).float()
    return module, tokens, fcfg, centroids


def evaluate_test(module, tokens_dir: Path, fcfg: dict, centroids, lengths, max_records: int):
    """``evaluate_gaps`` on the first ``max_records`` test records of the artifact; (table, its
    tokens, features and the test rows scored)."""
    tokens = np.load(tokens_dir / "tokens.npy", mmap_mode="r").astype(np.int64)
    feats = np.load(tokens_dir / "features.npy", mmap_mode="r")
    meta = pd.read_parquet(tokens_dir / "metadata.parquet")
    split = meta["split"].to_numpy()
    test = np.flatnonzero(split == "test")[:max_records]
    with torch.no_grad():
        table = evaluate_gaps(
            module,
            tokens,
            feats,
            meta,
            test,
            np.flatnonzero(split == "train"),
            lengths,
            fcfg,
            centroids,
        )
    return table, tokens, feats, test


def plot_filled_gap(
    truth: np.ndarray, filled: dict, gap: tuple[int, int], path: Path, title: str
) -> Path:
    """Truth and each filling (T, F) as time-frequency images, the gap outlined."""
    plt = pyplot()

    panels = {"truth": truth, **filled}
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.6 * len(panels), 3.4), sharey=True, squeeze=False
    )
    lo, hi = np.percentile(truth, [2, 98])
    for ax, (name, img) in zip(axes[0], panels.items()):
        ax.imshow(img.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
        ax.axvspan(gap[0] - 0.5, gap[1] - 0.5, fill=False, edgecolor="cyan", lw=1.5)
        ax.set_title(name)
        ax.set_xlabel("window (s from record start)")
    axes[0][0].set_ylabel("frequency bin")
    fig.suptitle(title, y=1.03)
    return save_figure(fig, path)


def trace_windows(
    path: str | Path, fcfg: dict, p_time: str | None = None, channel: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """PSD windows (T, F) of an ObsPy-readable trace with gaps, and which windows lie in a gap (T,).

    Gaps between traces are merged as masked samples and zero-filled; a window is in a gap
    when any of its samples is missing or all of them are exactly zero (a gap already
    zero-filled upstream). The cut starts ``pre_s`` before ``p_time`` (default: the
    trace's start + ``pre_s``).
    """
    import obspy

    cfg = build(fcfg, "features")
    st = obspy.read(str(path))
    if channel is not None:
        st = st.select(channel=channel)
    if len({tr.id for tr in st}) != 1:
        raise ValueError(
            f"{path} holds traces {sorted({tr.id for tr in st})}; choose one with --channel"
        )
    st.merge(method=0, fill_value=None)
    tr = st[0]
    if abs(tr.stats.sampling_rate - cfg.sampling_rate_hz) > 1e-9:
        raise ValueError(
            f"{path}: sampling rate {tr.stats.sampling_rate} Hz but features.sampling_rate_hz="
            f"{cfg.sampling_rate_hz}; resample the trace first"
        )
    data = np.ma.masked_invalid(np.ma.asarray(tr.data, dtype=np.float64))
    missing = np.ma.getmaskarray(data)
    wave = np.ma.filled(data - data.mean(), 0.0)
    p = obspy.UTCDateTime(p_time) if p_time is not None else tr.stats.starttime + cfg.pre_s
    p_sample = int(round((p - tr.stats.starttime) * cfg.sampling_rate_hz))
    feats, reasons = featurize_chunk(
        wave[None, None].astype(np.float32), np.array([p_sample]), np.array([len(wave)]), cfg
    )
    if reasons[0]:
        raise ValueError(f"{path}: cannot featurize the window around P={p}: {reasons[0]}")
    start = p_sample - round(cfg.pre_s * cfg.sampling_rate_hz)
    cut = slice(start, start + cfg.n_windows * cfg.window_samples)
    win_missing = missing[cut].reshape(cfg.n_windows, -1).any(1)
    win_zero = (np.ma.filled(data, 0.0)[cut].reshape(cfg.n_windows, -1) == 0).all(1)
    return feats[0], win_missing | win_zero
