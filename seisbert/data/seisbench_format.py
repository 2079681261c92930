"""SeisBench's dataset format: export a ``RecordSet`` to it, and the ``seisbench`` source.

Follows seisbench's "The SeisBench data format" (docs/pages/data/data_format.rst):
``metadata.csv`` (one row per trace, ``CATEGORY_PARAMETER_UNIT`` column names,
``split`` in train/dev/test, ``trace_category`` for the event type) beside
``waveforms.hdf5`` holding ``data/<trace_name>`` arrays and a ``data_format`` group
(``dimension_order``, ``component_order``, ``sampling_rate``). Reading also handles
trace blocks (``block$slice`` names) and chunked datasets. Only h5py is used, not
the seisbench package.

A trace that cannot be used is rejected with its reason and the rest go on: an event whose
rows name two event types (every row of it, naming the event and both types), a P pick cell
that is not a number (naming the column), a trace that is not numbers, a clipped trace. A
metadata CSV that is not UTF-8, an HDF5 file that cannot be opened (truncated, partly
copied) or one without its ``data_format`` group is a ValueError naming the file.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seisbert.config import check_choice, check_range
from seisbert.data.catalog import DEFAULT_EVENT_TYPES, map_event_type, normalize_type, read_csv_utf8
from seisbert.data.records import (
    CLASS_NAMES,
    REQUIRED_COLUMNS,
    Reason,
    RecordSet,
    empty_rejected,
    rejection,
)
from seisbert.data.traces import clip_problem, nyquist_problem, resampled
from seisbert.data.waveforms import UNKNOWN_CLASS, Rejected, place_window

log = logging.getLogger(__name__)

SOURCE = "seisbench"
SPLIT_VALUES = ("train", "dev", "test")
# Columns whose values are codes: read them as text ("001" must stay "001").
TEXT_COLUMNS = (
    "trace_name",
    "source_id",
    "station_network_code",
    "station_code",
    "station_location_code",
    "trace_category",
    "source_type",
    "split",
    "event_id",
    "station_id",
    "trace_start_time",
    "source_origin_time",
)


# ------------------------------------------------------------------------------ export
def export_seisbench(
    records: RecordSet, split=None, out_dir: str | Path = "seisbench_export", progress: bool = True
) -> Path:
    """Write ``records`` as a SeisBench dataset in ``out_dir``; returns ``out_dir``.

    ``split`` is one value per record (train/dev/test; "val" is written as "dev") or
    None to write no split column. Each trace is stored as its valid samples only,
    ``(C, trace_npts)`` float32, so NaN padding never reaches the file. Both files are
    written under temporary names and renamed, so a killed export leaves no dataset
    that looks complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = seisbench_metadata(records, split)
    h5_tmp, csv_tmp = (
        out_dir / f"{name}.tmp-{os.getpid()}" for name in ("waveforms.hdf5", "metadata.csv")
    )
    _write_waveforms(h5_tmp, records, meta, progress)
    meta.to_csv(csv_tmp, index=False)
    os.replace(h5_tmp, out_dir / "waveforms.hdf5")
    os.replace(csv_tmp, out_dir / "metadata.csv")
    log.info(
        "exported %d traces (%s, %g Hz) to %s",
        len(meta),
        records.channels,
        records.sampling_rate_hz,
        out_dir,
    )
    return out_dir


def seisbench_metadata(records: RecordSet, split=None) -> pd.DataFrame:
    """The metadata table in seisbench's names: event id -> ``source_id``, ``station_id``
    -> network and station codes, ``source_type`` -> ``trace_category`` (kept too)."""
    meta = records.metadata.reset_index(drop=True).copy()
    net_sta = (
        meta["station_id"].astype(str).str.split(".", n=1, expand=True).reindex(columns=[0, 1])
    )
    has_net = net_sta[1].notna()
    front = pd.DataFrame(
        {
            "trace_name": [f"{i:07d}_{_safe(s)}" for i, s in enumerate(meta["station_id"])],
            "source_id": meta["event_id"].astype(str),
            "station_network_code": net_sta[0].where(has_net, ""),
            "station_code": net_sta[1].where(has_net, net_sta[0]),
            "trace_category": meta["source_type"],
        }
    )
    if split is not None:
        front.insert(1, "split", _split_values(split, len(meta)))
    if "trace_sampling_rate_hz" not in meta:
        meta["trace_sampling_rate_hz"] = records.sampling_rate_hz
    rest = meta.drop(columns=["event_id", "station_id"] + [c for c in front if c in meta])
    return pd.concat([front, rest], axis=1)


