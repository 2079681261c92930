"""Event catalogues for the ``waveforms`` source: QuakeML or CSV in, plain events out.

A catalogue gives, per event, its origin, magnitude, the event type as written
(QuakeML ``event.event_type``, e.g. "quarry blast", or a CSV column) and the P picks
per station. ``map_event_type`` turns the written type into one of
``records.CLASS_NAMES`` through a user mapping; types it does not know are rejected
by the caller, never guessed. Column names of the CSV form are configurable so an
ANSS ComCat or network export can be read as it is (see docs/your_own_data.md).

Bad input never stops the read and never vanishes: a CSV row with a value that does not
parse (``origin_time=not-a-time``, ``latitude=abc``) is rejected naming the file, row and
column; an event id written with two different event types is rejected naming both; an
id reused with another origin keeps its first event and counts the others; a pick of an
event the catalogue does not hold is counted. An empty or header-only file, or a byte that
is not UTF-8, is one clear error naming the file (and the byte's offset and line), since
the catalogue is the user's truth: nothing is guessed about it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from seisbert.data.records import Reason, rejection

log = logging.getLogger(__name__)

SOURCE = "catalog"  # the ``source`` column of its rows in rejected.csv

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
CSV_EVENT_ROLES = (
    "event_id",
    "origin_time",
    "latitude",
    "longitude",
    "depth_km",
    "magnitude",
    "event_type",
)


@dataclass
class CatalogEvent:
    """One catalogue event; unknown numbers are NaN, an unknown origin time is None."""

    event_id: str  # the short id a catalogue's users know (QuakeML: from the resource URI)
    event_type: str  # as written in the catalogue, "" when unset
    origin_time: object = None  # obspy.UTCDateTime
    latitude: float = math.nan
    longitude: float = math.nan
    depth_km: float = math.nan
    magnitude: float = math.nan
    p_picks: dict = field(default_factory=dict)  # "NET.STA" -> earliest P-type pick time
    event_uri: str = ""  # the QuakeML resource URI, kept beside the short id

    def add_pick(self, station_id: str, time) -> None:
        if station_id not in self.p_picks or time < self.p_picks[station_id]:
            self.p_picks[station_id] = time


def normalize_type(raw) -> str:
    return "" if raw is None or raw != raw else str(raw).strip().lower().replace("_", " ")


def map_event_type(raw, mapping: dict) -> str | None:
    """Class name for a written event type, or None when the mapping lacks it."""
    table = {normalize_type(k): v for k, v in mapping.items()}
    return table.get(normalize_type(raw))


class BadValue(Exception):
    """A catalogue cell that does not parse: the column, the value and what was expected."""

    def __init__(self, column: str, value: str, expected: str):
        super().__init__(f"column {column!r}: {value!r} is not {expected}")


@dataclass
class CatalogRead:
    """What a catalogue gave: its events, the rejection rows, and CSV columns no role reads."""

    events: list
    rejected: list = field(default_factory=list)
    unused_columns: list = field(default_factory=list)  # a misnamed pick column shows here


def load_catalog(
    path: str | Path,
    fmt: str = "auto",
    csv_columns: dict | None = None,
    picks_csv: str | Path | None = None,
    p_phases=("P", "Pg", "Pn"),
    key: str = "data.catalog",
) -> CatalogRead:
    """Events of a QuakeML or CSV catalogue with their P picks (``fmt``: auto|quakeml|csv).

    Bad rows are rejected (``CatalogRead.rejected``), the rest go on; an empty file, a
    header without rows or a QuakeML without events raises ValueError naming ``key``.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() in (".csv", ".txt") else "quakeml"
    columns = {**DEFAULT_CSV_COLUMNS, **(csv_columns or {})}
    out = CatalogRead([])
    if fmt == "csv":
        table = read_csv_table(path, key)
        rows = csv_row_events(table, columns, p_phases, path.name, out.rejected)
        out.unused_columns = [c for c in table.columns if c not in columns.values()]
        unit = "row"
    else:
        rows, unit = list(enumerate(read_quakeml(path, p_phases, key), start=1)), "event"
        if not rows:
            raise ValueError(f"{key}={str(path)!r} holds no events (an empty QuakeML catalogue)")
    out.events = merged_by_id(rows, path.name, unit, out.rejected)
    if picks_csv is not None:
        add_csv_picks(
            out.events,
            read_csv_table(Path(picks_csv), "data.picks_csv"),
            columns,
            p_phases,
            Path(picks_csv).name,
            out.rejected,
        )
    n_picks = sum(len(e.p_picks) for e in out.events)
    log.info(
        "catalog %s: %d events, %d P picks, %d rows rejected",
        path.name,
        len(out.events),
        n_picks,
        len(out.rejected),
    )
    return out


