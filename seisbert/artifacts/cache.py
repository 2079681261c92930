"""Artifact hashing, atomic publishing and verification on load.

Every stage writes ``<cache_dir>/<stage>/<hash>/``; the hash covers the config of the
stage and of every stage upstream, so a sweep over model settings reuses features and
tokens. A stage writes into ``<hash>.tmp-<host>-<pid>`` and renames it when complete, so a
killed run never leaves a half artifact that a later run trusts. When two processes
publish the same artifact at once the first rename wins and the other uses it.

``artifact.json`` lists every file's size and SHA-256 (large files also per block), and a
load checks them at the level ``paths.verify`` names (``VERIFY_MODES``). An artifact its
config can rebuild (records, features, tokens) that fails is removed with a warning naming the
file, and its stage is built again. One that cannot be rebuilt from its config alone (a
pretrained base model: hours of training) is never removed: it is moved to
``<cache_dir>/quarantine/`` with the reason beside it; a missing, unreadable or older manifest
is rewritten when the files pass their own content check.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import platform
import random
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import seisbert
from seisbert.config import check_choice

log = logging.getLogger(__name__)

COMPLETE_MARKER = "artifact.json"
VERIFY_MODES = ("size", "sampled", "full")  # paths.verify; only ``full`` sees every byte
# Manifest format, not tuning: files up to SMALL_FILE_BYTES are always hashed whole (64 MiB
# of SHA-256 is ~0.1 s); larger ones also store one hash per block of about
# 1/TARGET_BLOCKS of the file, and ``sampled`` checks SAMPLED_BLOCKS random blocks per load
# (plus the first and last), so repeated loads of a big artifact cover more of it.
SMALL_FILE_BYTES = 64 << 20
TARGET_BLOCKS = 1024
SAMPLED_BLOCKS = 16
READ_BYTES = 1 << 20
HOST = socket.gethostname()
QUARANTINE = "quarantine"  # <cache_dir>/quarantine/<stage>/<name>-<utc>/: kept, never read
QUARANTINE_NOTE = "QUARANTINED.txt"
# <name>.tmp-<host>-<pid> (being written) or <name>.bad-<host>-<pid> (being removed)
_TEMP = re.compile(r"^(?P<name>.+)\.(?:tmp|bad)-(?:(?P<host>.+)-)?(?P<pid>\d+)$")


def config_hash(*parts: Any, length: int = 12) -> str:
    """Stable short hash of JSON-serialisable config parts (dicts, lists, scalars)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def artifact_dir(cache_dir: str | Path, stage: str, digest: str) -> Path:
    return Path(cache_dir) / stage / digest


def is_complete(path: Path) -> bool:
    """Whether ``path`` carries its marker (published); ``verify_artifact`` checks its bytes."""
    return (path / COMPLETE_MARKER).is_file()


def check_verify_mode(mode: str) -> str:
    check_choice("paths.verify", mode, VERIFY_MODES)
    return mode


def versions() -> dict[str, str]:
    """Versions of the packages that shape an artifact, stored beside it."""
    import numpy
    import scipy

    out = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "seisbert": seisbert.__version__,
    }
    for name in ("faiss", "obspy", "torch"):
        with contextlib.suppress(Exception):
            out[name] = __import__(name).__version__
    return out


