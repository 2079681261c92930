"""Cached artifacts verify themselves: every corruption mode is detected and rebuilt; two
processes publishing the same artifact at once never crash; dead processes' temp folders go."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import compose_cfg
from omegaconf import open_dict

from seisbert.artifacts import cache
from seisbert.artifacts.cache import (
    COMPLETE_MARKER,
    HOST,
    atomic_artifact,
    clean_dead_temps,
    verified,
    verify_artifact,
)
from seisbert.artifacts.paths import (
    newest_published,
    publish_checkpoint,
    published_model,
    quarantined,
)
from seisbert.pipeline import FeatureSet, TokenSet, prepare
from seisbert.train.common import best_callback, build_trainer, fit_safely, resolve_ckpt

REPO = Path(__file__).resolve().parents[1]


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


# ---------------------------------------------------------------------- manifest and modes
def test_manifest_records_every_file_size_and_sha256(tmp_path):
    target = tmp_path / "stage" / "abc"
    with atomic_artifact(target, {"x": 1}) as tmp:
        (tmp / "a.bin").write_bytes(b"hello")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("{}")
    files = json.loads((target / COMPLETE_MARKER).read_text())["files"]
    assert set(files) == {"a.bin", "sub/b.json"}
    assert files["a.bin"] == {"size": 5, "sha256": cache.file_digest(target / "a.bin")}
    assert files["a.bin"]["sha256"].startswith("2cf24dba")  # sha256("hello")
    assert verify_artifact(target, "full") is None


def test_large_files_are_sampled_by_block_and_fully_checked_in_full_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "SMALL_FILE_BYTES", 1000)
    monkeypatch.setattr(cache, "READ_BYTES", 64)
    target = tmp_path / "stage" / "big"
    with atomic_artifact(target, {}) as tmp:
        (tmp / "big.bin").write_bytes(np.random.default_rng(0).bytes(64 * 2048))
    entry = json.loads((target / COMPLETE_MARKER).read_text())["files"]["big.bin"]
    assert entry["block_bytes"] == 128 and len(entry["blocks"]) == cache.TARGET_BLOCKS
    _flip_byte(target / "big.bin", 128 * 500 + 3)  # a middle block: sampled checks ~18 of 1024
    assert verify_artifact(target, "size") is None
    assert "SHA-256 differs" in verify_artifact(target, "full")
    _flip_byte(target / "big.bin", 5)  # the first block is always among the sampled ones
    assert "sampled block" in verify_artifact(target, "sampled")


def test_an_artifact_without_hashes_is_set_aside_with_its_reason(tmp_path, caplog):
    old = tmp_path / "features" / "abc"
    old.mkdir(parents=True)
    (old / "features.npy").write_bytes(b"x")
    (old / COMPLETE_MARKER).write_text(json.dumps({"config": {}}))  # written before the hashes
    assert "lists no file sizes and hashes" in verify_artifact(old, "size")
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert not verified(old, "sampled", "features")
    assert f"features: cached {old} fails verification" in caplog.text
    assert list((tmp_path / "features").iterdir()) == []  # removed, so the stage builds it again


def test_bad_verify_mode_names_the_key(tmp_path):
    with pytest.raises(
        ValueError, match=r"paths.verify='fast' is not allowed.*size.*sampled.*full"
    ):
        verified(tmp_path, "fast", "features")


# ------------------------------------------------------------- corruption of real stages
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A tiny real pipeline cache (records, features, tokens), built once for this module."""
    root = tmp_path_factory.mktemp("built")
    prepare(compose_cfg(root, cache=root / "cache"))
    return root / "cache"


@pytest.fixture
def fresh(built, tmp_path):
    """A copy of the built cache to damage, and the config that reads it."""
    shutil.copytree(built, tmp_path / "cache", symlinks=True)
    cfg = compose_cfg(tmp_path, cache=tmp_path / "cache")
    return cfg, prepare(cfg)


def _rebuilt(cfg, caplog, name: str) -> dict:
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        paths = prepare(cfg)
    warned = [r.getMessage() for r in caplog.records if "fails verification" in r.getMessage()]
    assert len(warned) == 1 and name in warned[0] and "rebuilding" in warned[0], warned
    assert all(verify_artifact(p, "full") is None for p in paths.values())
    return paths


