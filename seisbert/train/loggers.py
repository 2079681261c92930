"""Logger factories: W&B offline unless the user has opted in to online sync.

Each training job gets its own W&B run: a Hydra multirun executes its jobs one after another
in one process, and W&B keeps one run per process until it is finished, so a new job's logger
finishes the previous job's run first. In a multirun a job's run is named from its overrides
and grouped by the sweep folder. ``read_offline_run`` reads an offline run back (history,
config, artifacts) without a W&B account: the same records ``wandb sync`` uploads.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path


def wandb_offline() -> bool:
    """Offline unless WANDB_MODE says online or an API key is configured."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    return not (mode == "online" or os.environ.get("WANDB_API_KEY"))


def finish_wandb() -> None:
    """Finish the process's W&B run, if one is open (the end of a job)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def hydra_job_identity() -> dict:
    """``name`` suffix and ``group`` of the running Hydra job: in a multirun, the job's
    overrides (``model.heads=2,model.layers=1``) and the sweep folder's name; else {}."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hc = HydraConfig.get()
    return {
        "overrides": hc.job.override_dirname or f"job{hc.job.num}",
        "group": Path(hc.sweep.dir).name,
    }


def wandb_logger(**kwargs):
    from lightning.pytorch.loggers import WandbLogger

    finish_wandb()  # the previous job's run, in a multirun or a study in one process
    job = hydra_job_identity()
    if job:
        kwargs["name"] = f"{kwargs.get('name') or 'job'}:{job['overrides']}"
        kwargs.setdefault("group", job["group"])
    os.makedirs(kwargs.get("save_dir", "."), exist_ok=True)
    return WandbLogger(offline=wandb_offline(), **kwargs)


# ------------------------------------------------------------------------ reading a run back
def read_offline_run(folder: str | Path, timeout_s: float = 60.0) -> dict:
    """History rows, merged config, logged artifacts and files of one offline W&B run.

    ``folder`` is a run folder holding ``wandb/offline-run-*/`` (or that folder itself). Waits
    up to ``timeout_s`` for the run's exit record: ``wandb.finish()`` can return while W&B's
    service is still writing. Returns {"history": [dict], "config": dict, "artifacts":
    {name: (type, {paths})}, "files": [path], "name": str, "group": str, "dir": Path}.
    """
    folder = Path(folder)
    found = sorted(folder.glob("wandb/offline-run-*/run-*.wandb")) or sorted(
        folder.glob("run-*.wandb")
    )
    if len(found) != 1:
        raise ValueError(
            f"{folder} holds {len(found)} offline W&B runs (wandb/offline-run-*/"
            "run-*.wandb); give the folder of one run"
        )
    out = {
        "history": [],
        "config": {},
        "artifacts": {},
        "files": [],
        "name": "",
        "group": "",
        "dir": found[0].parent,
    }
    for r in _finished_records(found[0], timeout_s):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            )
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "artifact":
            out["artifacts"][r.artifact.name] = (
                r.artifact.type,
                {m.path for m in r.artifact.manifest.contents},
            )
        elif kind == "files":
            out["files"] += [f.path for f in r.files.files]
        elif kind == "run":
            out["name"], out["group"] = r.run.display_name, r.run.run_group
    return out


def _finished_records(log_file: Path, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        records = list(wandb_records(log_file))
        if (
            any(r.WhichOneof("record_type") == "exit" for r in records)
            or time.monotonic() > deadline
        ):
            return records
        time.sleep(0.2)


def wandb_records(path: Path):
    """Protobuf records of a ``.wandb`` file (W&B's LevelDB-style log).

    The file starts with a 7-byte header (``:W&B``, magic, version) and is cut into 32 KiB
    blocks of chunks: crc32 (4 bytes), length (2), type (1: full, 2: first, 3: middle, 4: last).
    """
    from wandb.proto import wandb_internal_pb2

    data, block = Path(path).read_bytes(), 32768
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    pos, parts = 7, []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too short for a chunk header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        parts = [chunk] if kind in (1, 2) else parts + [chunk]
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            yield record