def _split_values(split, n: int) -> np.ndarray:
    values = np.asarray(split).astype(str)
    values = np.where(values == "val", "dev", values)
    if values.shape != (n,):
        raise ValueError(f"split has shape {values.shape}; expected one value per record ({n})")
    bad = sorted(set(values.tolist()) - set(SPLIT_VALUES))
    if bad:
        raise ValueError(f"split values {bad} are not allowed; use {list(SPLIT_VALUES)}")
    return values


def _write_waveforms(path: Path, records: RecordSet, meta: pd.DataFrame, progress: bool) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        fmt = f.create_group("data_format")
        fmt["dimension_order"] = "CW"
        fmt["component_order"] = records.channels
        fmt["sampling_rate"] = float(records.sampling_rate_hz)
        data = f.create_group("data")
        npts = meta["trace_npts"].to_numpy(int)
        for i, name in enumerate(tqdm(meta["trace_name"], desc="export", disable=not progress)):
            data.create_dataset(
                name, data=np.asarray(records.waveforms[i, :, : npts[i]], np.float32)
            )


def _safe(text: str) -> str:
    """A trace-name fragment: no '$' (block syntax) and no '/' (hdf5 groups)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(text))


# ------------------------------------------------------------------------------ source
@dataclass
class SeisBenchSource:
    path: str | None = None  # folder with metadata.csv + waveforms.hdf5 (or chunks)
    channels: str = "Z"  # Z | ZRT
    pre_s: float = 20.0  # record = [P - pre_s, P + post_s)
    post_s: float = 100.0
    sampling_rate_hz: float = 100.0  # traces at other rates are resampled (polyphase, anti-aliased)
    min_sampling_rate_hz: float = 40.0
    fmax_hz: float | None = None  # the YAML sets ${features.fmax_hz}; None: no Nyquist check
    min_power_at_fmax: float = 0.9  # resampling must keep this fraction of the PSD at fmax_hz
    # first column with a value names the event type
    type_columns: list = field(default_factory=lambda: ["trace_category", "source_type"])
    event_types: dict = field(default_factory=lambda: dict(DEFAULT_EVENT_TYPES))
    p_columns: list = field(
        default_factory=lambda: [
            "trace_p_arrival_sample",
            "trace_P_arrival_sample",
            "trace_Pg_arrival_sample",
            "trace_Pn_arrival_sample",
            "trace_P1_arrival_sample",
        ]
    )
    splits: list | None = None  # keep only these split values; None keeps every row
    unknown_type: str = "reject"  # a type event_types does not map: reject | keep (label -1)

    def __post_init__(self):
        check_choice("data.channels", self.channels, ("Z", "ZRT"))
        check_choice("data.unknown_type", self.unknown_type, ("reject", "keep"))
        for key, value in self.event_types.items():
            check_choice(f"data.event_types.{key}", value, CLASS_NAMES)
        for key, lo in (
            ("pre_s", 0.0),
            ("post_s", 1.0),
            ("sampling_rate_hz", 1.0),
            ("min_sampling_rate_hz", 0.0),
        ):
            check_range(f"data.{key}", getattr(self, key), lo)
        check_range("data.min_power_at_fmax", self.min_power_at_fmax, 0.0, 1.0)

    @property
    def n_samples(self) -> int:  # S
        return round((self.pre_s + self.post_s) * self.sampling_rate_hz)

    def load(self, progress: bool = True) -> RecordSet:
        """Read every chunk of the dataset into a ``RecordSet``; unusable rows are rejected."""
        if self.path is None:
            raise ValueError("data.path must be set for data=seisbench")
        chunks = [
            (
                read_csv_utf8(
                    meta_path, "data.path", low_memory=False, dtype={c: str for c in TEXT_COLUMNS}
                ),
                h5_path,
            )
            for meta_path, h5_path in chunk_files(Path(self.path))
        ]
        # over every row of every chunk: an event's rows may sit in other chunks or splits
        conflicts = conflicting_types([m for m, _ in chunks], self.type_columns)
        waves, rows, rejected = [], [], []
        for meta, h5_path in chunks:
            if self.splits is not None and "split" in meta:
                meta = meta[meta["split"].isin(list(self.splits))]
            self._read_chunk(meta, h5_path, conflicts, (waves, rows, rejected), progress)
        shape = (0, len(self.channels), self.n_samples)
        waveforms = np.stack(waves) if waves else np.zeros(shape, np.float32)  # (N, C, S)
        metadata = pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS) if not rows else None)
        metadata = metadata[
            list(REQUIRED_COLUMNS) + [c for c in metadata if c not in REQUIRED_COLUMNS]
        ]
        rejected = pd.DataFrame(rejected) if rejected else empty_rejected()
        counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
        if not len(metadata):  # an empty set must not be cached as if it were data
            first = rejected.drop_duplicates("reason").head(5)
            examples = "; ".join(f"{r.reason}: {r.record} {r.detail}" for r in first.itertuples())
            raise ValueError(
                f"data=seisbench {self.path}: no usable record (rejected {counts}); "
                f"nothing was cached. First of each: {examples or 'none'}"
            )
        log.info(
            "seisbench %s: %d records; rejected %d %s",
            self.path,
            len(metadata),
            len(rejected),
            counts,
        )
        return RecordSet(waveforms, metadata, self.sampling_rate_hz, self.channels, rejected)

    def _read_chunk(
        self, meta: pd.DataFrame, h5_path: Path, conflicts: dict, out: tuple, progress: bool
    ) -> None:
        """Append the chunk's records and rejections to ``out`` = (waves, rows, rejected)."""
        waves, rows, rejected = out
        with open_waveforms(h5_path) as f:
            fmt = data_format(f)
            for _, row in tqdm(
                meta.iterrows(), total=len(meta), desc=h5_path.name, disable=not progress
            ):
                try:
                    if _event_id(row) in conflicts:
                        raise Rejected(Reason.CONFLICTING_TYPE, conflicts[_event_id(row)])
                    wave, record = self._record(row, f, fmt)
                except Rejected as r:
                    rejected.append(
                        rejection(str(row.get("trace_name")), SOURCE, r.reason, r.detail)
                    )
                    continue
                waves.append(wave)
                rows.append(record)

    def _record(self, row: pd.Series, f, fmt: dict) -> tuple[np.ndarray, dict]:
        source_type = self._source_type(row)
        p = self._p_sample(row)
        fs = _sampling_rate(row, fmt)
        if fs < self.min_sampling_rate_hz:
            raise Rejected(
                Reason.BAD_RATE, f"{fs} Hz < data.min_sampling_rate_hz={self.min_sampling_rate_hz}"
            )
        problem = nyquist_problem(fs, self.sampling_rate_hz, self.fmax_hz, self.min_power_at_fmax)
        if problem is not None:
            raise Rejected(Reason.LOW_NYQUIST, problem)
        raw = read_trace(f, row["trace_name"], fmt)  # (C, n) as stored
        for c, component in zip(fmt["component_order"], raw):  # before rotation mixes them
            clipped = clip_problem(component)
            if clipped is not None:
                raise Rejected(Reason.CLIPPED, f"trace {row['trace_name']!r} {c}: {clipped[1]}")
        data = self._components(raw, fmt, row)  # (C, n)
        if fs != self.sampling_rate_hz:
            data = np.stack(
                [resampled(c, fs, self.sampling_rate_hz) for c in data.astype(np.float64)]
            ).astype(np.float32)  # (C, n')
            p = p * self.sampling_rate_hz / fs
        wave, p_sample, npts, offset_s = place_window(
            data, 0.0, p / self.sampling_rate_hz, self.pre_s, self.n_samples, self.sampling_rate_hz
        )
        out = row.to_dict()
        out.update(
            event_id=_event_id(row),
            station_id=_station_id(row),
            source_type=source_type,
            label=CLASS_NAMES.index(source_type) if source_type in CLASS_NAMES else -1,
            trace_p_arrival_sample=p_sample,
            trace_npts=npts,
            trace_sampling_rate_hz=self.sampling_rate_hz,
        )
        if offset_s and isinstance(row.get("trace_start_time"), str):
            from obspy import UTCDateTime

            out["trace_start_time"] = str(UTCDateTime(row["trace_start_time"]) + offset_s)
        return wave, out

    def _p_sample(self, row: pd.Series) -> float:
        """The P sample of the first set ``p_columns`` cell; text there rejects the trace."""
        for column in self.p_columns:
            value = row.get(column)
            if value is None or (np.isscalar(value) and pd.isna(value)):
                continue
            try:  # one text cell makes pandas read the whole column as text
                p = float(value)
            except (TypeError, ValueError):
                raise Rejected(
                    Reason.BAD_VALUE,
                    f"trace {row.get('trace_name')!r}: {column}={value!r} is not a sample number",
                ) from None
            if math.isfinite(p):
                return p
        raise Rejected(Reason.MISSING_PICK, f"none of {self.p_columns} is set")

    def _source_type(self, row: pd.Series) -> str:
        raw = next(
            (row[c] for c in self.type_columns if c in row and isinstance(row[c], str)), None
        )
        source_type = map_event_type(raw, self.event_types)
        if source_type is None and self.unknown_type == "keep":
            return UNKNOWN_CLASS
        if source_type is None:
            raise Rejected(
                Reason.UNKNOWN_TYPE,
                f"event type {raw!r} (columns {self.type_columns}) is not in data.event_types",
            )
        return source_type

    def _components(self, data: np.ndarray, fmt: dict, row: pd.Series) -> np.ndarray:
        """``(C, n)`` in this source's channel order (Z, or Z, R, T rotated from N/E or 1/2)."""
        order = fmt["component_order"].replace("1", "N").replace("2", "E")
        if all(c in order for c in self.channels):
            return data[[order.index(c) for c in self.channels]]
        baz = row.get("path_back_azimuth_deg", math.nan)
        if self.channels == "ZRT" and all(c in order for c in "ZNE") and _finite(baz):
            from obspy.signal.rotate import rotate_ne_rt

            n, e = (data[order.index(c)].astype(np.float64) for c in "NE")
            r, t = rotate_ne_rt(n, e, float(baz))
            return np.stack([data[order.index("Z")], r, t]).astype(np.float32)  # (3, n)
        raise Rejected(
            Reason.MISSING_CHANNEL,
            f"component order {fmt['component_order']!r} "
            f"cannot give {self.channels!r} (R/T need N/E and path_back_azimuth_deg)",
        )


