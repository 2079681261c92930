"""The record set every source yields: a waveform array plus a metadata table.

seisbench-style: one metadata row per station-event record, column names that say
what they hold, and a waveform store addressed by row. Sample 0 of every record is
``trace_start``; the P pick is ``trace_p_arrival_sample`` samples later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CLASS_NAMES = ("earthquake", "blast")  # label 0, label 1

# Columns every source must fill; more are welcome (magnitude, distance, SNR, ...).
REQUIRED_COLUMNS = (
    "event_id",  # str, groups the stations of one event (splits are drawn by it)
    "station_id",  # str, e.g. "UU.SRU"
    "source_type",  # str, "earthquake" or "blast" (catalogue, may be noisy)
    "label",  # int, 0 earthquake / 1 blast, the catalogue label
    "trace_p_arrival_sample",  # int, P pick relative to sample 0
    "trace_npts",  # int, number of valid samples from sample 0 (rest is NaN padding)
)

REJECTED_COLUMNS = ("record", "source", "reason", "detail")


@dataclass
class RecordSet:
    """Waveforms ``(N, C, S)`` float32 (velocity, m/s, NaN past ``trace_npts``) and metadata."""

    waveforms: np.ndarray
    metadata: pd.DataFrame
    sampling_rate_hz: float
    channels: str = "Z"
    rejected: pd.DataFrame = field(default_factory=lambda: empty_rejected())

    def __post_init__(self):
        missing = [c for c in REQUIRED_COLUMNS if c not in self.metadata.columns]
        if missing:
            raise ValueError(f"record metadata lacks required columns {missing}")
        if self.waveforms.ndim != 3 or len(self.waveforms) != len(self.metadata):
            raise ValueError(
                f"waveforms must be (N, C, S) with N == len(metadata); got "
                f"{self.waveforms.shape} for {len(self.metadata)} rows"
            )

    def __len__(self) -> int:
        return len(self.metadata)


def empty_rejected() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=str) for c in REJECTED_COLUMNS})


def rejection(record: str, source: str, reason: str, detail: str = "") -> dict:
    """One row of the rejected-records manifest; ``reason`` is a short fixed phrase."""
    return {"record": record, "source": source, "reason": reason, "detail": detail}


class Rejected(Exception):
    """A record that cannot be used: ``reason`` is a ``Reason`` phrase, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class Reason:
    """The fixed phrases of ``rejected.csv``: counts are grouped by them."""

    # one file or one record
    UNREADABLE = "unreadable file"  # also a file that is no waveform (empty, zeros, unknown header)
    UNREADABLE_FOLDER = "unreadable folder"  # a folder under waveform_dir that cannot be listed
    CORRUPT = "corrupt file"  # the reader warned (e.g. miniSEED "Corrupt data?")
    GAP = "gap or overlap"
    MIXED_RATE = "mixed sampling rate"
    MIXED_DTYPE = "mixed data types"
    MERGE = "cannot merge"
    BAD_RATE = "unexpected sampling rate"
    LOW_NYQUIST = "nyquist below fmax"
    TOO_SHORT = "too short for the window"
    NONFINITE = "nan or inf"
    NON_NUMERIC = "non-numeric trace"
    CLIPPED = "clipped"  # samples at the int32 limits or a digitizer's flat top
    ALL_ZERO = "all-zero trace"
    ZERO_MEDIAN = "zero median bin"
    MISSING_PICK = "missing pick"
    MISSING_CHANNEL = "missing channel"
    RESPONSE = "response removal failed"
    # one catalogue row, event or pick
    BAD_VALUE = "bad catalogue value"
    CONFLICTING_TYPE = "conflicting event types"
    DUPLICATE_EVENT = "duplicate event id"  # an id reused with another origin: the first is kept
    DUPLICATE_ROW = "duplicate row"  # a file-list row repeating an earlier one: classified once
    UNKNOWN_TYPE = "unknown event type"
    NO_ORIGIN = "no pick and no origin"
    NO_DATA = "no waveform data near event"
    NO_WAVEFORM = "pick without waveform"
    STRAY_PICK = "pick of no catalogue event"
    # a waveform file that no event reached: listed, not an error
    UNUSED_FILE = "file near no event"


# What one rejected row is, so counts of different things are never added up: a file (or
# folder), a catalogue event or row, a pick, or (every other reason) one station-event record.
UNITS = {
    Reason.UNREADABLE: "files",
    Reason.CORRUPT: "files",
    Reason.UNUSED_FILE: "files",
    Reason.UNREADABLE_FOLDER: "folders",
    Reason.BAD_VALUE: "catalogue rows",
    Reason.DUPLICATE_ROW: "catalogue rows",
    Reason.CONFLICTING_TYPE: "events",
    Reason.DUPLICATE_EVENT: "events",
    Reason.UNKNOWN_TYPE: "events",
    Reason.NO_ORIGIN: "events",
    Reason.NO_DATA: "events",
    Reason.NO_WAVEFORM: "picks",
    Reason.STRAY_PICK: "picks",
}


def rejection_summary(rejected) -> str:
    """``3 records (2 gap or overlap, 1 clipped); 1 event (...)``: counts by what they count."""
    counts = reason_counts(rejected)
    if not counts:
        return "nothing rejected"
    by_unit: dict[str, dict] = {}
    for reason, n in counts.items():
        by_unit.setdefault(UNITS.get(reason, "records"), {})[reason] = n
    return "; ".join(
        f"{sum(c.values())} {unit} ({', '.join(f'{n} {r}' for r, n in c.items())})"
        for unit, c in by_unit.items()
    )


def reason_counts(rejected) -> dict:
    """``{reason: count}`` of a rejected table or list of rows, most frequent first."""
    reasons = pd.Series(
        [r["reason"] for r in rejected] if isinstance(rejected, list) else rejected["reason"],
        dtype=str,
    )
    return {str(k): int(v) for k, v in reasons.value_counts().items()}