# ------------------------------------------------------------------------------ hashing
def file_digest(path: Path) -> str:
    """SHA-256 hex digest of a whole file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(READ_BYTES), b""):
            h.update(piece)
    return h.hexdigest()


def _block_bytes(size: int) -> int:
    return max(READ_BYTES, -(-size // TARGET_BLOCKS))


def file_entry(path: Path) -> dict:
    """Manifest entry of one file: size, SHA-256, and block hashes when it is large."""
    if path.is_symlink():  # e.g. tokens' features.npy: checked by its own artifact
        return {"link": os.readlink(path)}
    size = path.stat().st_size
    if size <= SMALL_FILE_BYTES:
        return {"size": size, "sha256": file_digest(path)}
    whole, blocks, step = hashlib.sha256(), [], _block_bytes(size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(step), b""):
            whole.update(block)
            blocks.append(hashlib.sha256(block).hexdigest())
    return {"size": size, "sha256": whole.hexdigest(), "block_bytes": step, "blocks": blocks}


def manifest(folder: Path) -> dict[str, dict]:
    """Entries of every file under ``folder`` (relative POSIX paths), the marker excepted."""
    files = sorted(p for p in folder.rglob("*") if p.is_symlink() or p.is_file())
    return {
        p.relative_to(folder).as_posix(): file_entry(p)
        for p in files
        if p.name != COMPLETE_MARKER or p.parent != folder
    }


def _sampled_ok(path: Path, entry: dict) -> bool:
    blocks, step = entry["blocks"], entry["block_bytes"]
    # a private generator: the global streams belong to the run (seeded, checkpointed)
    drawn = random.Random().sample(range(len(blocks)), min(SAMPLED_BLOCKS, len(blocks)))
    picks = {0, len(blocks) - 1, *drawn}
    with open(path, "rb") as fh:
        for i in sorted(picks):
            fh.seek(i * step)
            if hashlib.sha256(fh.read(step)).hexdigest() != blocks[i]:
                return False
    return True


def check_file(path: Path, entry: dict, mode: str) -> str | None:
    """None when ``path`` matches its manifest entry at level ``mode``, else what differs."""
    if "link" in entry:
        if not path.is_symlink() or os.readlink(path) != entry["link"] or not path.exists():
            return f"{path} is not the link to {entry['link']} it was written as"
        return None
    if not path.is_file():
        return f"{path} is missing"
    size = path.stat().st_size
    if size != entry["size"]:
        return f"{path} has {size} bytes, {entry['size']} were written"
    if mode == "size":
        return None
    if mode == "sampled" and "blocks" in entry:
        return None if _sampled_ok(path, entry) else f"{path}: a sampled block's SHA-256 differs"
    return None if file_digest(path) == entry["sha256"] else f"{path}: its SHA-256 differs"


def manifest_problem(path: Path) -> str | None:
    """None when ``path`` has a readable manifest of this version, else what is wrong with it."""
    marker = Path(path) / COMPLETE_MARKER
    if not marker.is_file():
        return f"{marker} is missing"
    try:
        files = json.loads(marker.read_text()).get("files")
    except (ValueError, AttributeError, UnicodeDecodeError) as err:
        return f"{marker} is unreadable ({err})"
    if not isinstance(files, dict):
        return f"{marker} lists no file sizes and hashes (written by an older seisbert)"
    return None


def verify_artifact(path: Path, mode: str) -> str | None:
    """None when the published artifact ``path`` is whole, else the reason, naming the file."""
    problem = manifest_problem(path)
    if problem is not None:
        return problem
    files = read_artifact_record(path)["files"]
    for name, entry in files.items():
        reason = check_file(Path(path) / name, entry, mode)
        if reason is not None:
            return reason
    return None


def verified(
    path: Path, mode: str, what: str, content_ok: Callable[[Path], str | None] | None = None
) -> bool:
    """Whether ``path`` holds a whole artifact.

    Without ``content_ok`` the artifact is one its config rebuilds: a failing one is warned
    about and removed. With it (``content_ok(path)``: None when the files themselves are
    sound, else why not) the artifact cannot be rebuilt from its config: a failing manifest is
    rewritten when the content is sound, and anything else is quarantined, never removed.
    """
    path = Path(path)
    if not path.exists():
        return False
    reason = verify_artifact(path, check_verify_mode(mode))
    if reason is None:
        return True
    if content_ok is None:
        log.warning("%s: cached %s fails verification (%s); rebuilding it", what, path, reason)
        discard(path)
        return False
    manifest_failed = manifest_problem(path) is not None
    content = content_ok(path) if manifest_failed else None
    if manifest_failed and content is None:
        upgrade_manifest(path)
        log.warning(
            "%s: %s had a manifest that failed (%s); its files pass their content check, "
            "so the manifest was written anew",
            what,
            path,
            reason,
        )
        return True
    if content is not None:
        reason = f"{reason}; and its own check: {content}"
    kept = quarantine(path, reason)
    log.warning(
        "%s: %s fails verification (%s); moved to %s, not deleted (move it back to "
        "use it as it is, or delete it yourself)",
        what,
        path,
        reason,
        kept,
    )
    return False


def upgrade_manifest(path: Path) -> None:
    """Write ``artifact.json`` anew from the files as they are, keeping its config if readable."""
    marker = Path(path) / COMPLETE_MARKER
    try:
        old = json.loads(marker.read_text())
        old = old if isinstance(old, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        old = {}
    record = {
        "config": old.get("config", {}),
        "upstream": old.get("upstream", {}),
        "versions": versions(),
        "created_utc": old.get("created_utc"),
        "upgraded_utc": _utc_now(),
        "files": manifest(Path(path)),
    }
    tmp = marker.with_name(f"{COMPLETE_MARKER}.tmp-{HOST}-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(marker)


def quarantine(path: Path, reason: str) -> Path:
    """Move ``<cache_dir>/<stage>/<name>`` to ``<cache_dir>/quarantine/<stage>/<name>-<utc>``,
    with the reason written beside it; returns where it went."""
    path = Path(path)
    dest = path.parent.parent / QUARANTINE / path.parent.name / f"{path.name}-{_utc_now()}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, dest)
    except FileNotFoundError:  # another process moved it first
        return dest
    (dest / QUARANTINE_NOTE).write_text(f"moved here from {path} on {_utc_now()}: {reason}\n")
    return dest


def _utc_now() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


# ---------------------------------------------------------------------------- publishing
def discard(path: Path) -> None:
    """Remove a published artifact: renamed aside first, so no reader sees it half-deleted."""
    aside = path.with_name(f"{path.name}.bad-{HOST}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:  # another process set it aside first
        return
    shutil.rmtree(aside, ignore_errors=True)


def is_temporary(name: str) -> bool:
    """Whether a folder name is a temporary (being written) or discarded artifact's."""
    return _TEMP.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_dead_temps(folder: Path) -> list[Path]:
    """Remove ``*.tmp-*``/``*.bad-*`` folders left by dead processes of this host."""
    removed = []
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        m = _TEMP.match(entry.name)
        if m is None or m["host"] not in (None, HOST) or _alive(int(m["pid"])):
            continue  # not ours to judge: another host's pid means nothing here
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        log.info("removed %s, left by dead process %s", entry, m["pid"])
    return removed