# ---------------------------------------------------------------------------- helpers
def chunk_files(path: Path) -> list[tuple[Path, Path]]:
    """(metadata, waveforms) file pairs: the ``chunks`` file, else one dataset, else by name."""
    if path.is_file():
        raise ValueError(
            f"data.path={str(path)!r} is a file; give the SeisBench dataset's "
            "folder (metadata.csv beside waveforms.hdf5)"
        )
    if not path.is_dir():
        raise FileNotFoundError(f"data.path={str(path)!r} does not exist")
    if (path / "chunks").is_file():
        names = [c.strip() for c in (path / "chunks").read_text().splitlines() if c.strip()]
    elif (path / "metadata.csv").is_file():
        names = [""]
    else:
        names = sorted(p.name[len("metadata") : -len(".csv")] for p in path.glob("metadata*.csv"))
    if not names:
        raise ValueError(f"data.path={str(path)!r} holds no metadata.csv (not a SeisBench dataset)")
    return [(path / f"metadata{c}.csv", path / f"waveforms{c}.hdf5") for c in names]


def conflicting_types(metas: list[pd.DataFrame], type_columns: list) -> dict[str, str]:
    """Event id -> why, for the events whose rows name two event types.

    A row's type is its first set ``type_columns`` value, as ``_source_type`` reads it; a
    row without an event id is its own event and cannot conflict.
    """
    parts = []
    for meta in metas:
        ids = _column(meta, "source_id").combine_first(_column(meta, "event_id"))
        types = pd.Series(np.nan, index=meta.index, dtype=object)
        for c in reversed(type_columns):  # the first column wins: it is applied last
            types = _column(meta, c).combine_first(types)
        parts.append(
            pd.DataFrame(
                {
                    "event": ids,
                    "type": types.map(normalize_type),
                    "trace": _column(meta, "trace_name"),
                }
            )
        )
    rows = pd.concat(parts).dropna(subset=["event"]) if parts else pd.DataFrame()
    if not len(rows):
        return {}
    rows = rows[rows["type"] != ""]
    n_types = rows.groupby("event")["type"].nunique()  # vectorised: a dataset has 1M events
    out = {}
    for event, group in rows[rows["event"].isin(n_types.index[n_types > 1])].groupby(
        "event", sort=False
    ):
        said = " and ".join(
            f"{t!r} (traces {', '.join(map(str, g['trace'][:3]))}{', ...' if len(g) > 3 else ''})"
            for t, g in group.groupby("type", sort=False)
        )
        out[event] = f"event {event} is written as {said}; every trace of it is skipped"
    return out


