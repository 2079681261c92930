"""A SeisBench model class wrapping a seisbert bundle: ``model.classify(stream, p_time=...)``.

SeisBench's model zoo picks phases and estimates magnitudes; it has no event-type
classifier. ``SeisBertClassifier`` is a ``seisbench.models.WaveformModel`` whose
``classify`` takes an ObsPy stream (one or more stations of one event) and the P arrival
(one time, or one per "NET.STA"), and returns a ``ClassifyOutput`` with P(blast) per
station, the event's mean probability and its decision. The stream goes through exactly
the ``data=waveforms`` route of ``seisbert predict`` (written to miniSEED + QuakeML in a
temporary folder and read back), so ``classify`` and ``predict`` agree on the same trace.
Optional dependency: ``pip install seisbert[seisbench]``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

try:
    from seisbench.models import WaveformModel
    from seisbench.util import ClassifyOutput
except ImportError as err:  # fail where used, naming the install command
    raise ImportError(
        "seisbert.inference.seisbench needs SeisBench: pip install 'seisbert[seisbench]' "
        "(or pip install seisbench)"
    ) from err

from obspy.core.event import Catalog, Event, Pick, ResourceIdentifier, WaveformStreamID

from seisbert.artifacts.pretrained import (
    list_pretrained,
    model_card,
    pretrained_path,
    resolve_bundle,
)
from seisbert.bundle import load_bundle
from seisbert.data.waveforms import WaveformSource
from seisbert.inference.predict import PredictConfig, check_source, prediction_table, score

log = logging.getLogger(__name__)

CITATION = (
    "Linville, L. Exploring Foundation Models for Seismic Event Processing (Sandia); "
    "seisbert's earthquake vs. quarry-blast classifier"
)
# The QuakeML written for classify needs an event type the waveforms source accepts; it is
# a placeholder: classify reports probabilities, never this label.
PLACEHOLDER_TYPE = "earthquake"


class SeisBertClassifier(WaveformModel):
    """Earthquake vs. quarry-blast classification of one event's stream from a P time.

    Args:
        bundle: path of a ``model.bundle.safetensors`` written by fine-tuning.
        predict: ``PredictConfig`` fields (``threshold``, ``prior_blast``, ``batch_size``).
        data: ``WaveformSource`` fields for reading the stream (``pre_s``, ``pad_s``, ...).
    """

    def __init__(self, bundle: str | Path, predict: dict | None = None, data: dict | None = None):
        self.bundle = load_bundle(resolve_bundle(bundle))  # a path, or pretrained:<name>
        fcfg = self.bundle.feature_config()
        super().__init__(
            citation=CITATION,
            component_order="ZNE" if fcfg.channels == "ZRT" else "Z",
            sampling_rate=fcfg.sampling_rate_hz,
            output_type="point",
            in_samples=round((fcfg.pre_s + fcfg.post_s) * fcfg.sampling_rate_hz),
            pred_sample=0,
            labels=self.bundle.class_names,
            grouping="instrument",
        )
        self.pcfg = PredictConfig(**{"progress": False, **(predict or {})})
        self.data_args = {"channels": fcfg.channels, **(data or {})}
        self.classifier = self.bundle.module()  # a submodule: .to(device), .eval() reach it

    @classmethod
    def list_pretrained(cls, details: bool = False, remote: bool = False):
        """The classifiers shipped with seisbert (``seisbert/pretrained/``); with ``details``,
        {name: model card}. Local only: ``remote`` is accepted for SeisBench's signature and
        nothing is ever fetched."""
        names = list_pretrained()
        return {name: model_card(name) for name in names} if details else names

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        version_str: str = "latest",
        update: bool = False,
        force: bool = False,
        wait_for_file: bool = False,
        **kwargs,
    ):
        """A shipped classifier by name, loaded from the package, never from a server.
        ``version_str``: ``latest`` or the seisbert version that wrote it (one per release)."""
        card = model_card(name)  # ValueError naming what is shipped when ``name`` is not
        written = load_bundle(pretrained_path(name)).info["seisbert_version"]
        if version_str not in ("latest", written):
            raise ValueError(
                f"pretrained model {name!r} ships version {written} only; "
                f"version_str={version_str!r} is not available offline"
            )
        model = cls(pretrained_path(name), **kwargs)
        model.model_card = card
        return model

    def annotate(self, *args, **kwargs):
        raise NotImplementedError(
            "SeisBertClassifier classifies events from a P time; call classify(stream, p_time=...)"
        )

    def classify(
        self, stream, p_time=None, event=None, inventory=None, event_id: str = "event", **kwargs
    ) -> ClassifyOutput:
        """P(blast) per station of ``stream`` and the event's decision.

        The P arrival comes from ``p_time`` (an ``obspy.UTCDateTime`` for every station, or
        {"NET.STA": time}), or from ``event`` (an ``obspy.core.event.Event``: its P picks, and
        with ``inventory`` (StationXML as an ``obspy.Inventory``) TauP's first P from its origin
        for a station it has no pick for). A station with no P either way is not classified and
        is listed in ``rejected`` with reason ``missing pick``.
        Returns ``ClassifyOutput`` with ``stations`` (list of dicts: station_id, prob_blast,
        predicted), ``prob_blast`` (mean over stations), ``decision`` and ``rejected``
        (station records that could not be used, with their reason).
        """
        if p_time is None and event is None:
            raise ValueError(
                "classify needs the P arrival: p_time (one time or {'NET.STA': time}) or "
                "event (an obspy Event with P picks, or an origin and an inventory for TauP)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            source, missing = self._write(stream, p_time, event, inventory, event_id, Path(tmp))
            check_source(self.bundle, source)
            records = (
                source.load(progress=False) if len(missing) < len(station_ids(stream)) else None
            )
        scored = score(self.bundle, records, self.pcfg) if records is not None else None
        table = prediction_table(scored, self.bundle, self.pcfg) if scored is not None else None
        col = (
            "prob_blast_shifted"
            if table is not None and "prob_blast_shifted" in table
            else "prob_blast"
        )
        n = 0 if table is None else len(table)
        mean = float(table[col].mean()) if n else float("nan")
        names = self.bundle.class_names
        decision = None if not n else names[int(mean >= self.pcfg.threshold)]
        rejected = (
            []
            if scored is None
            else scored.rejected[["record", "reason", "detail"]].to_dict("records")
        )
        rejected = [r for r in rejected if r["reason"] != "file near no event"] + [
            {
                "record": sid,
                "reason": "missing pick",
                "detail": f"no P pick for {sid} in the event, and no inventory and origin for TauP",
            }
            for sid in missing
        ]
        stations = [] if not n else table[["station_id", col, "predicted"]].to_dict("records")
        return ClassifyOutput(
            self.name, stations=stations, prob_blast=mean, decision=decision, rejected=rejected
        )

    def _write(self, stream, p_time, event, inventory, event_id: str, folder: Path):
        """The stream as miniSEED per station, a one-event QuakeML with the P picks (and the
        inventory as StationXML for TauP); returns the source and the stations without a P."""
        ev = (
            event.copy()
            if event is not None
            else Event(resource_id=ResourceIdentifier(f"smi:local/event/{event_id}"))
        )
        ev.event_type = PLACEHOLDER_TYPE
        picked = {
            f"{pk.waveform_id.network_code}.{pk.waveform_id.station_code}"
            for pk in ev.picks
            if (pk.phase_hint or "P").upper().startswith("P")
        }
        taup = inventory is not None and bool(ev.origins)
        missing = []
        for station_id in station_ids(stream):
            net, sta = station_id.split(".", 1)
            t = p_time.get(station_id) if isinstance(p_time, dict) else p_time
            if t is not None:
                ev.picks.append(
                    Pick(time=t, phase_hint="P", waveform_id=WaveformStreamID(net, sta))
                )
            elif station_id not in picked and not taup:
                missing.append(station_id)
                continue
            stream.select(network=net, station=sta).write(
                str(folder / f"{station_id}.mseed"), format="MSEED"
            )
        Catalog([ev]).write(str(folder / "catalog.xml"), format="QUAKEML")
        extra = {}
        if inventory is not None:
            inventory.write(str(folder / "stations.xml"), format="STATIONXML")
            extra["inventory"] = str(folder / "stations.xml")
        source = WaveformSource(
            waveform_dir=str(folder),
            catalog=str(folder / "catalog.xml"),
            file_glob="*.mseed",
            p_from_taup=taup,
            **{**self.data_args, **extra},
        )
        return source, missing

    def get_model_args(self):
        return {**super().get_model_args(), "bundle": str(self.bundle.path)}


def station_ids(stream) -> list[str]:
    """The "NET.STA" of every trace of ``stream``, sorted."""
    return sorted({f"{tr.stats.network}.{tr.stats.station}" for tr in stream})
