"""Peak memory of ``seisbert predict`` at two record counts: flat when records stream.

    python scripts/bench/predict.py [--records 2000 20000] [--rows-per-file 250]

Fine-tunes a tiny classifier on a small synthetic set (the test suite's tiny configuration)
for its bundle, then writes a ``data=file_list`` archive: synthetic records joined into
10-minute miniSEED traces and one CSV row per record window (file, P time), so that 20,000
records take seconds to write (rows share files; no two rows share a P time). Each count
runs the real predict path (``seisbert.inference.cli.apply_bundle``: source streamed to a temporary
``.npy``, then featurized, tokenized and classified ``predict.chunk_records`` at a time) in
a fresh process, and the peak RSS of that process is printed with the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from seisbert.logs import setup_logging
from seisbert.train.schemas import register

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
# The tests' tiny fine-tuning run (tests/conftest.py, bundle_helpers.py): a bundle in seconds.
TINY_FINETUNE = [
    "experiment=scratch",
    "data.n_events=80",
    "tokenizer.vocab_size=16",
    "model=tiny",
    "logger=none",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "++callbacks.progress_bar=null",
    "task.params.masked_eval=false",
    "torch_threads=1",
]
FILE_S = 600.0  # seconds of data per miniSEED file
FS = 100.0
PRE_S, POST_S = 10.0, 80.0  # the bundle's feature window (configs/features/psd.yaml)
PAD_S = 5.0  # read beyond each cut (data.pad_s's default): it must lie in the file too


def train_bundle(folder: Path) -> Path:
    from seisbert.train.job import train_job, validate

    register()  # the config dataclasses' defaults, which the YAML presets extend
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=TINY_FINETUNE)
    with open_dict(cfg):
        cfg.paths.cache_dir, cfg.paths.output_dir = str(folder / "cache"), str(folder / "run")
    validate(cfg)
    train_job(cfg)
    return folder / "run" / "model.bundle.safetensors"


def synthetic_trace(n_samples: int, seed: int) -> np.ndarray:
    """Synthetic event records end to end, ``n_samples`` long (records reused as needed)."""
    from seisbert.data.synthetic.source import SyntheticSource

    records = SyntheticSource(n_events=12, seed=seed).load(progress=False)
    waves = np.nan_to_num(np.asarray(records.waveforms[:, 0], np.float64)).ravel()
    return np.resize(waves, n_samples).astype(np.float32)


def write_archive(folder: Path, n_records: int, rows_per_file: int) -> Path:
    """``folder/records.csv`` naming ``n_records`` windows in 10-minute miniSEED files."""
    from obspy import Trace, UTCDateTime

    folder.mkdir(parents=True, exist_ok=True)
    trace = synthetic_trace(round(FILE_S * FS), seed=3)
    start, rows = UTCDateTime(2021, 1, 1), []
    first_p, last_p = PRE_S + PAD_S + 1.0, FILE_S - POST_S - PAD_S - 1.0  # s into a file
    step = (last_p - first_p) / rows_per_file
    for f in range(-(-n_records // rows_per_file)):
        t0 = start + 3600 * f
        name = f"f{f:04d}.mseed"
        stats = {
            "network": "XX",
            "station": f"S{f % 100:02d}",
            "channel": "HHZ",
            "sampling_rate": FS,
            "starttime": t0,
        }
        data = np.roll(trace, 977 * f)  # each file starts at another sample of the trace
        Trace(data, stats).write(str(folder / name), format="MSEED", encoding="FLOAT32")
        for j in range(min(rows_per_file, n_records - len(rows))):
            rows.append(
                {"file": name, "p_time": str(t0 + first_p + j * step), "event_id": f"e{f}_{j}"}
            )
    pd.DataFrame(rows).to_csv(folder / "records.csv", index=False)
    return folder / "records.csv"


def predict_once(bundle: Path, records_csv: Path, out: Path) -> None:
    """(In a fresh process) the real predict run; prints records, seconds and peak RSS (MB)."""
    from seisbert.inference.cli import apply_bundle

    register()  # the config dataclasses' defaults, which the YAML presets extend
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "predict",
            overrides=[
                f"bundle={bundle}",
                "data=file_list",
                f"data.file_list={records_csv}",
                f"data.pre_s={PRE_S}",
                f"data.post_s={POST_S}",
                "predict.progress=false",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    started = time.perf_counter()
    apply_bundle(cfg)
    n = len(pd.read_csv(out / "predictions.csv"))
    print(
        json.dumps(
            {
                "records": n,
                "seconds": time.perf_counter() - started,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def measured(bundle: Path, records_csv: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(bundle), str(records_csv), str(out)]
    lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, nargs=2, default=[2000, 20000])
    ap.add_argument("--rows-per-file", type=int, default=250)
    ap.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)  # one measured run
    args = ap.parse_args(argv)
    if args.child is not None:
        return predict_once(*args.child)
    setup_logging()
    # the tiny model's training messages (a collapsed class, ...) say nothing about memory
    logging.getLogger("seisbert").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        bundle = train_bundle(tmp / "train")
        print(f"tiny bundle trained in {time.perf_counter() - started:.0f} s")
        results = []
        for n in args.records:
            started = time.perf_counter()
            records_csv = write_archive(tmp / f"archive_{n}", n, args.rows_per_file)
            written = time.perf_counter() - started
            results.append(measured(bundle, records_csv, tmp / f"predict_{n}"))
            print(
                f"{n:,} records: archive written in {written:.0f} s, predicted "
                f"{results[-1]['records']:,} in {results[-1]['seconds']:.0f} s, "
                f"peak RSS {results[-1]['peak_mb']:.0f} MB",
                flush=True,
            )
    (a, b), (ra, rb) = args.records, results
    print(
        f"predict peak memory: {a:,} records {ra['peak_mb']:.0f} MB, {b:,} records "
        f"{rb['peak_mb']:.0f} MB (x{rb['peak_mb'] / ra['peak_mb']:.2f})"
    )
    per_record_kb = (rb["peak_mb"] - ra["peak_mb"]) * 1024 / (b - a)
    print(
        f"growth {per_record_kb:.1f} KB per record (metadata and tables); one record's "
        f"waveform is {(PRE_S + POST_S) * FS * 4 / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()