def _column(meta: pd.DataFrame, name: str) -> pd.Series:
    """A text column of ``meta``, NaN where unset or absent (or not text)."""
    if name not in meta:
        return pd.Series(np.nan, index=meta.index, dtype=object)
    col = meta[name]
    return col.where(col.map(lambda v: isinstance(v, str)))


def open_waveforms(path: Path):
    """The HDF5 file of a chunk, open for reading; a missing or broken one names the file."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(
            f"data.path: {path} does not exist (each metadata CSV needs its "
            "waveforms HDF5 file beside it)"
        )
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(
            f"data.path: {path} cannot be opened as HDF5 ({e}); a truncated or "
            "partly copied file? Copy it again"
        ) from None


def data_format(f) -> dict:
    """The ``data_format`` group as plain strings/floats (datasets or attributes)."""
    if "data_format" not in f:
        raise ValueError(
            f"{f.filename} has no 'data_format' group; a SeisBench waveforms file "
            "names dimension_order (CW or WC) and component_order (e.g. ZNE) there"
        )
    group = f["data_format"]
    raw = {**dict(group.attrs), **{k: group[k][()] for k in group.keys()}}
    out = {}
    for key, value in raw.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "SO":  # a list of identifiers
            value = "".join(v.decode() if isinstance(v, bytes) else str(v) for v in value)
        out[key] = value
    if "dimension_order" not in out or "component_order" not in out:
        raise ValueError(f"{f.filename}: data_format lacks dimension_order or component_order")
    if out["dimension_order"] not in ("CW", "WC"):
        raise ValueError(
            f"{f.filename}: dimension_order {out['dimension_order']!r} is not "
            "supported; use CW or WC"
        )
    return out


def read_trace(f, trace_name: str, fmt: dict) -> np.ndarray:
    """One trace as ``(C, n)`` float32; ``block$i,:3,:600`` names address trace blocks."""
    block, _, where = str(trace_name).partition("$")
    try:
        array = f["data"][block]
        array = array[_parse_slice(where)] if where else array[()]
    except (KeyError, ValueError, IndexError, OSError) as e:  # OSError: a truncated dataset
        raise Rejected(Reason.UNREADABLE, f"trace {trace_name!r} in {f.filename}: {e}") from None
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise Rejected(
            Reason.NON_NUMERIC,
            f"trace {trace_name!r} in {f.filename} holds {array.dtype} values, not numbers",
        )
    array = array.astype(np.float32)
    if array.ndim == 1:
        array = array[None] if fmt["dimension_order"] == "CW" else array[:, None]
    return array if fmt["dimension_order"] == "CW" else array.T  # (C, n)


def _parse_slice(text: str) -> tuple:
    def one(part):
        if ":" not in part:
            return int(part)
        bits = [int(b) if b.strip() else None for b in part.split(":")]
        return slice(*bits)

    return tuple(one(p.strip()) for p in text.split(","))


def _sampling_rate(row: pd.Series, fmt: dict) -> float:
    if _finite(row.get("trace_sampling_rate_hz")):
        return float(row["trace_sampling_rate_hz"])
    if "sampling_rate" in fmt:
        return float(fmt["sampling_rate"])
    if _finite(row.get("trace_dt_s")):
        return 1.0 / float(row["trace_dt_s"])
    raise Rejected(
        Reason.BAD_RATE,
        "no sampling rate (trace_sampling_rate_hz, data_format/sampling_rate or trace_dt_s)",
    )


def _event_id(row: pd.Series) -> str:
    for key in ("source_id", "event_id"):
        if isinstance(row.get(key), str):
            return row[key]
    return str(row["trace_name"])  # no event id: each trace is its own event


def _station_id(row: pd.Series) -> str:
    if isinstance(row.get("station_id"), str):
        return row["station_id"]
    net, sta = row.get("station_network_code"), row.get("station_code")
    sta = sta if isinstance(sta, str) else ""
    return f"{net}.{sta}" if isinstance(net, str) and net else sta


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
