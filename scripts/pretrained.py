"""Train the weights shipped with the package: ``python scripts/pretrained.py`` (make pretrained).

The study's best arm on the embedded synthetic dataset at its default size: a ``small``
encoder reading PSD windows, pretrained with BEST-RQ random-projection targets
(``experiment=mlm_psd_rp``, the study's 1500-step base-model budget), then fine-tuned on every
training label (``experiment=finetune_psd``, the lr the study chose for this arm) and scored on
an independent synthetic draw. Writes into ``seisbert/pretrained/``:
``<NAME>.bundle.safetensors`` (the classifier), ``<NAME>.base.ckpt`` (the pretrained
encoder, for fine-tuning on one's own labels) and ``<NAME>.json`` (the model card). Run folders
and caches live under ``--work`` (default ``~/.cache/seisbert/pretrained``), so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from seisbert.artifacts.pretrained import write_base, write_card

ROOT = Path(__file__).resolve().parents[1]
NAME = "psd_rp_synthetic"
PRETRAIN = [
    "experiment=mlm_psd_rp",
    "trainer.max_epochs=-1",
    "trainer.max_steps=1500",
    "trainer.val_check_interval=300",
    "trainer.check_val_every_n_epoch=null",
    "task.monitor=val/mlm_acc_all_masked",
]
FINETUNE = [
    "experiment=finetune_psd",
    "task.params.pretrain_task=mlm_psd_rp",
    "task.params.lr=3.0e-4",
    "trainer.max_epochs=3",  # ~600 steps over every label: minutes on 2 cores
]
EVALUATE = [
    "mode=evaluate",
    "data=synthetic",
    "data.seed=7",
    "data.n_events=1000",
    "data.event_id_prefix=heldout",
]
COMMON = ["logger=csv", "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]


def train(work: Path, name: str, overrides: list[str]) -> Path:
    out = work / name
    if not (out / "metrics.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "train.py"),
                *overrides,
                *COMMON,
                f"paths.cache_dir={work / 'cache'}",
                f"hydra.run.dir={out}",
            ],
            cwd=ROOT,
            check=True,
        )
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache/seisbert/pretrained")
    ap.add_argument("--out", type=Path, default=ROOT / "seisbert" / "pretrained")
    args = ap.parse_args(argv)
    base_run = train(args.work, "pretrain", PRETRAIN)
    fine_run = train(args.work, "finetune", FINETUNE)
    evaluated = args.work / "evaluate"
    if not (evaluated / "metrics.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "predict.py"),
                f"bundle={fine_run / 'model.bundle.safetensors'}",
                *EVALUATE,
                f"hydra.run.dir={evaluated}",
                "predict.progress=false",
            ],
            cwd=ROOT,
            check=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fine_run / "model.bundle.safetensors", args.out / f"{NAME}.bundle.safetensors")
    base_ckpt = json.loads((base_run / "metrics.json").read_text())["checkpoint"]
    write_base(Path(base_ckpt), args.out / f"{NAME}.base.ckpt")
    write_card(
        args.out / f"{NAME}.json",
        NAME,
        base_run,
        fine_run,
        evaluated,
        commands={
            "all": "python scripts/pretrained.py",
            "pretrain": " ".join(["python train.py", *PRETRAIN, *COMMON]),
            "finetune": " ".join(["python train.py", *FINETUNE, *COMMON]),
            "evaluate": " ".join(["seisbert evaluate bundle=<the bundle>", *EVALUATE]),
        },
    )
    print(f"wrote {args.out}/{NAME}.*")


if __name__ == "__main__":
    main()