def read_catalog(
    path: str | Path,
    fmt: str = "auto",
    csv_columns: dict | None = None,
    picks_csv: str | Path | None = None,
    p_phases=("P", "Pg", "Pn"),
) -> list[CatalogEvent]:
    """The events of ``load_catalog`` (its rejections are logged only)."""
    return load_catalog(path, fmt, csv_columns, picks_csv, p_phases).events


def merged_by_id(rows: list, name: str, unit: str, rejected: list) -> list[CatalogEvent]:
    """One event per id from ``(row number, event)`` pairs; conflicting types reject it.

    The first row gives the origin; a later row of the id with another origin is another
    event reusing the id: it is rejected, counted, not merged. Picks of the other rows are
    merged (earliest per station). A row with no type says nothing about it; two different
    types name both.
    """
    groups: dict = {}
    for n, ev in rows:
        groups.setdefault(ev.event_id, []).append((n, ev))
    out = []
    for eid, group in groups.items():
        group = _same_origin_rows(eid, group, name, unit, rejected)
        types: dict = {}
        for n, ev in group:
            if ev.event_type:
                types.setdefault(ev.event_type, []).append(str(n))
        if len(types) > 1:
            said = " and ".join(f"{t!r} ({unit} {', '.join(ns)})" for t, ns in types.items())
            rejected.append(
                rejection(
                    eid,
                    SOURCE,
                    Reason.CONFLICTING_TYPE,
                    f"{name}: event {eid} is written as {said}",
                )
            )
            continue
        first = group[0][1]
        first.event_type = next(iter(types), "")
        for _, ev in group[1:]:
            for station_id, time in ev.p_picks.items():
                first.add_pick(station_id, time)
        out.append(first)
    return out


def _same_origin_rows(eid: str, group: list, name: str, unit: str, rejected: list) -> list:
    """The rows of an id whose origin agrees with the first's; the others are rejected."""
    n0, first = group[0]
    kept = [group[0]]
    for n, ev in group[1:]:
        if _same_origin(first, ev):
            kept.append((n, ev))
            continue
        rejected.append(
            rejection(
                f"{eid} ({unit} {n})",
                SOURCE,
                Reason.DUPLICATE_EVENT,
                (
                    f"{name}: {unit} {n} reuses the event id {eid!r} of {unit} {n0} "
                    f"with another origin ({_origin_text(ev)} vs. {_origin_text(first)}); "
                    f"kept {unit} {n0}, skipped {unit} {n}"
                ),
            )
        )
    return kept


def _same_origin(a: CatalogEvent, b: CatalogEvent) -> bool:
    """Whether two rows may describe one origin: every value both give agrees (an unset one
    says nothing, as a pick row may leave the origin out)."""
    if a.origin_time is not None and b.origin_time is not None:
        if abs(a.origin_time - b.origin_time) > 1e-3:
            return False
    pairs = (
        (a.latitude, b.latitude, 1e-6),
        (a.longitude, b.longitude, 1e-6),
        (a.depth_km, b.depth_km, 1e-6),
    )
    return all(
        not (math.isfinite(x) and math.isfinite(y)) or abs(x - y) <= tol for x, y, tol in pairs
    )


def _origin_text(ev: CatalogEvent) -> str:
    return f"{ev.origin_time} at {ev.latitude:g}, {ev.longitude:g}, {ev.depth_km:g} km"


# ----------------------------------------------------------------------------- QuakeML
def read_quakeml(path: Path, p_phases, key: str = "data.catalog") -> list[CatalogEvent]:
    import obspy

    if path.stat().st_size == 0:
        raise ValueError(f"{key}={str(path)!r} is empty (0 bytes); give a QuakeML or CSV catalogue")
    try:
        catalog = obspy.read_events(str(path))
    except Exception as e:  # obspy raises many types for a file it cannot parse
        bad_byte = None if _declared_encoding(path) else utf8_problem(path)
        if bad_byte is not None:  # obspy says only "Unknown format"
            raise ValueError(
                f"{key}={str(path)!r} cannot be read as QuakeML: {bad_byte}, and its "
                f"XML declaration names no other encoding; {UTF8_HINT}"
            ) from None
        raise ValueError(
            f"{key}={str(path)!r} cannot be read as QuakeML ({type(e).__name__}: "
            f"{e}); set data.catalog_format=csv if it is a CSV table"
        ) from None
    events = [_quakeml_event(ev, p_phases) for ev in catalog]
    return _unique_short_ids(events)


