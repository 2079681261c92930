"""What checking a cached artifact costs, and what each ``paths.verify`` level catches.

    python scripts/bench/cache.py [--records 7734] [--flips 200]

Builds a records-like artifact of paper scale (``--records`` waveforms of (1, 9000) float32,
the default data size, plus its (N, 90, 20) features) with
``seisbert.artifacts.cache.atomic_artifact``, then times ``verify_artifact`` at each level and
changes one random byte ``--flips`` times to count how often each level sees it. Only ``full``
reads every byte; the figures say what the others miss. Other load on the machine shifts the
timings.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from seisbert.artifacts.cache import VERIFY_MODES, atomic_artifact, verify_artifact

SAMPLES, WINDOWS, BINS = 9000, 90, 20  # 90 s at 100 Hz; 90 one-second windows of 20 bins


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")]
    return names[0] if names else platform.processor()


def build(folder: Path, records: int) -> Path:
    rng = np.random.default_rng(0)
    target = folder / "records" / "bench"
    with atomic_artifact(target, {"bench": records}) as tmp:
        waves = np.lib.format.open_memmap(
            tmp / "waveforms.npy", "w+", np.float32, (records, 1, SAMPLES)
        )
        for i in range(0, records, 512):
            waves[i : i + 512] = rng.standard_normal(
                (len(waves[i : i + 512]), 1, SAMPLES), np.float32
            )
        waves.flush()
        np.save(tmp / "features.npy", rng.standard_normal((records, WINDOWS, BINS), np.float32))
    return target


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0xFF]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=7734)
    ap.add_argument("--flips", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = build(Path(tmp), args.records)
        total = sum(p.stat().st_size for p in target.iterdir())
        print(f"artifact: {args.records} records, {total / 1e6:.0f} MB; CPU {cpu_model()}")
        seconds = {}
        for mode in VERIFY_MODES:
            start = time.perf_counter()
            assert verify_artifact(target, mode) is None
            seconds[mode] = time.perf_counter() - start
        wave = target / "waveforms.npy"
        rng = np.random.default_rng(1)
        caught = dict.fromkeys(VERIFY_MODES, 0)
        full_flips = min(args.flips, 10)  # full reads everything: a few flips show it
        for i, offset in enumerate(rng.integers(0, wave.stat().st_size, args.flips)):
            flip(wave, int(offset))
            for mode in VERIFY_MODES:
                if mode != "full" or i < full_flips:
                    caught[mode] += verify_artifact(target, mode) is not None
            flip(wave, int(offset))
        print(f"{'paths.verify':<14}{'seconds':>9}{'MB/s':>8}  one-byte change caught")
        for mode in VERIFY_MODES:
            tries = full_flips if mode == "full" else args.flips
            print(
                f"{mode:<14}{seconds[mode]:>9.2f}{total / 1e6 / max(seconds[mode], 1e-9):>8.0f}  "
                f"{caught[mode]}/{tries} ({100 * caught[mode] / tries:.0f}%)"
            )
        print(
            f"verify full on a paper-scale records artifact: {seconds['full']:.2f} s "
            f"(x{seconds['full'] / max(seconds['sampled'], 1e-9):.1f} of sampled)"
        )


if __name__ == "__main__":
    main()
