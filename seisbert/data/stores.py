"""Waveform stores for the ``waveforms`` source: a folder of files, or an SDS archive.

A store answers two questions: which stations have data near an event, and the
stream of one station in a time span. A file ObsPy cannot parse, or whose data its
reader flags (libmseed's "Corrupt data?", "Not a SEED record", a Steim integrity
failure: any ``InternalMSEEDWarning`` or a warning saying "corrupt"), is rejected with
the warning's text. Other reader warnings (e.g. SAC's sample-spacing rounding) keep the
file and are logged once per message, with a count. ``FileStore`` also lists the
readable files no event reached, so a misnamed station or a catalogue from another year
shows up as a count, not as silence.

A file is judged by its first bytes before any ObsPy reader sees it (``guess_format``): an
empty, zero-filled or unknown header is skipped as ``unreadable file``, since ObsPy's own
format detection reads such a file whole (a 2 GiB zero-filled file took minutes and GBs).
A folder that cannot be listed is counted too (``Path.glob`` skips it without a word).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import math
import os
import warnings
from glob import glob
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.data.parallel import map_chunks
from seisbert.data.records import Reason, Rejected, reason_counts, rejection

log = logging.getLogger(__name__)

SOURCE = "waveforms"
INDEX_COLUMNS = ["path", "station_id", "start", "end", "lat", "lon"]


@contextlib.contextmanager
def reader_warnings():
    """Collect every warning raised inside the block (each one, not the first per place)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def corruption_warnings(caught: list) -> list:
    """The warnings that say a file's data are damaged (the rest are logged, not rejected)."""
    from obspy.io.mseed import InternalMSEEDWarning

    return [
        w
        for w in caught
        if issubclass(w.category, InternalMSEEDWarning) or "corrupt" in str(w.message).lower()
    ]


class KeptWarnings:
    """Reader warnings of files that were kept: message -> file names, logged once."""

    def __init__(self):
        self.files: dict = {}

    def add(self, caught: list, name: str) -> None:
        for w in caught:
            self.files.setdefault(str(w.message), set()).add(name)

    def merge(self, files: dict) -> None:
        for message, names in files.items():
            self.files.setdefault(message, set()).update(names)

    def log(self) -> None:
        for message, names in self.files.items():
            log.warning(
                "obspy warned on %d kept file(s), e.g. %s: %s", len(names), min(names), message
            )


def warning_text(caught: list) -> str:
    """The distinct messages of ``caught`` warnings, in order, for a rejection's detail."""
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    more = f" (and {len(messages) - 2} more)" if len(messages) > 2 else ""
    return "; ".join(messages[:2]) + more


