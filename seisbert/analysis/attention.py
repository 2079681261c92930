"""What the encoder attends to: per-head maps, summed attention, rollout and TauP arrivals.

Reproduces the case study's attention figures (Linville, "Exploring Foundation Models for
Seismic Event Processing", Figs. 8-10): every layer's and head's attention over one
record's token sequence, attention summed over layers and heads for one query time step,
and body-wave arrivals from ObsPy TauP (ak135) to read it against. Attention rollout
(Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers") is the second
summary. Drawing lives in ``attention_plots``; this module only computes.

Conventions: the encoder sees ``[CLS] t1..tT [SEP]`` (L = T + 2). ``RecordView.attention``
keeps all L positions (bertviz and rollout need them); every time-step view drops the
[CLS]/[SEP] rows and columns and renormalises each query's row over the T spectral keys,
so "attention from step q" is a distribution over the record's windows. Window q
(0-based) covers ``[q * window_s - pre_s, (q + 1) * window_s - pre_s)`` s after the P pick.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.artifacts import paths as artifacts
from seisbert.model.encoder import Encoder, EncoderConfig
from seisbert.pipeline import TokenSet, load_records

log = logging.getLogger(__name__)

# TauP phase names asked for: upgoing p/s at short range, Pg/Sg crustal, Pn/Sn head waves.
DEFAULT_PHASES = ("p", "P", "Pg", "Pn", "s", "S", "Sg", "Sn")


# ------------------------------------------------------------------------------ model
def load_encoder(checkpoint: str | Path):
    """The encoder of a pretraining or fine-tuning checkpoint, in eval mode.

    Rebuilds ``Encoder(EncoderConfig(**hparams["model"]))`` and loads the ``encoder.*``
    weights, so any LightningModule with an ``.encoder`` and a ``model`` hparam works.
    """
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = ckpt.get("hyper_parameters", {})
    if "model" not in hparams:
        raise ValueError(
            f"{checkpoint} has no 'model' hyperparameters; is it a seisbert checkpoint?"
        )
    encoder = Encoder(EncoderConfig(**hparams["model"]))
    state = {
        k[len("encoder.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")
    }
    encoder.load_state_dict(state)
    return encoder.eval()


def attention_maps(encoder, tokens: np.ndarray) -> np.ndarray:
    """Attention probabilities (layers, heads, T+2, T+2) float32 of one record's tokens (T,)."""
    import torch

    # The layout of seisbert.data.sequences.record_input, built here because importing that
    # module imports Lightning (seconds); a test checks the two agree.
    cfg = encoder.cfg
    ids = torch.from_numpy(
        np.concatenate([[cfg.cls_id], np.asarray(tokens), [cfg.sep_id]]).astype(np.int64)
    )
    encoder.eval()  # attention dropout off: the maps are the model's, not a noisy sample
    with torch.no_grad():
        _, att = encoder(ids[None], torch.zeros_like(ids)[None], return_attention=True)
    return torch.stack([a[0] for a in att]).float().numpy()  # (layers, heads, L, L)


# -------------------------------------------------------------------------- summaries
def spectral_attention(att: np.ndarray) -> np.ndarray:
    """Drop [CLS]/[SEP] (first and last position) from the last two axes; rows renormalised.

    ``(..., T+2, T+2) -> (..., T, T)``; each query's row again sums to 1.
    """
    inner = att[..., 1:-1, 1:-1]
    return inner / np.maximum(inner.sum(-1, keepdims=True), 1e-12)


def special_share(att: np.ndarray) -> np.ndarray:
    """Fraction of each spectral query's attention on [CLS]/[SEP]: (..., T+2, T+2) -> (..., T)."""
    rows = att[..., 1:-1, :]  # (..., T, L)
    return rows[..., 0] + rows[..., -1]