def test_finite_garbage_in_features_is_detected_and_rebuilt(fresh, caplog):
    cfg, paths = fresh
    before = np.array(FeatureSet.load(paths["features"]).features)
    feats = np.load(paths["features"] / "features.npy", mmap_mode="r+")
    feats[3] = 1.0  # plausible, finite, same size
    feats.flush()
    del feats
    after = FeatureSet.load(_rebuilt(cfg, caplog, "features.npy")["features"]).features
    assert np.array_equal(after, before)


def test_in_range_garbage_in_tokens_is_detected_and_rebuilt(fresh, caplog):
    cfg, paths = fresh
    tset = TokenSet.load(paths["tokens"])
    before = np.array(tset.tokens)
    tokens = np.load(paths["tokens"] / "tokens.npy", mmap_mode="r+")
    tokens[0, :5] = (tokens[0, :5] + 1) % tset.vocab_size  # still valid token ids
    tokens.flush()
    del tokens
    after = TokenSet.load(_rebuilt(cfg, caplog, "tokens.npy")["tokens"]).tokens
    assert np.array_equal(after, before)


def test_deleted_marker_and_truncated_features_rebuild_without_a_crash(fresh, caplog):
    cfg, paths = fresh
    before = np.array(FeatureSet.load(paths["features"]).features)
    (paths["features"] / COMPLETE_MARKER).unlink()
    with open(paths["features"] / "features.npy", "r+b") as fh:
        fh.truncate(os.path.getsize(paths["features"] / "features.npy") // 2)
    after = FeatureSet.load(_rebuilt(cfg, caplog, COMPLETE_MARKER)["features"]).features
    assert np.array_equal(after, before)


def test_prepare_resolves_each_stage_once(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        prepare(compose_cfg(tmp_path, ["data.n_events=30"], cache=tmp_path / "cache"))
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name in ("seisbert.pipeline", "seisbert.artifacts.cache")
    ]
    assert sum("wrote" in m for m in lines) == 3
    assert not [m for m in lines if "reusing" in m], lines  # built once, never looked up again


# ------------------------------------------------------------------ published base models
def _checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save({"state_dict": {"w": torch.randn(64, 64)}, "hyper_parameters": {"seed": seed}}, path)
    return path


def test_changed_bytes_in_a_published_model_are_detected_and_republished(tmp_path, caplog):
    target = tmp_path / "cache" / "mlm" / "m1"
    publish_checkpoint(
        _checkpoint(tmp_path / "a.ckpt", 0), target, {"tokens": "t1"}, verify="sampled"
    )
    assert published_model(target, "sampled") == target / "model.ckpt"
    _flip_byte(target / "model.ckpt", os.path.getsize(target / "model.ckpt") // 2)  # a weight byte
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert (
            newest_published(target.parent, "sampled", lambda info: info["tokens"] == "t1") is None
        )
    assert "model.ckpt" in caplog.text and "fails verification" in caplog.text
    assert "not deleted" in caplog.text
    assert not target.exists()
    (kept,) = quarantined(tmp_path / "cache", "mlm")  # the damaged model is kept, with its reason
    assert (kept / "model.ckpt").stat().st_size == (tmp_path / "a.ckpt").stat().st_size
    assert "SHA-256 differs" in (kept / cache.QUARANTINE_NOTE).read_text()
    publish_checkpoint(tmp_path / "a.ckpt", target, {"tokens": "t1"}, verify="sampled")
    assert (target / "model.ckpt").read_bytes() == (tmp_path / "a.ckpt").read_bytes()


def _published(tmp_path: Path) -> Path:
    target = tmp_path / "cache" / "mlm" / "m1"
    publish_checkpoint(_checkpoint(tmp_path / "a.ckpt", 0), target, {"tokens": "t1"}, verify="full")
    return target


def _old_manifest(marker: Path) -> None:
    record = json.loads(marker.read_text())
    record.pop("files")  # what an older seisbert wrote
    marker.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda m: m.unlink(), "artifact.json is missing"),
        (_old_manifest, "lists no file sizes and hashes"),
        (lambda m: _flip_byte(m, 0), "artifact.json is unreadable"),
    ],
)
def test_a_base_model_whose_manifest_fails_is_kept_and_its_manifest_written_anew(
    tmp_path, caplog, damage, reason
):
    target = _published(tmp_path)
    weights = (target / "model.ckpt").read_bytes()
    damage(target / COMPLETE_MARKER)
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert published_model(target, "full") == target / "model.ckpt"
    assert reason in caplog.text and "the manifest was written anew" in caplog.text
    assert (target / "model.ckpt").read_bytes() == weights
    assert verify_artifact(target, "full") is None  # the new manifest covers every file
    assert json.loads((target / COMPLETE_MARKER).read_text()).get("upgraded_utc")