class FileStore:
    """ObsPy-readable files indexed by their headers: which station has data when."""

    def __init__(self, root: str, pattern: str, progress: bool = True, num_workers: int = 0):
        files = sorted(p for p in Path(root).glob(pattern) if p.is_file())
        unlisted = unlisted_folders(root, pattern)
        if not files:
            raise ValueError(
                f"data.file_glob={pattern!r} matches no files under {root}"
                + "".join(f"; cannot list {r['record']}" for r in unlisted[:3])
            )
        rows, rejected, self.formats, self.kept = [], list(unlisted), {}, KeptWarnings()
        chunks = chunked(files, num_workers)
        for out in map_chunks(_index_files, chunks, {}, num_workers, progress, desc="index files"):
            rows += out[0]
            rejected += out[1]
            self.formats.update(out[2])
            self.kept.merge(out[3])
        self._use_index(pd.DataFrame(rows, columns=INDEX_COLUMNS), rejected)
        log.info(
            "indexed %d traces in %d files (%d rejected %s)",
            len(self.index),
            len(files),
            len(self.rejected),
            reason_counts(self.rejected),
        )
        self.kept.log()

    @classmethod
    def from_index(cls, index: pd.DataFrame) -> "FileStore":
        """A store over given index rows (``INDEX_COLUMNS``), no files read: for benchmarks."""
        store = cls.__new__(cls)
        store.formats, store.kept = {}, KeptWarnings()
        store._use_index(index, [])
        return store

    def _use_index(self, index: pd.DataFrame, rejected: list) -> None:
        self.index, self.rejected = index, rejected
        self.stations = set(index["station_id"])
        self._paths, self._station_of = index["path"].to_numpy(), index["station_id"].to_numpy()
        self.spans = SpanIndex(index["start"].to_numpy(float), index["end"].to_numpy(float))
        # per station: its paths and their spans, for the per-record lookup
        self.by_station = {
            s: (
                g["path"].to_numpy(),
                SpanIndex(g["start"].to_numpy(float), g["end"].to_numpy(float)),
            )
            for s, g in index.groupby("station_id")
        }
        self.named: set = set()  # files some event's window or pick reached

    def stations_near(self, ev, pre_s: float, search_s: float) -> list[str]:
        """Stations with data in [origin - pre_s, origin + search_s] or a pick for the event."""
        near = set()
        if ev.origin_time is not None:
            t = float(ev.origin_time.timestamp)
            hit = self.spans.overlapping(t - pre_s, t + search_s)
            near = set(self._station_of[hit])
            self.named.update(self._paths[hit])
        return sorted(near | (set(ev.p_picks) & self.stations))

    def read(self, station_id: str, t0, t1):
        import obspy

        stream = obspy.Stream()
        paths, spans = self.by_station.get(station_id, (np.array([], object), SpanIndex.empty()))
        hit = spans.overlapping(float(t0.timestamp), float(t1.timestamp))
        for path in dict.fromkeys(paths[hit]):
            self.named.add(path)
            # the format found while indexing: no detection per read
            stream += read_checked(Path(path), None, self.formats[path], starttime=t0, endtime=t1)
        stream.traces = [tr for tr in stream if station_of(tr) == station_id]
        if not stream:
            raise Rejected(Reason.TOO_SHORT, f"no data in [{t0}, {t1}]")
        return stream

    def unused(self, pre_s: float, search_s: float) -> list[dict]:
        """Rejection rows for the indexed files that no event's window or pick reached."""
        idx = self.index[~self.index["path"].isin(self.named)]
        rows = []
        for path, group in idx.groupby("path", sort=True):
            span = f"{_utc(group['start'].min())} - {_utc(group['end'].max())}"
            stations = ", ".join(sorted(set(group["station_id"])))
            rows.append(
                rejection(
                    path,
                    SOURCE,
                    Reason.UNUSED_FILE,
                    (
                        f"{Path(path).name} ({stations}, {span}) overlaps no catalogue event's "
                        f"[origin - {pre_s:g} s, origin + {search_s:g} s] "
                        f"and holds no picked station's P"
                    ),
                )
            )
        return rows


class SpanIndex:
    """Spans ``[start, end]`` found by overlap with a window in O(log n + hits), not O(n).

    Spans are grouped by duration (powers of two) and sorted by start within a group: a
    span of a group overlapping ``[a, b]`` starts in ``[a - longest, b]``, two bisections.
    A full scan per event made indexing quadratic (16k events x 80k files: 20 minutes).
    """

    def __init__(self, starts: np.ndarray, ends: np.ndarray):
        duration = np.maximum(ends - starts, 0.0)
        group = np.ceil(np.log2(duration + 1.0)).astype(int)
        self.groups = []  # (starts, ends, row numbers, longest duration), sorted by start
        for g in np.unique(group):
            rows = np.flatnonzero(group == g)
            rows = rows[np.argsort(starts[rows], kind="stable")]
            self.groups.append((starts[rows], ends[rows], rows, float(duration[rows].max())))

    @classmethod
    def empty(cls) -> "SpanIndex":
        return cls(np.array([]), np.array([]))

    def overlapping(self, a: float, b: float) -> np.ndarray:
        """Row numbers, ascending, of the spans with ``start <= b`` and ``end >= a``."""
        hits = []
        for starts, ends, rows, longest in self.groups:
            lo = np.searchsorted(starts, a - longest, "left")
            hi = np.searchsorted(starts, b, "right")
            hits.append(rows[lo:hi][ends[lo:hi] >= a])
        return np.sort(np.concatenate(hits)) if hits else np.array([], int)