def summed_attention(att_spectral: np.ndarray, query: int | None = None) -> np.ndarray:
    """Attention summed over all layers and heads (the paper's Fig. 10).

    ``att_spectral`` (layers, heads, T, T) -> (T,) for one query step, or (T, T) with
    row q for query q when ``query`` is None. Each row sums to layers * heads.
    """
    total = att_spectral.sum(axis=(0, 1))  # (T, T)
    return total if query is None else total[query]


def attention_rollout(att: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) over the full sequence.

    ``att`` (layers, heads, L, L) -> (L, L).

    Per layer, average the heads and mix in the residual connection,
    ``A' = (1 - residual) * A + residual * I`` (rows still sum to 1); then multiply up
    the layers, ``R = A'_n ... A'_1``. Row i is how much of each input token reaches
    position i at the top. Rows sum to 1.
    """
    n = att.shape[-1]
    rollout = np.eye(n)
    for layer in att.astype(np.float64):
        mixed = (1 - residual) * layer.mean(0) + residual * np.eye(n)  # (L, L)
        rollout = mixed @ rollout
    return rollout


# ----------------------------------------------------------------------------- arrivals
@functools.lru_cache(maxsize=4)
def _taup_model(name: str):
    from obspy.taup import TauPyModel

    return TauPyModel(name)


def taup_arrivals(
    depth_km: float, distance_km: float, phases=DEFAULT_PHASES, model: str = "ak135"
) -> dict:
    """Travel times (s after origin) of the first arrival of each phase name TauP returns.

    Phases TauP finds no ray for at this depth and distance are absent (e.g. Pn short
    of the crossover, or p/s from a surface source).
    """
    from obspy.geodetics import kilometer2degrees

    found = _taup_model(model).get_travel_times(
        source_depth_in_km=max(float(depth_km), 0.0),
        distance_in_degree=kilometer2degrees(float(distance_km)),
        phase_list=list(phases),
    )
    times: dict[str, float] = {}
    for arrival in found:  # sorted by time, so the first of each name is kept
        times.setdefault(arrival.name, float(arrival.time))
    return times


def first_arrivals(times: dict) -> tuple[float | None, float | None]:
    """Earliest P-type and S-type times of ``taup_arrivals`` output (None if absent)."""
    p = [t for name, t in times.items() if name[0] in "pP"]
    s = [t for name, t in times.items() if name[0] in "sS"]
    return (min(p) if p else None), (min(s) if s else None)


def arrivals_after_p(times: dict) -> dict:
    """TauP times relative to the first P arrival: the record's P pick is that arrival.

    Phases with (nearly) the same time share one entry named e.g. ``"P/Pg"``.
    """
    t_p, _ = first_arrivals(times)
    if t_p is None:
        return {}
    merged: dict[str, float] = {}
    for name, t in sorted(times.items(), key=lambda kv: kv[1]):
        same = [k for k, v in merged.items() if abs(v - (t - t_p)) < 0.05]
        if same:
            merged[f"{same[0]}/{name}"] = merged.pop(same[0])
        else:
            merged[name] = t - t_p
    return merged


def metadata_arrivals(meta: pd.Series, sampling_rate_hz: float) -> dict:
    """Arrivals the record's metadata knows (synthetic truth), in s after its P pick."""
    pick = float(meta["trace_p_arrival_sample"])
    cols = {
        "P onset": "trace_p_onset_sample",
        "S": "trace_s_arrival_sample",
        "Rg": "trace_rg_arrival_sample",
    }
    return {
        name: (float(meta[c]) - pick) / sampling_rate_hz
        for name, c in cols.items()
        if c in meta and pd.notna(meta[c])
    }


