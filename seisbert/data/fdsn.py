"""Build a ``data=waveforms`` dataset from FDSN web services (event, station, dataselect).

``scripts/build_fdsn_dataset.py`` drives it. Region, time span, event types and networks
go in; out comes the ``waveforms`` layout that ``configs/data/waveforms.yaml`` reads:

    <out>/catalog.xml                          QuakeML from fdsnws-event (picks if served)
    <out>/stations.xml                         StationXML from fdsnws-station (coords, response)
    <out>/waveforms/<event>/<NET.STA>.mseed    fdsnws-dataselect, [P - pre_s, P + post_s]
    <out>/waveforms/<event>/done.json          written last: a finished event is skipped next time
    <out>/failures.csv                         each event-station without data, with its reason

P is the catalogue's pick, else ak135 TauP from the event and station coordinates. Requests
are spaced by ``min_interval_s`` and retried ``retries`` times with a doubling wait; "no
data" (HTTP 204) is an answer, not retried. Uses ObsPy's ``obspy.clients.fdsn.Client``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from seisbert.config import check_range
from seisbert.data.catalog import _quakeml_event, short_event_id
from seisbert.data.waveforms import Rejected, taup_p_seconds

log = logging.getLogger(__name__)

FAILURE_COLUMNS = ("event_id", "station_id", "stage", "reason")


@dataclass
class FdsnConfig:
    out: str | None = None  # dataset folder (created)
    provider: str = "EARTHSCOPE"  # stations and waveforms: an ObsPy provider name or a base URL
    event_provider: str | None = "USGS"  # the catalogue (None: provider); USGS serves event types
    start: str | None = None  # ISO 8601 UTC, events from ...
    end: str | None = None  # ... to
    region: list | None = None  # [min_lat, max_lat, min_lon, max_lon] (deg) or None for the world
    event_types: list = field(default_factory=lambda: ["earthquake", "quarry blast"])
    min_magnitude: float | None = None
    networks: str = "*"  # FDSN codes, comma separated ("UU,IW")
    stations: str = "*"
    channels: str = "HHZ,EHZ,BHZ"  # comma separated; add the horizontals for channels=ZRT
    max_distance_km: float = 150.0  # stations farther from the epicentre are not requested
    pre_s: float = 30.0  # waveform window [P - pre_s, P + post_s] (must cover data.pre_s + pad_s)
    post_s: float = 110.0
    taup_model: str = "ak135"
    p_phases: list = field(default_factory=lambda: ["P", "Pg", "Pn", "Pb", "p"])
    station_level: str = "response"  # channel | response (response: remove_response works)
    retries: int = 3  # attempts after the first for a failed request
    retry_wait_s: float = 5.0  # first wait; doubles each retry
    min_interval_s: float = 0.5  # at least this long between two requests (be polite)
    timeout_s: float = 120.0
    discover_services: bool = True  # ObsPy reads each service's application.wadl first

    def __post_init__(self):
        for key in ("out", "start", "end"):
            if getattr(self, key) is None:
                raise ValueError(
                    f"fdsn.{key} must be set (e.g. out=/data/utah start=2012-01-01 end=2013-01-01)"
                )
        if self.region is not None and len(self.region) != 4:
            raise ValueError(
                f"fdsn.region={self.region} must be [min_lat, max_lat, min_lon, max_lon]"
            )
        for key in (
            "max_distance_km",
            "pre_s",
            "post_s",
            "retry_wait_s",
            "min_interval_s",
            "timeout_s",
        ):
            check_range(f"fdsn.{key}", getattr(self, key), 0.0)
        check_range("fdsn.retries", self.retries, 0)


class NoData(Exception):
    """The service answered with no data (HTTP 204): recorded, not retried."""


class Polite:
    """Calls spaced by ``min_interval_s``, retried with a doubling wait, counted."""

    def __init__(self, cfg: FdsnConfig):
        self.cfg, self.last, self.requests = cfg, 0.0, 0

    def __call__(self, fn, *args, **kwargs):
        from obspy.clients.fdsn.header import FDSNNoDataException

        wait = self.cfg.retry_wait_s
        for attempt in range(self.cfg.retries + 1):
            time.sleep(max(0.0, self.last + self.cfg.min_interval_s - time.monotonic()))
            self.last, self.requests = time.monotonic(), self.requests + 1
            try:
                return fn(*args, **kwargs)
            except FDSNNoDataException as e:
                raise NoData(str(e).splitlines()[0]) from None
            except Exception as e:  # HTTP errors, timeouts, broken answers: retry, then give up
                if attempt == self.cfg.retries:
                    raise RuntimeError(
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                        f"(after {attempt + 1} attempts)"
                    ) from None
                log.info(
                    "request failed (%s); retry %d of %d in %.1f s",
                    e,
                    attempt + 1,
                    self.cfg.retries,
                    wait,
                )
                time.sleep(wait)
                wait *= 2


def service_url(provider: str) -> str:
    """The base URL of an ObsPy provider name (``EARTHSCOPE``, ``USGS``, ...) or a URL."""
    from obspy.clients.fdsn.header import URL_MAPPINGS

    return URL_MAPPINGS.get(provider.upper(), provider)


def check_reachable(key: str, provider: str) -> None:
    """ValueError in one sentence when the provider's host name does not resolve: no network,
    or a typo; retrying cannot help, so nothing is retried and nothing is fetched."""
    host = urlparse(service_url(provider)).hostname
    if host is None:
        raise ValueError(f"{key}={provider!r} is neither an ObsPy provider name nor a URL")
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror as err:
        raise ValueError(
            f"{key}={provider!r}: cannot reach {host} ({err.strerror}); check the "
            "network or the provider name; nothing was fetched"
        ) from None


class FdsnBuilder:
    """Fetch catalogue, stations and waveforms into ``cfg.out``; safe to run again (resumes)."""

    def __init__(self, cfg: FdsnConfig):
        from obspy.clients.fdsn import Client

        self.cfg, self.out = cfg, Path(cfg.out)
        self.call = Polite(cfg)
        for key in ("provider", "event_provider"):
            if getattr(cfg, key) is not None:
                check_reachable(f"fdsn.{key}", getattr(cfg, key))

        def connect(provider):
            return self.call(
                Client, provider, timeout=cfg.timeout_s, _discover_services=cfg.discover_services
            )

        self.client = connect(cfg.provider)
        same = cfg.event_provider is None or cfg.event_provider == cfg.provider
        self.event_client = self.client if same else connect(cfg.event_provider)

    def run(self) -> dict:
        """Returns counts: events, finished (this run), skipped (done before), files, failures."""
        self.out.mkdir(parents=True, exist_ok=True)
        catalog, inventory = self.catalog(), self.inventory()
        counts = {"events": len(catalog), "finished": 0, "skipped": 0, "files": 0, "failures": 0}
        for ev in catalog:
            folder = self.out / "waveforms" / short_event_id(ev.resource_id)
            if (folder / "done.json").is_file():
                counts["skipped"] += 1
                continue
            files, failures = self.event_waveforms(ev, inventory, folder)
            counts["finished"] += 1
            counts["files"] += files
            counts["failures"] += failures
        counts["requests"] = self.call.requests
        log.info("fdsn: %s", counts)
        return counts

    def catalog(self):
        """The catalogue (fetched once; ``catalog.xml`` is reused on a rerun)."""
        import obspy

        path, cfg = self.out / "catalog.xml", self.cfg
        if path.is_file():
            return obspy.read_events(str(path))
        box = dict(
            zip(("minlatitude", "maxlatitude", "minlongitude", "maxlongitude"), cfg.region or ())
        )
        extra = {} if cfg.min_magnitude is None else {"minmagnitude": cfg.min_magnitude}
        cat = self.call(
            self.event_client.get_events,
            starttime=obspy.UTCDateTime(cfg.start),
            endtime=obspy.UTCDateTime(cfg.end),
            eventtype=",".join(cfg.event_types),
            **box,
            **extra,
        )
        cat.write(str(path.with_suffix(".xml.tmp")), format="QUAKEML")
        path.with_suffix(".xml.tmp").replace(path)
        return cat

    def inventory(self):
        """Stations of ``networks`` in the region widened by ``max_distance_km`` (fetched once)."""
        import obspy

        path, cfg = self.out / "stations.xml", self.cfg
        if path.is_file():
            return obspy.read_inventory(str(path))
        box = {}
        if cfg.region is not None:
            pad = cfg.max_distance_km / 111.2  # degrees of latitude
            box = {
                "minlatitude": cfg.region[0] - pad,
                "maxlatitude": cfg.region[1] + pad,
                "minlongitude": cfg.region[2] - pad,
                "maxlongitude": cfg.region[3] + pad,
            }
        inv = self.call(
            self.client.get_stations,
            network=cfg.networks,
            station=cfg.stations,
            channel=cfg.channels,
            starttime=obspy.UTCDateTime(cfg.start),
            endtime=obspy.UTCDateTime(cfg.end),
            level=cfg.station_level,
            **box,
        )
        inv.write(str(path.with_suffix(".xml.tmp")), format="STATIONXML")
        path.with_suffix(".xml.tmp").replace(path)
        return inv

    def event_waveforms(self, ev, inventory, folder: Path) -> tuple[int, int]:
        """One miniSEED file per station near the event; failures go to failures.csv."""
        folder.mkdir(parents=True, exist_ok=True)
        event = _quakeml_event(ev, tuple(self.cfg.p_phases))
        files, failures = 0, []
        for station_id, (lat, lon) in self.nearby(event, inventory).items():
            try:
                p_time = self.p_time(event, station_id, lat, lon)
                net, sta = station_id.split(".", 1)
                stream = self.call(
                    self.client.get_waveforms,
                    net,
                    sta,
                    "*",
                    self.cfg.channels,
                    p_time - self.cfg.pre_s,
                    p_time + self.cfg.post_s,
                )
                stream.write(str(folder / f"{station_id}.mseed"), format="MSEED")
                files += 1
            except (NoData, RuntimeError, ValueError) as e:
                stage = "dataselect" if not isinstance(e, ValueError) else "p_time"
                failures.append(
                    (
                        event.event_id,
                        station_id,
                        stage,
                        "no data" if isinstance(e, NoData) else str(e),
                    )
                )
        self.record_failures(failures)
        (folder / "done.json").write_text(
            json.dumps({"event_id": event.event_id, "files": files, "failures": len(failures)})
        )
        return files, len(failures)

    def nearby(self, event, inventory) -> dict:
        """ "NET.STA" -> (lat, lon) of stations within ``max_distance_km`` (all if no epicentre)."""
        from obspy.geodetics import gps2dist_azimuth

        out = {}
        for net in inventory:
            for sta in net:
                known = math.isfinite(event.latitude) and math.isfinite(event.longitude)
                dist_km = (
                    gps2dist_azimuth(event.latitude, event.longitude, sta.latitude, sta.longitude)[
                        0
                    ]
                    / 1000.0
                    if known
                    else 0.0
                )
                if dist_km <= self.cfg.max_distance_km:
                    out[f"{net.code}.{sta.code}"] = (sta.latitude, sta.longitude)
        return out

    def p_time(self, event, station_id: str, lat: float, lon: float):
        from obspy.geodetics import gps2dist_azimuth

        if station_id in event.p_picks:
            return event.p_picks[station_id]
        if event.origin_time is None or not math.isfinite(event.latitude):
            raise ValueError("no P pick and no origin for TauP")
        dist_km = gps2dist_azimuth(event.latitude, event.longitude, lat, lon)[0] / 1000.0
        depth = event.depth_km if math.isfinite(event.depth_km) else 0.0
        try:
            return event.origin_time + taup_p_seconds(dist_km, depth, self.cfg.taup_model)
        except Rejected as r:
            raise ValueError(r.detail) from None

    def record_failures(self, rows: list) -> None:
        path = self.out / "failures.csv"
        new = not path.is_file()
        with open(path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(FAILURE_COLUMNS)
            writer.writerows(rows)
