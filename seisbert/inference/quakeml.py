"""Predictions as ObsPy events: ``seisbert predict`` also writes ``events.xml`` (QuakeML).

When the source's catalogue is QuakeML, its events are written back with their resource ids,
origins, magnitudes and picks kept, ``event_type`` set from the prediction and the
probability in a comment; an event no record of which could be classified keeps its type and
says so. Other sources (CSV catalogues, SeisBench, synthetic) get one new event per
classified event id. ObsPy reads the file back with ``obspy.read_events``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from obspy import read_events
from obspy.core.event import Catalog, Comment, Event, ResourceIdentifier

from seisbert.inference.files import QUAKEML_TYPES

log = logging.getLogger(__name__)

AUTHOR = "seisbert"


def comment_text(row, threshold: float) -> str:
    return (
        f"seisbert: P(blast)={row.mean_prob_blast:.4f} (mean over {row.n_stations} "
        f"stations, {row.n_records} records; decision '{row.decision}' at threshold "
        f"{threshold:g})"
    )


def _annotate(event: Event, row, threshold: float) -> None:
    event.event_type = QUAKEML_TYPES[row.decision]
    event.event_type_certainty = "suspected"  # a classifier's call, not an analyst's
    event.comments.append(Comment(text=comment_text(row, threshold)))


def _key(uri: str) -> str:
    return str(uri).strip()


def predicted_catalog(
    events: pd.DataFrame, threshold: float, source_catalog: str | Path | None = None
) -> Catalog:
    """The classified events as a Catalog: the source's QuakeML events annotated (all of them,
    in their order) when ``source_catalog`` is QuakeML, else one new event per row."""
    rows = {
        _key(r.event_uri if "event_uri" in events and r.event_uri else r.event_id): r
        for r in events.itertuples(index=False)
    }
    if source_catalog is not None and Path(source_catalog).suffix.lower() in (
        ".xml",
        ".qml",
        ".quakeml",
    ):
        catalog = read_events(str(source_catalog))
        for event in catalog:
            row = rows.get(_key(event.resource_id.id))
            if row is None:
                event.comments.append(Comment(text="seisbert: not classified (no usable record)"))
            else:
                _annotate(event, row, threshold)
        return catalog
    catalog = Catalog()
    for key, row in rows.items():
        uri = key if ":" in key else f"smi:local/event/{key}"
        event = Event(resource_id=ResourceIdentifier(uri))
        _annotate(event, row, threshold)
        catalog.append(event)
    return catalog


def write_quakeml(
    out: Path, events: pd.DataFrame, threshold: float, source_catalog: str | Path | None = None
) -> Path:
    """``<out>/events.xml``; returns its path."""
    path = Path(out) / "events.xml"
    catalog = predicted_catalog(events, threshold, source_catalog)
    catalog.write(str(path), format="QUAKEML")
    log.info("wrote %s (%d events, %d classified)", path, len(catalog), len(events))
    return path
