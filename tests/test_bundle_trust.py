"""A bundle is data: it never chooses code to run, it verifies itself, and a classifier with
broken weights is refused before it classifies anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import trained
from safetensors.torch import load_file, save_file

from seisbert.bundle import CHECKSUM_KEY, HEADER_KEY, checksum, load_bundle, read_header


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained(str(tmp_path_factory.mktemp("trust_run")))


def _resign(src: Path, dst: Path, edit_info=None, edit_tensors=None) -> Path:
    """A crafted bundle with a valid checksum: what someone who edits the file can write."""
    tensors, info = load_file(str(src)), read_header(src)
    if edit_info:
        edit_info(info)
    if edit_tensors:
        edit_tensors(tensors)
    document = json.dumps(info)
    save_file(
        tensors,
        str(dst),
        metadata={HEADER_KEY: document, CHECKSUM_KEY: checksum(document, tensors)},
    )
    return dst


def _popen(marker: Path):
    def edit(info):
        info["module"] = "seisbert.train.job.subprocess.Popen"
        info["hyper_parameters"] = {"args": f"touch {marker}", "shell": True}

    return edit


def test_a_bundle_naming_popen_is_refused_with_nothing_run(run, tmp_path):
    marker = tmp_path / "ran"
    crafted = _resign(run["bundle"], tmp_path / "crafted.safetensors", _popen(marker))
    with pytest.raises(
        ValueError,
        match="module 'seisbert.train.job.subprocess.Popen' is not one of "
        r"seisbert's bundle modules \['classifier'\]",
    ):
        load_bundle(crafted)
    assert not marker.exists()


def test_the_seisbench_class_and_predict_refuse_it_too(run, tmp_path):
    pytest.importorskip("seisbench")
    from seisbert.inference.seisbench import SeisBertClassifier

    marker = tmp_path / "ran"
    crafted = _resign(run["bundle"], tmp_path / "crafted.safetensors", _popen(marker))
    with pytest.raises(ValueError, match="is not one of seisbert's bundle modules"):
        SeisBertClassifier(crafted)
    out = subprocess.run(
        [sys.executable, "predict.py", f"bundle={crafted}", f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=300,
    )
    assert out.returncode != 0
    assert "is not one of seisbert's bundle modules" in out.stderr + out.stdout
    assert not marker.exists()


def test_an_old_format_bundle_naming_a_dotted_class_is_refused(run, tmp_path):
    def edit(info):
        info.update(format=1, module_class="seisbert.train.job.subprocess.Popen")
        info.pop("module")

    with pytest.raises(ValueError, match=r"bundle format 1 \(this seisbert reads format 2\)"):
        load_bundle(_resign(run["bundle"], tmp_path / "old.safetensors", edit))


def _flip_bit(src: Path, dst: Path, offset: int, bit: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= 1 << bit
    dst.write_bytes(bytes(data))
    return dst


def test_one_flipped_bit_anywhere_in_a_bundle_is_refused(run, tmp_path):
    size = run["bundle"].stat().st_size
    header_end = 8 + int.from_bytes(run["bundle"].read_bytes()[:8], "little")
    rng = np.random.default_rng(0)
    offsets = [*rng.integers(8, header_end, 15), *rng.integers(header_end, size, 25), size - 1]
    for i, offset in enumerate(offsets):
        bad = _flip_bit(run["bundle"], tmp_path / f"bit{i}.safetensors", int(offset), i % 8)
        with pytest.raises(ValueError, match=f"bundle.*{bad.name}"):
            load_bundle(bad)


def test_a_flipped_weight_bit_is_named_as_a_checksum_failure(run, tmp_path):
    bad = _flip_bit(
        run["bundle"], tmp_path / "weight.safetensors", run["bundle"].stat().st_size - 3
    )
    with pytest.raises(ValueError, match="its SHA-256 checksum does not match its contents"):
        load_bundle(bad)


def test_nan_head_weights_with_a_valid_checksum_are_refused_by_the_probe(run, tmp_path):
    def poison(tensors):
        name = next(k for k in tensors if k.startswith("module.head.") and k.endswith("weight"))
        tensors[name] = torch.full_like(tensors[name], float("nan"))

    bundle = load_bundle(_resign(run["bundle"], tmp_path / "nan.safetensors", edit_tensors=poison))
    with pytest.raises(ValueError, match="gives non-finite outputs on a probe input"):
        bundle.module()


def test_a_sound_bundle_passes_its_probe_with_varied_outputs(run):
    from seisbert.bundle import probe_outputs

    bundle = load_bundle(run["bundle"])
    logits = probe_outputs(bundle.module(), bundle.centroids)
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    assert not np.allclose(logits[0], logits[1])  # the two probes differ, so do the logits


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t["tokenizer.centroids"].__setitem__((3, 0), float("nan")),
            "hold non-finite values",
        ),
        (
            lambda t: t.__setitem__("tokenizer.centroids", t["tokenizer.centroids"][:8].clone()),
            "number 8, but the header's tokenizer and encoder have K=16 and 16",
        ),
    ],
)
def test_broken_centroids_with_a_valid_checksum_are_refused(run, tmp_path, edit, message):
    crafted = _resign(run["bundle"], tmp_path / "c.safetensors", edit_tensors=edit)
    with pytest.raises(ValueError, match=f"its tokenizer centroids {message}"):
        load_bundle(crafted)


def test_a_bundle_is_known_by_its_bytes_not_its_name(run, tmp_path):
    from seisbert.bundle import is_bundle

    renamed = tmp_path / "b"
    renamed.write_bytes(run["bundle"].read_bytes())
    assert is_bundle(renamed) and not is_bundle(run["checkpoint"])