def _publish(tmp: Path, path: Path, mode: str, content_ok=None) -> bool:
    """Rename ``tmp`` to ``path``; True if ours won. A whole artifact already there wins."""
    for _ in range(3):
        try:
            os.rename(tmp, path)  # atomic; fails on a non-empty folder, which we then judge
            return True
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if verified(path, mode, "publish", content_ok):
            shutil.rmtree(tmp, ignore_errors=True)
            log.info(
                "%s already holds a whole artifact (published by another process or an "
                "earlier run); using it",
                path,
            )
            return False
    raise RuntimeError(f"could not publish {tmp} as {path}: it kept being replaced")


@contextlib.contextmanager
def atomic_artifact(
    path: Path, config: dict, upstream: dict | None = None, verify: str = "full", content_ok=None
) -> Iterator[Path]:
    """Yield a temporary folder; on success write ``artifact.json`` (config, versions, every
    file's size and hashes) and rename it to ``path``. ``verify`` judges an artifact already
    there; ``content_ok`` marks one that cannot be rebuilt (see ``verified``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_dead_temps(path.parent)
    tmp = path.with_name(f"{path.name}.tmp-{HOST}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        record = {
            "config": config,
            "upstream": upstream or {},
            "versions": versions(),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": manifest(tmp),
        }
        (tmp / COMPLETE_MARKER).write_text(json.dumps(record, indent=2, default=str))
        if _publish(tmp, path, verify, content_ok):
            log.info("wrote %s", path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_artifact_record(path: Path) -> dict:
    return json.loads((Path(path) / COMPLETE_MARKER).read_text())
