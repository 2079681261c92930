"""Example records per class: the waveform over its window and its PSD windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seisbert.data.records import CLASS_NAMES
from seisbert.figures import pyplot, save_figure


def pick_examples(metadata, per_class: int, seed: int = 0) -> list[int]:
    """Row indices of ``per_class`` records per class, preferring high SNR when known."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(metadata["label"].to_numpy() == label)
        if "trace_snr_db" in metadata.columns and len(idx) > per_class:
            snr = metadata["trace_snr_db"].to_numpy()[idx]
            idx = idx[snr >= np.median(snr)]
        rows += list(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return rows


def plot_examples(
    waveforms,
    features,
    metadata,
    frequencies_hz,
    path: Path,
    *,
    pre_s: float,
    window_s: float,
    sampling_rate_hz: float,
    per_class: int = 2,
    seed: int = 0,
) -> Path:
    """Waveform (top) and PSD windows (bottom, time x frequency) for a few records per class.

    ``waveforms`` are the records' traces (N, C, S) indexed by ``metadata.record_index``;
    ``features`` (N, T, F) and ``metadata`` are the features artifact's rows.
    """
    plt = pyplot()
    rows = pick_examples(metadata, per_class, seed)
    fig, axes = plt.subplots(
        2,
        len(rows),
        figsize=(3.6 * len(rows), 5.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [1, 1.3]},
    )
    T = features.shape[1]
    for col, i in enumerate(rows):
        meta = metadata.iloc[i]
        p = int(meta["trace_p_arrival_sample"])
        start = p - int(round(pre_s * sampling_rate_hz))
        n = int(round(T * window_s * sampling_rate_hz))
        trace = np.asarray(waveforms[int(meta["record_index"]), 0, start : start + n])
        t = np.arange(len(trace)) / sampling_rate_hz - pre_s
        ax = axes[0, col]
        ax.plot(t, trace * 1e6, lw=0.4, color="k")
        ax.axvline(0, color="tab:red", lw=0.8, label="P pick")
        ax.set_title(
            f"{CLASS_NAMES[int(meta['label'])]}\n{meta['event_id']} {meta['station_id']}",
            fontsize=8,
        )
        ax.set_xlabel("time after P (s)")
        ax.set_xlim(t[0], t[-1])
        if col == 0:
            ax.set_ylabel("velocity (µm/s)")
            ax.legend(fontsize=7, loc="upper right")
        ax = axes[1, col]
        im = ax.imshow(
            features[i, :, : len(frequencies_hz)].T,
            origin="lower",
            aspect="auto",
            extent=[
                -pre_s,
                -pre_s + T * window_s,
                frequencies_hz[0] - 0.5,
                frequencies_hz[-1] + 0.5,
            ],
            cmap="magma",
        )
        ax.set_xlabel("time after P (s)")
        if col == 0:
            ax.set_ylabel("frequency (Hz)")
        fig.colorbar(
            im,
            ax=ax,
            fraction=0.05,
            pad=0.02,
            label="scaled log10 PSD" if col == len(rows) - 1 else None,
        )
    fig.suptitle("Example records and their PSD windows (one column per record)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
