"""The ``file_list`` source: a CSV naming, per record, one waveform file and its P time.

For recordings that come with picks but no QuakeML or station inventory::

    file,p_time,event_id,station_id,event_type
    waveforms/ev1.UU.SRU.mseed,2021-06-01T12:00:03.52Z,ev1,UU.SRU,quarry blast

Only ``file`` and ``p_time`` are required; a relative ``file`` is read from the CSV's
folder. Without ``event_id`` every row is its own event (named by the file's stem);
without ``station_id`` the station is the vertical trace's ``NET.STA``; without
``event_type`` (or with ``data.unknown_type=keep``, as ``seisbert predict`` sets) the
record's class is unknown. Each row is cut ``[P - pre_s, P + post_s)`` with the
``waveforms`` source's preprocessing (merge, demean, detrend, taper, resampling), so a
trace gives the same record either way. Vertical component only: rotating to Z/R/T needs
coordinates, which ``data=waveforms`` reads from StationXML.

A bad row (missing file, unparsable time, unreadable or corrupt file, NaN, gap) is
rejected with its CSV line and the reason; the other rows go on. A row repeating an
earlier one (the same file, station and P time) is rejected as a duplicate: each record is
classified once. ``p_time`` is ISO 8601 text or epoch seconds (``1.7e9``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from seisbert.artifacts.arrays import RowSink
from seisbert.config import check_choice
from seisbert.data.catalog import BadValue, parse_time, read_csv_utf8
from seisbert.data.records import Reason, RecordSet, Rejected, reason_counts, rejection
from seisbert.data.stores import guess_format, read_checked, station_of
from seisbert.data.traces import place_window
from seisbert.data.waveforms import UNSET, WaveformSource, check_file

log = logging.getLogger(__name__)

SOURCE = "file_list"
DEFAULT_FILE_COLUMNS = {
    "file": "file",
    "p_time": "p_time",
    "event_id": "event_id",
    "station_id": "station_id",
    "event_type": "event_type",
}
REQUIRED_ROLES = ("file", "p_time")


@dataclass
class FileListSource(WaveformSource):
    """``data=file_list``: the ``waveforms`` preprocessing keys plus the CSV and its columns."""

    file_list: str | None = None  # the CSV: one row per record
    file_columns: dict = field(default_factory=lambda: dict(DEFAULT_FILE_COLUMNS))  # role -> column

    def __post_init__(self):
        super().__post_init__()
        for key in self.file_columns:
            check_choice("data.file_columns key", key, DEFAULT_FILE_COLUMNS)
        self.file_columns = {**DEFAULT_FILE_COLUMNS, **self.file_columns}
        if self.channels != "Z":
            raise ValueError(
                f"data.channels={self.channels!r}: data=file_list reads the vertical only "
                "(rotating to Z/R/T needs event and station coordinates); use data=waveforms "
                "with a catalogue and data.inventory for ZRT"
            )

    def check_paths(self) -> None:
        if self.file_list in UNSET:
            raise ValueError(
                "data.file_list is not set; data=file_list needs a CSV with columns "
                "file, p_time, e.g. data.file_list=/path/to/records.csv"
            )
        check_file(
            "data.file_list",
            self.file_list,
            "the CSV file naming one waveform file and P time per row",
        )

    def load(self, progress: bool = True, waveform_path: Path | None = None) -> RecordSet:
        """One record per CSV row; bad rows are listed with their line and reason
        (``waveform_path``: stream the waveforms there, as ``data=waveforms`` does)."""
        self.check_paths()
        started = time.perf_counter()
        table = self._table()
        base = Path(self.file_list).resolve().parent
        waves, rows, rejected = RowSink(waveform_path, (1, self.n_samples)), [], []
        repeats = self._repeated_rows(table, base)
        for i, row in enumerate(
            tqdm(table.to_dict("records"), desc="records", unit="rec", disable=not progress)
        ):
            where = self._line(i)
            if i in repeats:
                rejected.append(
                    rejection(
                        f"{where} {row[self.file_columns['file']]}",
                        SOURCE,
                        Reason.DUPLICATE_ROW,
                        repeats[i],
                    )
                )
                continue
            try:
                wave, meta = self._row_record(row, base)
            except Rejected as r:
                rejected.append(
                    rejection(
                        f"{where} {row[self.file_columns['file']]}", SOURCE, r.reason, r.detail
                    )
                )
                continue
            waves.extend([wave])
            rows.append(meta)
        if not rows:
            counts = reason_counts(rejected)
            first = f" First: {rejected[0]['record']}: {rejected[0]['detail']}." if rejected else ""
            raise ValueError(
                f"data=file_list: no usable record from the {len(table)} rows of "
                f"{self.file_list} (rejected {counts}); nothing was cached.{first}"
            )
        n_events = len({r["event_id"] for r in rows})
        return self._record_set(waves, rows, rejected, n_events, time.perf_counter() - started)

    def _line(self, i: int) -> str:
        return f"{Path(self.file_list).name}:{i + 2}"  # the CSV line (line 1 is the header)

    def _repeated_rows(self, table: pd.DataFrame, base: Path) -> dict[int, str]:
        """Row number -> why it is skipped, for rows repeating an earlier row's file, station
        and P time (the same time written two ways counts as one)."""
        first, out = {}, {}
        for i, row in enumerate(table.to_dict("records")):
            path = Path(self._value(row, "file"))
            p_time = self._value(row, "p_time")
            try:
                p_time = parse_time(p_time, self.file_columns["p_time"]) or p_time
            except BadValue:
                pass  # the row is rejected for it when read
            key = (
                os.path.normpath(path if path.is_absolute() else base / path),
                self._value(row, "station_id"),
                str(p_time),
            )
            if key in first:
                out[i] = (
                    f"repeats {self._line(first[key])} (the same file, station and P time "
                    f"{p_time}); the record is classified once"
                )
            else:
                first[key] = i
        return out

    def _table(self) -> pd.DataFrame:
        table = read_csv_utf8(self.file_list, "data.file_list", dtype=str, keep_default_na=False)
        missing = [r for r in REQUIRED_ROLES if self.file_columns[r] not in table.columns]
        if missing:
            wanted = ", ".join(f"{self.file_columns[r]!r} (data.file_columns.{r})" for r in missing)
            raise ValueError(
                f"{self.file_list} lacks the column(s) {wanted}; it has {list(table.columns)}"
            )
        return table

    def _value(self, row: dict, role: str) -> str:
        return str(row.get(self.file_columns[role], "")).strip()

    def _row_record(self, row: dict, base: Path) -> tuple:
        path = Path(self._value(row, "file"))
        path = path if path.is_absolute() else base / path
        if path.is_dir():
            raise Rejected(
                Reason.UNREADABLE,
                f"{path} is a folder; column "
                f"{self.file_columns['file']!r} names one waveform file per row",
            )
        if not path.is_file():
            raise Rejected(Reason.UNREADABLE, f"{path} does not exist")
        try:
            p_time = parse_time(self._value(row, "p_time"), self.file_columns["p_time"])
        except BadValue as e:
            raise Rejected(Reason.BAD_VALUE, str(e)) from None
        if p_time is None:
            raise Rejected(Reason.MISSING_PICK, f"column {self.file_columns['p_time']!r} is empty")
        t0, t1 = p_time - self.pre_s, p_time + self.post_s
        stream = read_checked(
            path, fmt=guess_format(path), starttime=t0 - self.pad_s, endtime=t1 + self.pad_s
        )
        station_id = self._value(row, "station_id")
        if station_id:
            stream.traces = [tr for tr in stream if station_of(tr) == station_id]
        if not stream:
            raise Rejected(
                Reason.TOO_SHORT,
                f"{path.name} has no data{' of ' + station_id if station_id else ''} "
                f"in [{t0}, {t1}]",
            )
        z = self._select(stream, "Z")
        station_id = station_id or station_of(z[0])
        source_type = self._row_type(row)
        data, start = self._stack({"Z": self._prepared(z, t0, t1, None)}, math.nan, None)
        wave, p_sample, npts, start = place_window(
            data, start, p_time, self.pre_s, self.n_samples, self.sampling_rate_hz
        )
        event_id = self._value(row, "event_id") or path.stem
        return wave, {
            "event_id": event_id,
            "event_uri": event_id,
            "station_id": station_id,
            "source_type": source_type,
            "label": self.label_of(source_type),
            "trace_p_arrival_sample": p_sample,
            "trace_npts": npts,
            "trace_start_time": str(start),
            "trace_sampling_rate_hz": self.sampling_rate_hz,
            "trace_channel": z[0].stats.channel[:2],
            "trace_p_pick_origin": "file_list",
            "source_origin_time": None,
            "source_latitude_deg": math.nan,
            "source_longitude_deg": math.nan,
            "source_depth_km": math.nan,
            "source_magnitude": math.nan,
            "station_latitude_deg": math.nan,
            "station_longitude_deg": math.nan,
            "path_ep_distance_km": math.nan,
            "path_back_azimuth_deg": math.nan,
        }

    def _row_type(self, row: dict) -> str:
        raw = self._value(row, "event_type")
        source_type = self.class_of(raw)
        if source_type is None:
            raise Rejected(
                Reason.UNKNOWN_TYPE,
                f"event type {raw or '(unset)'!r} is not in data.event_types "
                "(seisbert predict classifies such records: data.unknown_type=keep)",
            )
        return source_type
