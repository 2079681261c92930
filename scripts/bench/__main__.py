"""``make bench``: every stage beside its reference, in one run, printed as ratios.

    python scripts/bench                  # all stages (10-15 min idle; model + training alone
                                          # took 32 min wall, 6 CPU-min, on 2 cores at load 8)
    python scripts/bench features model   # a subset of the stages named in STAGES
    python scripts/bench/encoder.py ...   # one stage's script, with its own options

Timings are only comparable within one run: other load on the machine shifts them all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# stage -> (its script in this folder, its arguments)
STAGES = {
    "synthetic": ("synthetic.py", None),  # generation speed, class separability
    "features": ("features.py", []),  # ours vs. scipy welch loop / periodogram per record
    "tokenizer": ("tokenizer.py", []),  # FAISS vs. scikit-learn KMeans; paper-scale fit+assign
    # our training step (bf16 where native, head on masked positions) vs. HF BertForMaskedLM fp32;
    # one thread and CPU seconds, so the other jobs of a shared machine do not skew the ratio
    "model": ("encoder.py", ["--threads", "1", "--clock", "cpu", "--rounds", "3"]),
    # a real small pretraining run: train vs. validation seconds per epoch, fp32 vs. bf16 accuracy
    "training": ("training.py", []),
    # data=waveforms reading (0 and N workers) beside a plain one-process ObsPy read loop
    "ingest": ("ingest.py", []),
    # seisbert predict's peak RSS at 2,000 vs 20,000 records (streamed, scored in chunks)
    "predict": ("predict.py", []),
    # paths.verify: seconds per level on a paper-scale artifact, and one-byte changes caught
    "cache": ("cache.py", []),
}


def main(argv: list[str]) -> None:
    chosen = argv or list(STAGES)
    unknown = set(chosen) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}; choose from {list(STAGES)}")
    for name in chosen:
        script, args = STAGES[name]
        print(f"\n{'=' * 20} {name} (scripts/bench/{script}) {'=' * 20}", flush=True)
        start = time.perf_counter()
        # each stage in its own process: no state (threads, caches, imports) leaks between them
        subprocess.run([sys.executable, str(HERE / script), *(args or [])], check=True)
        print(f"[{name}: {time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