class SdsStore:
    """An SDS archive (``obspy.clients.filesystem.sds``): day files found by path."""

    def __init__(self, root: str):
        from obspy.clients.filesystem.sds import Client

        if not Path(root).is_dir():
            raise FileNotFoundError(f"data.waveform_dir={root!r} is not a folder (SDS root)")
        self.client, self.rejected, self.named = Client(root), [], set()
        self.index = pd.DataFrame(columns=INDEX_COLUMNS)

    def stations_near(self, ev, pre_s: float, search_s: float) -> list[str]:
        if ev.origin_time is None:
            days = list(ev.p_picks.values())
        else:
            days = [ev.origin_time - pre_s, ev.origin_time + search_s]
        return sorted(
            {f"{n}.{s}" for d in days for n, s, _, _ in self.client.get_all_nslc(datetime=d)}
        )

    def read(self, station_id: str, t0, t1):
        net, sta = station_id.split(".", 1)
        with reader_warnings() as caught:
            try:
                stream = self.client.get_waveforms(net, sta, "*", "*", t0, t1)
            except Exception as e:
                raise Rejected(Reason.UNREADABLE, f"SDS {station_id} at {t0}: {e}") from None
        if corruption_warnings(caught):
            raise Rejected(
                Reason.CORRUPT,
                f"SDS {station_id} at {t0}: obspy warned: "
                f"{warning_text(corruption_warnings(caught))}",
            )
        if not stream:
            raise Rejected(Reason.TOO_SHORT, f"no data in [{t0}, {t1}]")
        return stream

    def unused(self, pre_s: float, search_s: float) -> list[dict]:
        return []  # an archive is not listed file by file


