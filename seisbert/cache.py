"""Artifact hashing and atomic writes.

Every stage writes ``<cache_dir>/<stage>/<hash>/``; the hash covers the config of the
stage and of every stage upstream, so a sweep over model settings reuses features and
tokens. A stage writes into ``<hash>.tmp-<pid>`` and renames it when complete, so a
killed run never leaves a half artifact that a later run trusts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

COMPLETE_MARKER = "artifact.json"


def config_hash(*parts: Any, length: int = 12) -> str:
    """Stable short hash of JSON-serialisable config parts (dicts, lists, scalars)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def artifact_dir(cache_dir: str | Path, stage: str, digest: str) -> Path:
    return Path(cache_dir) / stage / digest


def is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file()


def versions() -> dict[str, str]:
    """Versions of the packages that shape an artifact, stored beside it."""
    import numpy
    import scipy

    import seisbert

    out = {"python": platform.python_version(), "numpy": numpy.__version__,
           "scipy": scipy.__version__, "seisbert": seisbert.__version__}
    for name in ("faiss", "obspy", "torch"):
        with contextlib.suppress(Exception):
            out[name] = __import__(name).__version__
    return out


@contextlib.contextmanager
def atomic_artifact(path: Path, config: dict, upstream: dict | None = None) -> Iterator[Path]:
    """Yield a temporary folder; on success write ``artifact.json`` and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        record = {"config": config, "upstream": upstream or {}, "versions": versions(),
                  "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(record, indent=2, default=str))
        if path.exists():  # a concurrent run finished first; ours is identical by hash
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s", path)


def read_artifact_record(path: Path) -> dict:
    return json.loads((Path(path) / COMPLETE_MARKER).read_text())