# ------------------------------------------------------------------------ record view
@dataclass
class RecordView:
    """Everything the attention figures of one record need."""

    attention: np.ndarray  # (layers, heads, T+2, T+2) with [CLS] first and [SEP] last
    tokens: np.ndarray  # (T,) spectral token ids
    meta: dict  # event_id, station_id, label, source_type, depth, distance, row, ...
    window_s: float = 1.0
    pre_s: float = 10.0
    waveform: np.ndarray | None = None  # (S,) vertical channel
    sampling_rate_hz: float = 100.0
    p_sample: float = 0.0  # sample index of the P pick in ``waveform``
    psd: np.ndarray | None = None  # (T, F) scaled PSD windows as tokenised
    frequencies_hz: np.ndarray | None = None  # (F,)
    arrivals: dict = field(default_factory=dict)  # TauP, s after P pick
    truth: dict = field(default_factory=dict)  # metadata arrivals, s after P pick

    @property
    def n_steps(self) -> int:
        return len(self.tokens)

    @property
    def step_start_s(self) -> np.ndarray:
        """Start of each window, s after the P pick (T,)."""
        return np.arange(self.n_steps) * self.window_s - self.pre_s

    @property
    def spectral(self) -> np.ndarray:
        return spectral_attention(self.attention)  # (layers, heads, T, T)

    def rollout(self) -> np.ndarray:
        """Rollout restricted to spectral positions, rows renormalised: (T, T)."""
        return spectral_attention(attention_rollout(self.attention))

    def labels(self) -> list[str]:
        """Token labels for bertviz: ``[CLS]``, ``t07:s12`` (token 7 at 12 s after P), ``[SEP]``."""
        secs = np.floor(self.step_start_s).astype(int)
        return ["[CLS]"] + [f"t{tok:02d}:s{s}" for tok, s in zip(self.tokens, secs)] + ["[SEP]"]

    def step_of(self, seconds_after_p: float) -> int:
        """0-based time step containing a time (s after P), clipped to the record."""
        return int(
            np.clip(np.floor((seconds_after_p + self.pre_s) / self.window_s), 0, self.n_steps - 1)
        )

    def title(self) -> str:
        m = self.meta
        kind = m.get("source_type", f"label {m.get('label')}")
        parts = [f"{m.get('event_id')} at {m.get('station_id')}", str(kind)]
        if m.get("path_ep_distance_km") is not None:
            parts.append(f"{m['path_ep_distance_km']:.0f} km")
        if m.get("source_depth_km") is not None:
            parts.append(f"depth {m['source_depth_km']:.1f} km")
        return ", ".join(parts)


# --------------------------------------------------------------------------- artifacts
@dataclass
class Artifacts:
    """Token sequences and, when found, the PSD windows and waveforms they came from.

    Rows of ``tokens``, ``psd`` and ``metadata`` align; ``metadata.record_index`` points
    into ``waveforms`` (N_records, C, S).
    """

    tokens: np.ndarray  # (N, T)
    metadata: pd.DataFrame
    psd: np.ndarray | None = None  # (N, T, F)
    frequencies_hz: np.ndarray | None = None
    waveforms: np.ndarray | None = None
    waveform_metadata: pd.DataFrame | None = None
    sampling_rate_hz: float = 100.0
    window_s: float = 1.0
    pre_s: float = 10.0
    vocab_size: int | None = None  # K of the tokenizer, checked against the checkpoint

    @classmethod
    def load(
        cls, tokens_dir: Path, features_dir: Path | None = None, records_dir: Path | None = None
    ):
        tset = TokenSet.load(tokens_dir)
        art = cls(np.asarray(tset.tokens), tset.metadata, vocab_size=int(tset.vocab_size))
        if features_dir is not None:
            art.psd = np.load(Path(features_dir) / "features.npy", mmap_mode="r")
            freqs = Path(features_dir) / "frequencies_hz.npy"
            art.frequencies_hz = np.load(freqs) if freqs.exists() else None
            fcfg = artifacts.recorded_config(features_dir).get("features", {})
            art.window_s, art.pre_s = (
                float(fcfg.get("window_s", 1.0)),
                float(fcfg.get("pre_s", 10.0)),
            )
        if records_dir is not None:
            records = load_records(Path(records_dir))
            art.waveforms, art.waveform_metadata = records.waveforms, records.metadata
            art.sampling_rate_hz = float(records.sampling_rate_hz)
        return art


