"""Write a ``RecordSet`` as the files a user brings: miniSEED per record + one QuakeML.

The demo's held-back events go through ``seisbert predict`` the way a real archive does
(``data=waveforms``): one vertical miniSEED trace per record, and a QuakeML catalogue with
each event's type, origin, magnitude and the P pick of every record.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from seisbert.data.records import RecordSet

log = logging.getLogger(__name__)

QUAKEML_TYPES = {"earthquake": "earthquake", "blast": "quarry blast"}


def _event(rows, event_id: str):
    from obspy import UTCDateTime
    from obspy.core.event import Event, Magnitude, Origin, ResourceIdentifier

    first = rows.iloc[0]
    ev = Event(
        resource_id=ResourceIdentifier(f"smi:local/event/{event_id}"),
        event_type=QUAKEML_TYPES[first["source_type"]],
    )
    if "source_origin_time" in rows:
        ev.origins.append(
            Origin(
                time=UTCDateTime(first["source_origin_time"]),
                latitude=_get(first, "source_latitude_deg"),
                longitude=_get(first, "source_longitude_deg"),
                depth=_get(first, "source_depth_km", 1000.0),
            )
        )
    if not math.isnan(_get(first, "source_magnitude") or math.nan):
        ev.magnitudes.append(Magnitude(mag=float(first["source_magnitude"])))
    return ev


def _get(row, key: str, scale: float = 1.0):
    value = row.get(key)
    return None if value is None or value != value else float(value) * scale


def write_records_as_files(records: RecordSet, folder: str | Path) -> Path:
    """``folder/waveforms/<event>.<station>.mseed`` (vertical, float32) and
    ``folder/catalog.xml`` (QuakeML with P picks); returns the catalogue's path."""
    from obspy import Trace, UTCDateTime
    from obspy.core.event import Catalog, Pick, WaveformStreamID

    folder = Path(folder)
    (folder / "waveforms").mkdir(parents=True, exist_ok=True)
    meta, fs = records.metadata.reset_index(drop=True), records.sampling_rate_hz
    catalog = Catalog()
    for event_id, rows in meta.groupby("event_id", sort=False):
        ev = _event(rows, event_id)
        for i, row in rows.iterrows():
            net, sta = str(row["station_id"]).split(".", 1)
            start = UTCDateTime(row["trace_start_time"])
            data = np.asarray(records.waveforms[i, 0, : int(row["trace_npts"])], np.float32)
            tr = Trace(
                data,
                {
                    "network": net,
                    "station": sta,
                    "channel": "HHZ",
                    "sampling_rate": fs,
                    "starttime": start,
                },
            )
            tr.write(
                str(folder / "waveforms" / f"{event_id}.{row['station_id']}.mseed"),
                format="MSEED",
                encoding="FLOAT32",
            )
            ev.picks.append(
                Pick(
                    time=start + int(row["trace_p_arrival_sample"]) / fs,
                    phase_hint="P",
                    waveform_id=WaveformStreamID(net, sta, "", "HHZ"),
                )
            )
        catalog.append(ev)
    path = folder / "catalog.xml"
    catalog.write(str(path), format="QUAKEML")
    log.info(
        "wrote %d records of %d events as miniSEED + QuakeML under %s",
        len(meta),
        len(catalog),
        folder,
    )
    return path