def chunked(items: list, num_workers: int, per_worker: int = 8, max_items: int = 64) -> list[list]:
    """One item per chunk in this process; else at least ``per_worker`` chunks per worker, of at
    most ``max_items`` items (a chunk's records are in memory at once), in order."""
    if num_workers == 0:
        return [[x] for x in items]
    n = min(len(items), max(num_workers * per_worker, -(-len(items) // max_items))) or 1
    return [list(c) for c in np.array_split(np.array(items, dtype=object), n)]


def unlisted_folders(root: str, pattern: str) -> list[dict]:
    """Rejection rows for the folders ``pattern`` reaches under ``root`` that cannot be listed."""
    parts, errors = Path(pattern).parts, []
    for folder, dirs, _ in os.walk(root, onerror=errors.append):
        rel = Path(folder).relative_to(root).parts
        dirs[:] = [d for d in dirs if _glob_lists(rel + (d,), parts)]
    return [
        rejection(
            str(e.filename),
            SOURCE,
            Reason.UNREADABLE_FOLDER,
            (
                f"cannot list the folder {e.filename} ({type(e).__name__}: {e.strerror}); "
                f"the files in it that data.file_glob={pattern!r} would match were not indexed"
            ),
        )
        for e in errors
    ]


def _glob_lists(rel: tuple, parts: tuple) -> bool:
    """Whether a glob of ``parts`` lists the folder ``rel`` (relative parts) on its way."""
    for i, name in enumerate(rel):
        if i >= len(parts) - 1:
            return False  # the last part matches files, it lists no deeper folder
        if parts[i] == "**":
            return True
        if not fnmatch.fnmatchcase(name, parts[i]):
            return False
    return True


def _index_files(state: dict, paths: list) -> tuple:
    """Header rows, rejections, formats and kept warnings of some files (in a worker or here)."""
    rows, rejected, formats, kept = [], [], {}, KeptWarnings()
    for path in paths:
        try:
            stream = read_checked(path, kept, guess_format(path), headonly=True)
        except Rejected as r:
            rejected.append(rejection(str(path), SOURCE, r.reason, r.detail))
            continue
        rows += [_index_row(path, tr) for tr in stream]
        formats[str(path)] = stream[0].stats._format if stream else None
    return rows, rejected, formats, kept.files


def read_checked(path: Path, kept: KeptWarnings | None = None, fmt: str | None = None, **kwargs):
    """``obspy.read``; a failure is ``unreadable file``, a damage warning ``corrupt file``.

    Other warnings are added to ``kept``. A plain (uncompressed) file of known format
    goes straight to ObsPy's plugin reader: ``obspy.read`` looks the plugin up anew per
    call and probes for tar/zip/gzip, which was half the time per record.
    """
    import obspy

    with reader_warnings() as caught:
        try:
            if fmt is not None and _is_plain(path):
                stream = _read_plain(path, fmt, **kwargs)
            else:
                stream = obspy.read(str(path), format=fmt, **kwargs)
        except Exception as e:  # obspy raises many types for a file it cannot parse
            raise Rejected(Reason.UNREADABLE, f"{path.name}: {type(e).__name__}: {e}") from None
    damage = corruption_warnings(caught)
    if damage:
        raise Rejected(Reason.CORRUPT, f"{path.name}: obspy warned: {warning_text(damage)}")
    if kept is not None:
        kept.add(caught, path.name)
        partial = partial_record_bytes(path, stream)
        if partial:  # ObsPy drops a cut last record without a word: say so, once per file
            kept.files.setdefault(
                f"the file ends inside a miniSEED record: its last {partial} bytes (a partial "
                "record) were not read",
                set(),
            ).add(path.name)
    return stream


def partial_record_bytes(path: Path, stream) -> int:
    """Bytes after the last whole record of a miniSEED file (0 when whole, or not miniSEED)."""
    stats = stream[0].stats if len(stream) else None
    length = getattr(getattr(stats, "mseed", None), "record_length", None)
    return int(path.stat().st_size % length) if length else 0


@functools.lru_cache(maxsize=None)
def _plugin_reader(fmt: str):
    from obspy.core.util.base import ENTRY_POINTS, buffered_load_entry_point

    ep = ENTRY_POINTS["waveform"][fmt.upper()]
    return buffered_load_entry_point(ep.dist.name, f"obspy.plugin.waveform.{ep.name}", "readFormat")


def _read_plain(path: Path, fmt: str, headonly: bool = False, starttime=None, endtime=None):
    """What ``obspy.read(path, format=fmt, ...)`` returns, without its per-call lookups."""
    spans = {"starttime": starttime, "endtime": endtime} if fmt.upper() == "MSEED" else {}
    stream = _plugin_reader(fmt)(str(path), headonly=headonly, **spans)
    for tr in stream:
        tr.stats._format = fmt
        if starttime is not None or endtime is not None:
            _cut(tr, starttime, endtime)
    stream.traces = [tr for tr in stream if tr.stats.npts]
    return stream


def _cut(tr, starttime, endtime) -> None:
    """``Trace._ltrim`` then ``_rtrim`` to the nearest sample, as ``obspy.read`` cuts, without
    the processing-history bookkeeping that made them 2 ms a call."""
    from obspy.core.compatibility import round_away

    fs, n, first, last = tr.stats.sampling_rate, tr.stats.npts, 0, tr.stats.npts
    if starttime is not None:
        first = min(max(0, int(round_away((starttime - tr.stats.starttime) * fs))), n)
    start = tr.stats.starttime + first * tr.stats.delta
    if endtime is not None and endtime < start:
        last = first
    elif endtime is not None:
        last = min(n, first + int(round_away((endtime - start) * fs)) + 1)
    if (first, last) != (0, n):
        tr.data = tr.data[first:last]
        tr.stats.starttime = start


# Leading bytes of the containers obspy.read unpacks (tar is recognised at offset 257).
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"PK\x03\x04", b"\xfd7zXZ")
HEAD_BYTES = 4096  # what is read of a file to judge it
# ObsPy detectors that read lines: on binary data without line breaks they read the file whole
TEXT_FORMATS = ("SACXY", "GSE1", "SLIST", "TSPAIR", "CSS", "NNSA_KB_CORE", "PDAS", "SH_ASC", "KNET")


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def _is_compressed(head: bytes) -> bool:
    return head.startswith(COMPRESSED_MAGIC) or head[257:262] == b"ustar"


def _is_plain(path: Path) -> bool:
    return not _is_compressed(_head(path))


def guess_format(path: Path) -> str | None:
    """ObsPy's name of a plain file's format, or None for a compressed one (obspy.read unpacks it).

    Judged from the first bytes, not by ``obspy.read``'s detection, which reads a zero-filled
    file whole: an empty, all-zero or unknown header raises ``Rejected`` (unreadable file).
    """
    try:
        head = _head(path)
    except OSError as e:
        raise Rejected(
            Reason.UNREADABLE, f"{path.name}: {type(e).__name__}: {e.strerror}"
        ) from None
    if _is_compressed(head):
        return None
    fmt = _format_of(path, head)
    if fmt is None:
        raise Rejected(
            Reason.UNREADABLE,
            f"{path.name}: not a waveform file: {_head_said(head)}; "
            "skipped before ObsPy's format detection",
        )
    return fmt


def _format_of(path: Path, head: bytes) -> str | None:
    """The first ObsPy format whose detector accepts the file ("MSEED" checked first, as the
    common case); line-reading detectors only for text. None for an empty or zero head."""
    from obspy.io.mseed.core import _is_mseed

    if not any(head):
        return None
    text = b"\x00" not in head
    # miniSEED first and without loading every plugin: most archives hold nothing else
    for name, is_format in (("MSEED", _is_mseed), *_detectors()):
        if name in TEXT_FORMATS and not text:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a detector's complaint about a foreign file
            try:
                if is_format(str(path)):
                    return name
            except Exception:  # a detector may raise on a file that is not its format
                continue
    return None


@functools.lru_cache(maxsize=None)
def _detectors() -> tuple:
    """(format name, ObsPy's ``isFormat``) of every waveform plugin, in ObsPy's order."""
    from obspy.core.util.base import ENTRY_POINTS, buffered_load_entry_point

    out = []
    for name, ep in ENTRY_POINTS["waveform"].items():
        try:
            out.append(
                (
                    name,
                    buffered_load_entry_point(
                        ep.dist.name, f"obspy.plugin.waveform.{ep.name}", "isFormat"
                    ),
                )
            )
        except Exception:  # a plugin whose optional dependency is missing cannot read anyway
            continue
    return tuple(out)


def _head_said(head: bytes) -> str:
    """What the first bytes of a file that is no waveform look like, for the rejection."""
    if not head:
        return "it is empty (0 bytes)"
    if not any(head):
        return (
            f"its first {len(head)} bytes are all zero (a zero-filled or preallocated "
            "file, not a recording)"
        )
    return (
        f"its first bytes {head[:16]!r} match none of the formats ObsPy reads (miniSEED, "
        "SAC, GSE2, SEISAN, SEG-Y, ...)"
    )


def _utc(timestamp: float) -> str:
    from obspy import UTCDateTime

    return str(UTCDateTime(timestamp))


def station_of(tr) -> str:
    return f"{tr.stats.network}.{tr.stats.station}"


def _index_row(path: Path, tr) -> tuple:
    sac = tr.stats.get("sac", {})  # SAC headers may carry station coordinates
    return (
        str(path),
        station_of(tr),
        float(tr.stats.starttime.timestamp),
        float(tr.stats.endtime.timestamp),
        float(sac.get("stla", math.nan)),
        float(sac.get("stlo", math.nan)),
    )


def station_coordinates(inventory, store) -> dict:
    """ "NET.STA" -> (lat, lon): file headers first, the StationXML inventory wins."""
    known = store.index.dropna(subset=["lat", "lon"]).drop_duplicates("station_id")
    coords = {
        s: (la, lo) for s, la, lo in known[["station_id", "lat", "lon"]].itertuples(index=False)
    }
    if inventory is not None:
        for net in inventory:
            coords.update({f"{net.code}.{sta.code}": (sta.latitude, sta.longitude) for sta in net})
    return coords


def read_inventory(pattern: str, key: str = "data.inventory"):
    """The StationXML files matching ``pattern`` (a path or a glob) as one inventory.

    A file ObsPy cannot read is a ValueError naming ``key`` and the file.
    """
    import obspy

    inventory = None
    for path in sorted(glob(pattern)) or [pattern]:
        if Path(path).is_dir():
            raise ValueError(
                f"{key}={pattern!r} matches the folder {path}; give StationXML "
                f"file(s), e.g. {key}='{Path(path) / '*.xml'}'"
            )
        try:
            one = obspy.read_inventory(path)
        except Exception as e:  # obspy raises many types for a file it cannot parse
            raise ValueError(
                f"{key}={pattern!r}: {path} cannot be read as StationXML ({type(e).__name__}: {e})"
            ) from None
        inventory = one if inventory is None else inventory + one
    return inventory
