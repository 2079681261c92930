"""Event catalogues for the ``waveforms`` source: QuakeML or CSV in, plain events out.

A catalogue gives, per event, its origin, magnitude, the event type as written
(QuakeML ``event.event_type``, e.g. "quarry blast", or a CSV column) and the P picks
per station. ``map_event_type`` turns the written type into one of
``records.CLASS_NAMES`` through a user mapping; types it does not know are rejected
by the caller, never guessed. Column names of the CSV form are configurable so an
ANSS ComCat or network export can be read as it is (see docs/your_own_data.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

# Written event type (lower case, "_" read as " ") -> class name. QuakeML 1.2 spellings
# plus the short forms seen in network CSV exports; users extend it in the config.
DEFAULT_EVENT_TYPES = {
    "earthquake": "earthquake",
    "quarry blast": "blast",
    "explosion": "blast",
    "mining explosion": "blast",
    "chemical explosion": "blast",
    "controlled explosion": "blast",
    "industrial explosion": "blast",
    "experimental explosion": "blast",
    "mine blast": "blast",
    "blast": "blast",
}

# Role -> CSV column name. Roles after "event_type" are optional pick columns.
DEFAULT_CSV_COLUMNS = {
    "event_id": "event_id",
    "origin_time": "origin_time",
    "latitude": "latitude",
    "longitude": "longitude",
    "depth_km": "depth_km",
    "magnitude": "magnitude",
    "event_type": "event_type",
    "station_id": "station_id",  # "NET.STA"; with p_time, one row per event-station pick
    "p_time": "p_time",
    "phase": "phase",
}
CSV_EVENT_ROLES = ("event_id", "origin_time", "latitude", "longitude", "depth_km",
                   "magnitude", "event_type")


@dataclass
class CatalogEvent:
    """One catalogue event; unknown numbers are NaN, an unknown origin time is None."""

    event_id: str
    event_type: str  # as written in the catalogue, "" when unset
    origin_time: object = None  # obspy.UTCDateTime
    latitude: float = math.nan
    longitude: float = math.nan
    depth_km: float = math.nan
    magnitude: float = math.nan
    p_picks: dict = field(default_factory=dict)  # "NET.STA" -> earliest P-type pick time

    def add_pick(self, station_id: str, time) -> None:
        if station_id not in self.p_picks or time < self.p_picks[station_id]:
            self.p_picks[station_id] = time


def normalize_type(raw) -> str:
    return "" if raw is None or raw != raw else str(raw).strip().lower().replace("_", " ")


def map_event_type(raw, mapping: dict) -> str | None:
    """Class name for a written event type, or None when the mapping lacks it."""
    table = {normalize_type(k): v for k, v in mapping.items()}
    return table.get(normalize_type(raw))


def read_catalog(path: str | Path, fmt: str = "auto", csv_columns: dict | None = None,
                 picks_csv: str | Path | None = None,
                 p_phases=("P", "Pg", "Pn")) -> list[CatalogEvent]:
    """Events of a QuakeML or CSV catalogue with their P picks (``fmt``: auto|quakeml|csv)."""
    path = Path(path)
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() in (".csv", ".txt") else "quakeml"
    columns = {**DEFAULT_CSV_COLUMNS, **(csv_columns or {})}
    if fmt == "csv":
        events = read_csv_events(pd.read_csv(path), columns, p_phases)
    else:
        events = read_quakeml(path, p_phases)
    if picks_csv is not None:
        add_csv_picks(events, pd.read_csv(picks_csv), columns, p_phases)
    n_picks = sum(len(e.p_picks) for e in events)
    log.info("catalog %s: %d events, %d P picks", path.name, len(events), n_picks)
    return events


# ----------------------------------------------------------------------------- QuakeML
def read_quakeml(path: Path, p_phases) -> list[CatalogEvent]:
    import obspy

    return [_quakeml_event(ev, p_phases) for ev in obspy.read_events(str(path))]


def _quakeml_event(ev, p_phases) -> CatalogEvent:
    origin = ev.preferred_origin() or (ev.origins[0] if ev.origins else None)
    magnitude = ev.preferred_magnitude() or (ev.magnitudes[0] if ev.magnitudes else None)
    out = CatalogEvent(event_id=str(ev.resource_id), event_type=normalize_type(ev.event_type))
    if origin is not None:
        out.origin_time = origin.time
        out.latitude, out.longitude = _num(origin.latitude), _num(origin.longitude)
        out.depth_km = _num(origin.depth) / 1000.0  # QuakeML depth is in metres
    if magnitude is not None:
        out.magnitude = _num(magnitude.mag)
    # An arrival names the phase its pick was associated with; it beats the pick's hint.
    origins = ([origin] if origin is not None else []) + [o for o in ev.origins if o is not origin]
    phase_of = {}
    for o in reversed(origins):  # the preferred origin is applied last and wins
        phase_of.update({str(a.pick_id): a.phase for a in o.arrivals if a.pick_id is not None})
    for pick in ev.picks:
        phase = phase_of.get(str(pick.resource_id)) or pick.phase_hint
        wid = pick.waveform_id
        if phase in p_phases and wid is not None and wid.station_code:
            out.add_pick(f"{wid.network_code or ''}.{wid.station_code}", pick.time)
    return out


def _num(value) -> float:
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------------- CSV
def read_csv_events(table: pd.DataFrame, columns: dict, p_phases) -> list[CatalogEvent]:
    """Events from a CSV table; repeated event ids are one event (rows that carry picks)."""
    missing = [columns[r] for r in ("event_id", "origin_time") if columns[r] not in table]
    if missing:
        raise ValueError(f"catalog CSV lacks columns {missing}; have {list(table.columns)}. "
                         "Map yours with data.csv_columns.<role>=<your column>")
    table = table.copy()
    table[columns["event_id"]] = table[columns["event_id"]].astype(str)
    events = {}
    for _, row in table.drop_duplicates(columns["event_id"]).iterrows():
        events[row[columns["event_id"]]] = _csv_event(row, columns)
    out = list(events.values())
    if columns["station_id"] in table and columns["p_time"] in table:
        add_csv_picks(out, table, columns, p_phases)
    return out


def _csv_event(row: pd.Series, columns: dict) -> CatalogEvent:
    from obspy import UTCDateTime

    def get(role):
        name = columns[role]
        return row[name] if name in row.index else math.nan

    t = get("origin_time")
    return CatalogEvent(
        event_id=str(get("event_id")), event_type=normalize_type(get("event_type")),
        origin_time=None if t != t else UTCDateTime(str(t)),
        latitude=float(get("latitude")), longitude=float(get("longitude")),
        depth_km=float(get("depth_km")), magnitude=float(get("magnitude")))


def add_csv_picks(events: list[CatalogEvent], table: pd.DataFrame, columns: dict,
                  p_phases) -> None:
    """Attach picks (event id, "NET.STA", time[, phase]) to their events; logs strays."""
    from obspy import UTCDateTime

    # A separate picks file may keep the default names while the catalogue is renamed.
    name = {r: c if c in table else r for r, c in columns.items()}
    need = [name[r] for r in ("event_id", "station_id", "p_time")]
    if any(c not in table for c in need):
        raise ValueError(f"picks table needs columns {need}; have {list(table.columns)}. "
                         "Map yours with data.csv_columns.<role>=<your column>")
    table = table.dropna(subset=need)
    if name["phase"] in table:
        table = table[table[name["phase"]].astype(str).isin(list(p_phases))]
    by_id = {e.event_id: e for e in events}
    strays = 0
    for eid, sta, t in table[need].astype(str).itertuples(index=False):
        if eid in by_id:
            by_id[eid].add_pick(sta, UTCDateTime(t))
        else:
            strays += 1
    if strays:
        log.warning("%d picks name events that are not in the catalogue; ignored", strays)