def short_event_id(uri: str) -> str:
    """The id a catalogue's users know from a QuakeML resource URI: the ``eventid=`` value,
    else the last path segment (``smi:local/event/123`` -> ``123``); safe as a folder name."""
    text = str(uri)
    match = re.search(r"[?&]eventid=([^&]+)", text)
    tail = match.group(1) if match else text.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", tail) or "event"


def _unique_short_ids(events: list[CatalogEvent]) -> list[CatalogEvent]:
    """Short ids where they tell the events apart; the full URI for those whose short ids clash."""
    uris_of: dict[str, set] = {}
    for ev in events:
        uris_of.setdefault(ev.event_id, set()).add(ev.event_uri)
    for ev in events:
        if len(uris_of[ev.event_id]) > 1:
            ev.event_id = ev.event_uri
    return events


def _quakeml_event(ev, p_phases) -> CatalogEvent:
    origin = ev.preferred_origin() or (ev.origins[0] if ev.origins else None)
    magnitude = ev.preferred_magnitude() or (ev.magnitudes[0] if ev.magnitudes else None)
    uri = str(ev.resource_id)
    out = CatalogEvent(
        event_id=short_event_id(uri), event_type=normalize_type(ev.event_type), event_uri=uri
    )
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


def _declared_encoding(path: Path) -> str | None:
    """The encoding an XML declaration names, unless it is UTF-8 (lxml reads that one)."""
    with open(path, "rb") as f:
        match = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([^\"']+)", f.read(200))
    name = match.group(1).decode("ascii", "replace") if match else None
    return None if name is None or name.lower().replace("_", "-") in ("utf-8", "utf8") else name


# ------------------------------------------------------------------------------ text files
UTF8_HINT = "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 old > new)"


def utf8_problem(path: str | Path) -> str | None:
    """Where a file stops being UTF-8 (the byte, its offset, line and column), or None."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, line_start = data.count(b"\n", 0, e.start) + 1, data.rfind(b"\n", 0, e.start) + 1
        return (
            f"byte 0x{data[e.start]:02x} at offset {e.start} (line {line}, column "
            f"{e.start - line_start + 1}) is not UTF-8"
        )
    return None


def read_csv_utf8(path: str | Path, key: str, **kwargs) -> pd.DataFrame:
    """``pd.read_csv``; a byte that is not UTF-8 is a ValueError naming ``key``, the file and
    where the byte is (pandas names neither)."""
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError:
        raise ValueError(f"{key}={str(path)!r}: {utf8_problem(path)}; {UTF8_HINT}") from None


# --------------------------------------------------------------------------------- CSV
def read_csv_table(path: Path, key: str) -> pd.DataFrame:
    """A CSV file as strings (every cell parsed later, one by one, so a bad one is named)."""
    try:
        table = read_csv_utf8(path, key, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{key}={str(path)!r} is empty (0 bytes); give a CSV table with a "
            "header row and one row per event or pick"
        ) from None
    if table.empty:
        raise ValueError(
            f"{key}={str(path)!r} has a header {list(table.columns)} but no rows, "
            "so it holds no events"
        )
    return table


def csv_row_events(
    table: pd.DataFrame, columns: dict, p_phases, name: str, rejected: list
) -> list[tuple[int, CatalogEvent]]:
    """``(row number, event)`` per good CSV row (1 = first data row); bad rows are rejected."""
    missing = [columns[r] for r in ("event_id", "origin_time") if columns[r] not in table]
    if missing:
        raise ValueError(
            f"catalog CSV lacks columns {missing}; have {list(table.columns)}. "
            "Map yours with data.csv_columns.<role>=<your column>"
        )
    out = []
    for i, row in enumerate(table.to_dict("records"), start=1):
        try:
            out.append((i, _csv_event(row, columns, p_phases)))
        except BadValue as e:
            rejected.append(
                rejection(
                    f"{name} row {i}",
                    SOURCE,
                    Reason.BAD_VALUE,
                    f"{name} row {i} (line {i + 1}), {e}; row skipped",
                )
            )
    return out


def _csv_event(row: dict, columns: dict, p_phases) -> CatalogEvent:
    """One CSV row as an event, with the row's P pick when it carries one."""

    def get(role):
        return str(row.get(columns[role], "")).strip(), columns[role]

    event_id = get("event_id")
    if not event_id[0]:
        raise BadValue(event_id[1], event_id[0], "an event id")
    ev = CatalogEvent(
        event_id=event_id[0],
        event_type=normalize_type(get("event_type")[0]),
        origin_time=parse_time(*get("origin_time")),
        latitude=_number(*get("latitude"), lo=-90.0, hi=90.0),
        longitude=_number(*get("longitude"), lo=-180.0, hi=360.0),
        depth_km=_number(*get("depth_km")),
        magnitude=_number(*get("magnitude")),
    )
    (station_id, _), (p_time, p_col) = get("station_id"), get("p_time")
    phase_ok = columns["phase"] not in row or get("phase")[0] in p_phases
    if station_id and p_time and phase_ok:
        ev.add_pick(station_id, parse_time(p_time, p_col))
    return ev


# A number in this range is epoch seconds (1973-03-03 to 5138); outside it, digits are read
# as an ISO 8601 basic date (20200101, 2020001) as UTCDateTime reads them.
EPOCH_RANGE = (1e8, 1e11)
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_time(value: str, column: str):
    """A UTC time from ISO 8601 text or epoch seconds (``1.7e9``); "" is unknown (None)."""
    from obspy import UTCDateTime

    if not value:
        return None
    if NUMBER.fullmatch(value) and EPOCH_RANGE[0] <= abs(float(value)) < EPOCH_RANGE[1]:
        return UTCDateTime(float(value))  # UTCDateTime reads "1700000000" as text: no date
    try:
        return UTCDateTime(value)
    except Exception:  # UTCDateTime raises ValueError or TypeError, by input
        # the wording existing tests and users know; epoch seconds are in the docs
        raise BadValue(column, value, "a time (ISO 8601, e.g. 2020-01-01T12:00:00Z)") from None


def _number(value: str, column: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A number from text; "" is unknown (NaN); outside [lo, hi] is a bad value."""
    if not value:
        return math.nan
    try:
        x = float(value)
    except ValueError:
        raise BadValue(column, value, "a number") from None
    if not lo <= x <= hi and not math.isnan(x):
        raise BadValue(column, value, f"a number in [{lo:g}, {hi:g}]")
    return x


def add_csv_picks(
    events: list[CatalogEvent],
    table: pd.DataFrame,
    columns: dict,
    p_phases,
    name: str = "picks",
    rejected: list | None = None,
) -> None:
    """Attach picks (event id, "NET.STA", time[, phase]) to their events; bad ones are rejected."""
    rejected = [] if rejected is None else rejected
    # A separate picks file may keep the default names while the catalogue is renamed.
    col = {r: c if c in table else r for r, c in columns.items()}
    need = [col[r] for r in ("event_id", "station_id", "p_time")]
    if any(c not in table for c in need):
        raise ValueError(
            f"picks table needs columns {need}; have {list(table.columns)}. "
            "Map yours with data.csv_columns.<role>=<your column>"
        )
    by_id = {e.event_id: e for e in events}
    for i, row in enumerate(table.to_dict("records"), start=1):
        if col["phase"] in row and str(row[col["phase"]]).strip() not in p_phases:
            continue  # an S or other pick: not a P, not bad input
        eid, station_id, p_time = (str(row[c]).strip() for c in need)
        where = f"{name} row {i}"
        try:
            for value, c in zip((eid, station_id, p_time), need):
                if not value:
                    raise BadValue(c, value, "set")
            time = parse_time(p_time, need[2])
        except BadValue as e:
            rejected.append(
                rejection(where, SOURCE, Reason.BAD_VALUE, f"{where} (line {i + 1}), {e}")
            )
            continue
        if eid not in by_id:
            rejected.append(
                rejection(
                    where,
                    SOURCE,
                    Reason.STRAY_PICK,
                    f"{where}: event {eid!r} is not in the catalogue (or was rejected)",
                )
            )
            continue
        by_id[eid].add_pick(station_id, time)
