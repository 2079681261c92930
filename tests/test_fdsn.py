"""The FDSN dataset builder against a local HTTP server speaking fdsnws (event, station,
dataselect), with ObsPy's real client. Answers are built from ObsPy's bundled example
catalogue, inventory and stream; the service descriptions are ObsPy's test WADL files."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import obspy
import pandas as pd
import pytest
from obspy.core.event import Pick, WaveformStreamID

from seisbert.data.catalog import short_event_id
from seisbert.data.fdsn import FdsnBuilder, FdsnConfig

WADL = Path(obspy.__file__).parent / "clients" / "fdsn" / "tests" / "data"
WADLS = {"event": "usgs_event.wadl", "station": "station.wadl", "dataselect": "dataselect.wadl"}


def example_catalog() -> obspy.Catalog:
    """Two of ObsPy's example events moved next to BW.RJOB; the first has a P pick there."""
    cat = obspy.read_events()
    cat.events = cat.events[:2]
    for ev, kind in zip(cat, ("earthquake", "quarry blast")):
        ev.event_type = kind
        o = ev.origins[0]
        o.latitude, o.longitude, o.depth = 47.6, 12.6, 5000.0
    cat[0].picks.append(
        Pick(
            time=cat[0].origins[0].time + 4.0,
            phase_hint="P",
            waveform_id=WaveformStreamID("BW", "RJOB", "", "EHZ"),
        )
    )
    return cat


def _bytes(obj, fmt: str) -> bytes:
    buf = BytesIO()
    obj.write(buf, format=fmt)
    return buf.getvalue()


class Fdsn(BaseHTTPRequestHandler):
    """RJOB: ObsPy's example trace re-timed and tiled to the asked window; FUR: no data
    (204); WET: a server error (500) every time."""

    requests: Counter = Counter()

    def do_GET(self):
        url = urlparse(self.path)
        service, what = url.path.split("/")[2], url.path.rsplit("/", 1)[-1]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        Fdsn.requests[f"{service}/{what}"] += 1
        if what == "application.wadl":
            return self._send(200, (WADL / WADLS[service]).read_bytes(), "application/xml")
        if what in ("catalogs", "contributors"):
            return self._send(404, b"")
        if service == "event":
            return self._send(200, _bytes(example_catalog(), "QUAKEML"), "application/xml")
        if service == "station":
            return self._send(200, _bytes(obspy.read_inventory(), "STATIONXML"), "application/xml")
        return self._dataselect(q)

    def _dataselect(self, q: dict):
        Fdsn.requests[f"dataselect/{q['station']}"] += 1
        if q["station"] == "FUR":
            return self._send(204, b"")
        if q["station"] == "WET":
            return self._send(500, b"Error 500: internal error")
        t0, t1 = obspy.UTCDateTime(q["starttime"]), obspy.UTCDateTime(q["endtime"])
        tr = obspy.read().select(channel="EHZ")[0]
        n = int((t1 - t0) * tr.stats.sampling_rate)
        tr.data = np.tile(tr.data, n // len(tr.data) + 1)[:n]
        tr.stats.starttime = t0
        return self._send(200, _bytes(obspy.Stream([tr]), "MSEED"), "application/vnd.fdsn.mseed")

    def _send(self, code: int, body: bytes, kind: str = "text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Fdsn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Fdsn.requests.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def config(url: str, out: Path) -> FdsnConfig:
    return FdsnConfig(
        out=str(out),
        provider=url,
        event_provider=None,
        start="2012-04-04",
        end="2012-04-05",
        region=[47.0, 48.0, 12.0, 13.0],
        max_distance_km=200.0,
        retries=1,
        retry_wait_s=0.0,
        min_interval_s=0.0,
        timeout_s=10.0,
    )


def test_builds_the_waveforms_layout_records_failures_and_resumes(server, tmp_path):
    counts = FdsnBuilder(config(server, tmp_path)).run()
    assert counts == {
        "events": 2,
        "finished": 2,
        "skipped": 0,
        "files": 2,
        "failures": 4,
        "requests": counts["requests"],
    }
    assert (
        Fdsn.requests["dataselect/RJOB"] == 2 and Fdsn.requests["dataselect/WET"] == 4
    )  # 1 retry each
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("waveforms/*/*.mseed"))
    assert files == [
        "waveforms/20120404_0000038/BW.RJOB.mseed",
        "waveforms/20120404_0000041/BW.RJOB.mseed",
    ]
    st = obspy.read(str(tmp_path / files[1]))
    pick = example_catalog()[0].picks[0].time
    assert st[0].stats.starttime == pick - 30.0 and st[0].stats.npts == 14_000  # [P - 30, P + 110]
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert sorted(failures["station_id"]) == ["GR.FUR", "GR.FUR", "GR.WET", "GR.WET"]
    assert set(failures.loc[failures.station_id == "GR.FUR", "reason"]) == {"no data"}
    assert all(
        "after 2 attempts" in r for r in failures.loc[failures.station_id == "GR.WET", "reason"]
    )

    before = Counter(Fdsn.requests)
    again = FdsnBuilder(config(server, tmp_path)).run()
    assert again["skipped"] == 2 and again["finished"] == 0
    new = Fdsn.requests - before
    assert not [
        k
        for k in new
        if not k.endswith("application.wadl") and not k.endswith(("catalogs", "contributors"))
    ]
    assert len(pd.read_csv(tmp_path / "failures.csv")) == 4  # not written twice


def test_the_dataset_loads_with_data_waveforms(server, tmp_path):
    from seisbert.data.waveforms import WaveformSource

    FdsnBuilder(config(server, tmp_path)).run()
    records = WaveformSource(
        waveform_dir=str(tmp_path / "waveforms"),
        catalog=str(tmp_path / "catalog.xml"),
        inventory=str(tmp_path / "stations.xml"),
        file_glob="*/*.mseed",
    ).load(progress=False)
    assert sorted(records.metadata["trace_p_pick_origin"]) == ["catalog", "taup"]
    assert set(records.metadata["source_type"]) == {"earthquake", "blast"}


def test_short_event_ids():
    assert short_event_id("quakeml:eu.emsc/event/20120404_0000041") == "20120404_0000041"
    assert short_event_id("smi:service.iris.edu/fdsnws/event/1/query?eventid=3279407") == "3279407"
    assert short_event_id("smi:local/event/a b") == "a_b"


def test_missing_keys_are_named():
    with pytest.raises(ValueError, match="fdsn.out must be set"):
        FdsnConfig(start="2012-01-01", end="2013-01-01")


def test_an_unreachable_service_is_one_sentence_without_retries(tmp_path):
    import time

    from seisbert.data.fdsn import FdsnBuilder, FdsnConfig

    cfg = FdsnConfig(
        out=str(tmp_path / "set"),
        start="2020-01-01",
        end="2020-01-02",
        provider="http://no-such-host.invalid",
        event_provider=None,
        retries=3,
        retry_wait_s=5.0,
    )
    started = time.monotonic()
    with pytest.raises(
        ValueError,
        match=r"^fdsn.provider='http://no-such-host.invalid': cannot "
        r"reach no-such-host.invalid \(.*\); check the network",
    ):
        FdsnBuilder(cfg)
    assert time.monotonic() - started < 5.0  # no retry waits
    assert not (tmp_path / "set").exists()


def test_the_default_provider_is_earthscope():
    from seisbert.data.fdsn import FdsnConfig, service_url

    assert service_url(FdsnConfig(out="x", start="a", end="b").provider) == (
        "https://service.earthscope.org"
    )