def test_a_base_model_whose_manifest_disagrees_with_its_weights_is_quarantined(tmp_path, caplog):
    target = _published(tmp_path)
    record = json.loads((target / COMPLETE_MARKER).read_text())
    digest = record["files"]["model.ckpt"]["sha256"]
    record["files"]["model.ckpt"]["sha256"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    (target / COMPLETE_MARKER).write_text(json.dumps(record))  # one changed hex digit
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert newest_published(target.parent, "full", lambda info: True) is None
    (kept,) = quarantined(tmp_path / "cache", "mlm")
    assert torch.load(kept / "model.ckpt", weights_only=True)["hyper_parameters"] == {"seed": 0}
    assert f"moved to {kept}" in caplog.text


def test_fine_tuning_names_the_quarantined_base_model(tmp_path):
    from seisbert.tasks.finetune import FinetuneConfig
    from seisbert.train.finetune import find_base_checkpoint

    target = _published(tmp_path)
    _flip_byte(target / "model.ckpt", os.path.getsize(target / "model.ckpt") // 2)
    cfg = compose_cfg(tmp_path, ["experiment=finetune"], cache=tmp_path / "cache")
    tset = type("T", (), {"digest": "t1"})()
    with pytest.raises(
        FileNotFoundError, match=r"kept, not deleted, in .*quarantine/mlm: 1 folder"
    ):
        find_base_checkpoint(cfg, FinetuneConfig(), tset)


def test_a_changed_weight_under_a_lost_manifest_is_quarantined_not_trusted(tmp_path, caplog):
    target = _published(tmp_path)
    _flip_byte(target / "model.ckpt", os.path.getsize(target / "model.ckpt") // 2)  # a weight
    (target / COMPLETE_MARKER).unlink()
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert published_model(target, "full") is None
    (kept,) = quarantined(tmp_path / "cache", "mlm")
    assert "fails its CRC-32" in caplog.text and (kept / "model.ckpt").is_file()


def test_a_base_model_without_model_json_is_reported_not_passed_over(tmp_path, caplog):
    target = _published(tmp_path)
    (target / "model.json").unlink()
    with caplog.at_level(logging.WARNING, logger="seisbert.artifacts.cache"):
        assert newest_published(target.parent, "full", lambda info: True) is None
    (kept,) = quarantined(tmp_path / "cache", "mlm")
    assert "model.json is missing" in caplog.text and (kept / "model.ckpt").is_file()


def test_a_damaged_checkpoint_given_by_path_is_named(tmp_path):
    from seisbert.train.finetune import read_checkpoint

    ckpt = _checkpoint(tmp_path / "a.ckpt", 0)
    half = tmp_path / "half.ckpt"
    half.write_bytes(ckpt.read_bytes()[: os.path.getsize(ckpt) // 2])
    with pytest.raises(ValueError, match=r"task.params.checkpoint='.*half.ckpt' cannot be read"):
        read_checkpoint(half)
    _flip_byte(ckpt, os.path.getsize(ckpt) // 2)
    with pytest.raises(ValueError, match="fails its CRC-32"):
        read_checkpoint(ckpt)


def test_the_default_check_catches_one_changed_byte_in_a_large_file(tmp_path):
    from conftest import compose_cfg as compose

    mode = compose(tmp_path, [], cache=tmp_path / "cache").paths.verify
    assert mode == "full"
    target = tmp_path / "stage" / "big"
    size = cache.SMALL_FILE_BYTES + (8 << 20)  # past the size where files are hashed by block
    with atomic_artifact(target, {}) as tmp:
        with open(tmp / "waveforms.npy", "wb") as fh:
            fh.truncate(size)
    rng = np.random.default_rng(1)
    for offset in rng.integers(0, size, 3):
        _flip_byte(target / "waveforms.npy", int(offset))
        assert "SHA-256 differs" in verify_artifact(target, mode)
        _flip_byte(target / "waveforms.npy", int(offset))  # back to whole
        assert verify_artifact(target, mode) is None


def test_a_stale_model_folder_without_marker_is_replaced_on_publish(tmp_path):
    target = tmp_path / "mlm" / "m1"
    target.mkdir(parents=True)
    (target / "model.ckpt").write_bytes(b"old, unverifiable")  # the format before artifact.json
    publish_checkpoint(_checkpoint(tmp_path / "a.ckpt", 1), target, {"tokens": "t"}, verify="full")
    assert verify_artifact(target, "full") is None
    assert torch.load(target / "model.ckpt", weights_only=True)["hyper_parameters"] == {"seed": 1}
    (kept,) = quarantined(tmp_path, "mlm")  # the unverifiable one is set aside, not deleted
    assert (kept / "model.ckpt").read_bytes() == b"old, unverifiable"


# --------------------------------------------------------------------------- publish race
RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from seisbert.artifacts import cache
    me, root, trials, how = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    cache.versions = lambda: {"racer": me}  # the race is in publishing; versions() imports torch
    if how == "checkpoint":
        from seisbert.artifacts.paths import publish_checkpoint

    def publish(target):
        if how == "checkpoint":
            return publish_checkpoint(root / f"{me}.ckpt", target, {"by": me}, verify="sampled")
        with cache.atomic_artifact(target, {}, verify="sampled") as tmp:
            (tmp / "model.ckpt").write_bytes((root / f"{me}.ckpt").read_bytes())
            (tmp / "model.json").write_text(json.dumps({"by": me}))
        return target / "model.ckpt"

    for t in range(trials):
        (root / f"ready-{t}-{me}").touch()
        while len(list(root.glob(f"ready-{t}-*"))) < 2:  # both reach the same instant
            time.sleep(0.05 if t == 0 else 0.0002)
        ckpt = publish(root / "mlm" / f"trial{t}")
        print(t, ckpt.read_bytes() == (root / f"{me}.ckpt").read_bytes(), flush=True)
""")


@pytest.mark.parametrize("how", ["artifact", pytest.param("checkpoint", marks=pytest.mark.slow)])
def test_two_processes_publishing_the_same_artifact_never_crash(tmp_path, how):
    trials = 30
    for me in ("a", "b"):
        (tmp_path / f"{me}.ckpt").write_bytes(me.encode() * 4096)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, me, str(tmp_path), str(trials), how],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in "ab"
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    mine = [dict(line.split() for line in out.splitlines()) for out, _ in outs]
    for t in range(trials):
        target = tmp_path / "mlm" / f"trial{t}"
        assert verify_artifact(target, "full") is None
        winner = "ab".index(json.loads((target / "model.json").read_text())["by"])
        # the first rename won; the other process returned the winner's model, not its own
        assert (mine[winner][str(t)], mine[1 - winner][str(t)]) == ("True", "False")
    assert sorted(p.name for p in (tmp_path / "mlm").iterdir()) == sorted(
        f"trial{t}" for t in range(trials)
    )


def test_a_second_publish_of_the_same_model_uses_the_first(tmp_path):
    target = tmp_path / "mlm" / "m1"
    first = publish_checkpoint(
        _checkpoint(tmp_path / "a.ckpt", 0), target, {"by": "a"}, verify="full"
    )
    again = publish_checkpoint(
        _checkpoint(tmp_path / "b.ckpt", 1), target, {"by": "b"}, verify="full"
    )
    assert again == first and first.read_bytes() == (tmp_path / "a.ckpt").read_bytes()
    assert json.loads((target / "model.json").read_text())["by"] == "a"
    assert [p.name for p in target.parent.iterdir()] == ["m1"]  # no temp copy left


# ---------------------------------------------------------------- temp folders of the dead
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no process now
    return proc.pid


def test_temp_folders_of_dead_processes_are_removed_live_and_foreign_kept(tmp_path, caplog):
    dead, live = _dead_pid(), os.getppid()
    names = {
        "dead": f"abc.tmp-{HOST}-{dead}",
        "legacy_dead": f"abc.tmp-{dead}",
        "dead_bad": f"abc.bad-{HOST}-{dead}",
        "live": f"abc.tmp-{HOST}-{live}",
        "other_host": f"abc.tmp-elsewhere-{dead}",
        "artifact": "abc",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "features.npy").write_bytes(b"half")
    with caplog.at_level(logging.INFO, logger="seisbert.artifacts.cache"):
        removed = clean_dead_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [names["dead"], names["legacy_dead"], names["dead_bad"]]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [names["live"], names["other_host"], "abc"]
    )
    assert f"left by dead process {dead}" in caplog.text


def test_publishing_cleans_dead_temps_beside_it(tmp_path):
    stale = tmp_path / "stage" / f"xyz.tmp-{HOST}-{_dead_pid()}"
    stale.mkdir(parents=True)
    with atomic_artifact(tmp_path / "stage" / "abc", {}) as tmp:
        (tmp / "f").write_bytes(b"1")
    assert not stale.exists() and verify_artifact(tmp_path / "stage" / "abc", "full") is None


# ------------------------------------------------------------- last.ckpt and resuming
class _Worsening(L.LightningModule):
    """A tiny regressor whose monitored metric gets worse at every validation, so the best
    checkpoint stays at the first one and only ``last.ckpt`` follows the run."""

    def __init__(self, monitor: str, mode: str):
        super().__init__()
        self.layer, self.monitor, self.sign = (
            torch.nn.Linear(4, 1),
            monitor,
            -1.0 if mode == "max" else 1.0,
        )

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log(self.monitor, self.sign * float(self.global_step))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader():
    data = torch.utils.data.TensorDataset(torch.randn(8, 4))
    return torch.utils.data.DataLoader(data, batch_size=4)


def test_last_checkpoint_is_written_at_every_validation_and_resumes(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=mlm"])
    module = _Worsening(cfg.task.monitor, cfg.task.monitor_mode)
    trainer = build_trainer(cfg, max_epochs=3, enable_progress_bar=False)
    trainer.fit(module, _loader(), _loader())
    ckpts = Path(cfg.paths.output_dir) / "checkpoints"
    assert (
        torch.load(ckpts / "best.ckpt", weights_only=True)["global_step"] == 2
    )  # the first validation
    assert (
        torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 6
    )  # the third, the latest
    assert best_callback(trainer).best_model_path == str(ckpts / "best.ckpt")
    resumed = build_trainer(cfg, max_epochs=4, enable_progress_bar=False)
    with open_dict(cfg):
        cfg.ckpt_path = "last"
    fit_safely(
        resumed,
        _Worsening(cfg.task.monitor, cfg.task.monitor_mode),
        resolve_ckpt(cfg),
        train_dataloaders=_loader(),
        val_dataloaders=_loader(),
    )
    assert resumed.global_step == 8 and resumed.current_epoch == 4
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 8


# -------------------------------------------------------------- the pickled UMAP reducer
def test_reducer_pickle_is_unpickled_only_when_its_hash_matches(tmp_path):
    from seisbert.tokenizer import Tokenizer, TokenizerConfig

    cfg = TokenizerConfig(method="umap_waveform", vocab_size=8)
    reducer = {"embedding": [1.0, 2.0, 3.0]}  # a stand-in object: save/load only pickle it
    Tokenizer(cfg, np.zeros((8, 2), np.float32), reducer).save(tmp_path / "tok")
    assert Tokenizer.load(tmp_path / "tok").reducer == reducer
    pkl = tmp_path / "tok" / "reducer.pkl"
    pkl.write_bytes(pkl.read_bytes().replace(b"embedding", b"embeddinG"))  # still valid pickle
    with pytest.raises(
        ValueError, match=r"reducer.pkl: its SHA-256 is not the one recorded.*refusing"
    ):
        Tokenizer.load(tmp_path / "tok")