def select_row(
    metadata: pd.DataFrame,
    row: int | None = None,
    event_id: str | None = None,
    station_id: str | None = None,
) -> int:
    """Row of one record, by row index or by event id (and station id, else its first station)."""
    if row is not None:
        if not 0 <= row < len(metadata):
            raise ValueError(f"row={row} is out of range; allowed [0, {len(metadata) - 1}]")
        return int(row)
    if event_id is None:
        raise ValueError("give a row index or an event_id")
    hit = metadata["event_id"].astype(str) == str(event_id)
    if station_id is not None:
        hit &= metadata["station_id"].astype(str) == str(station_id)
    rows = np.flatnonzero(hit.to_numpy())
    if not len(rows):
        raise ValueError(
            f"no record with event_id={event_id!r}"
            + (f" and station_id={station_id!r}" if station_id is not None else "")
        )
    return int(rows[0])


def pick_rows(
    metadata: pd.DataFrame, per_class: int, split: str | None = "test", seed: int = 0
) -> list[int]:
    """``per_class`` seeded rows of each class (by ``label``), from ``split`` when it has them."""
    rng = np.random.default_rng(seed)
    pool = (
        metadata
        if split is None or split not in set(metadata.get("split", []))
        else metadata[metadata["split"] == split]
    )
    rows = []
    for _, group in pool.groupby("label", sort=True):
        take = min(per_class, len(group))
        rows += sorted(rng.choice(group.index.to_numpy(), size=take, replace=False).tolist())
    return [int(r) for r in rows]


META_KEYS = (
    "event_id",
    "station_id",
    "label",
    "source_type",
    "split",
    "source_depth_km",
    "path_ep_distance_km",
    "source_magnitude",
    "trace_snr_db",
)


def record_view(
    encoder, art: Artifacts, row: int, phases=DEFAULT_PHASES, model: str = "ak135"
) -> RecordView:
    """Attention of one record plus its waveform, PSD windows and TauP arrivals."""
    if art.vocab_size is not None and art.vocab_size != encoder.cfg.vocab_size:
        raise ValueError(
            f"the tokens have K={art.vocab_size} but the checkpoint's "
            f"model.vocab_size={encoder.cfg.vocab_size}; pass the matching --tokens"
        )
    meta = art.metadata.iloc[row]
    view = RecordView(
        attention_maps(encoder, art.tokens[row]),
        np.asarray(art.tokens[row]),
        {k: _plain(meta[k]) for k in META_KEYS if k in meta} | {"row": int(row)},
        art.window_s,
        art.pre_s,
        sampling_rate_hz=art.sampling_rate_hz,
        frequencies_hz=art.frequencies_hz,
    )
    if art.psd is not None:
        view.psd = np.asarray(art.psd[row], dtype=np.float32)
    if art.waveforms is not None and "record_index" in meta:
        rec = int(meta["record_index"])
        view.waveform = np.asarray(art.waveforms[rec, 0], dtype=np.float64)
        view.p_sample = float(art.waveform_metadata.iloc[rec]["trace_p_arrival_sample"])
    if "trace_p_arrival_sample" in meta:
        view.truth = metadata_arrivals(meta, art.sampling_rate_hz)
    if {"source_depth_km", "path_ep_distance_km"} <= set(meta.index) and np.isfinite(
        [meta["source_depth_km"], meta["path_ep_distance_km"]]
    ).all():
        view.arrivals = arrivals_after_p(
            taup_arrivals(meta["source_depth_km"], meta["path_ep_distance_km"], phases, model)
        )
    return view


def _plain(value):
    """NumPy scalars -> Python scalars (JSON and f-strings)."""
    return value.item() if hasattr(value, "item") else value
