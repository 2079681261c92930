"""Streamed .npy files: what is appended in chunks reads back as one array, memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from seisbert.artifacts.arrays import NpyAppender, RowSink, copy_rows


def test_chunks_appended_read_back_as_the_concatenated_array(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(n, 3, 7)).astype(np.float32) for n in (5, 1, 12, 0, 3)]
    with NpyAppender(tmp_path / "a.npy", (3, 7)) as out:
        for c in chunks:
            out.append(c)
        got = out.close()
    assert isinstance(got, np.memmap) and got.shape == (21, 3, 7)
    np.testing.assert_array_equal(got, np.concatenate(chunks))
    np.testing.assert_array_equal(
        np.load(tmp_path / "a.npy"), np.concatenate(chunks)
    )  # a plain .npy
    with pytest.raises(ValueError, match=r"rows of shape \(3, 6\), expected \(3, 7\)"):
        NpyAppender(tmp_path / "b.npy", (3, 7)).append(np.zeros((2, 3, 6)))


def test_an_empty_stream_is_an_empty_array_and_a_single_row_is_one_row(tmp_path):
    empty = NpyAppender(tmp_path / "e.npy", (4,), np.int16).close()
    assert empty.shape == (0, 4) and empty.dtype == np.int16
    one = NpyAppender(tmp_path / "o.npy", (4,))
    one.append(np.arange(4))
    np.testing.assert_array_equal(one.close(), [[0, 1, 2, 3]])


def test_copy_rows_is_fancy_indexing_in_chunks(tmp_path):
    src = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5 * 6, 2)
    keep = np.arange(30) % 4 != 1
    np.testing.assert_array_equal(copy_rows(src, keep, tmp_path / "k.npy", chunk=4), src[keep])


def test_a_row_sink_gives_the_same_array_in_memory_or_streamed(tmp_path):
    rows = [np.full((1, 3), i, np.float32) for i in range(7)]
    memory, disk = RowSink(None, (1, 3)), RowSink(tmp_path / "s.npy", (1, 3))
    for sink in (memory, disk):
        sink.extend(rows[:3])
        sink.extend([])
        sink.extend(rows[3:])
    np.testing.assert_array_equal(memory.array(), disk.array())
    assert RowSink(None, (1, 3)).array().shape == (0, 1, 3)
