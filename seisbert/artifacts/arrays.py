"""Arrays larger than memory: a ``.npy`` file written in row chunks, read back memory-mapped.

The records and features stages stream their output through ``NpyAppender`` so their peak
memory is one chunk, not the whole array plus a stacking copy (paper scale: 169,808 records
of 12,000 samples would be ~8 GB twice). The file is a plain ``.npy`` (format 1.0):
``np.load(path, mmap_mode="r")`` reads it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_MAGIC = b"\x93NUMPY\x01\x00"
_ALIGN = 64  # numpy aligns the data start to 64 bytes
_MAX_ROWS = 2**62  # the header is sized for this many rows, then rewritten with the real count


def _header(dtype: np.dtype, shape: tuple, length: int | None = None) -> bytes:
    """A format-1.0 header for ``shape``, space-padded to ``length`` bytes (or to alignment)."""
    text = repr(
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    body = text.encode("latin1")
    if length is None:
        length = -(-(len(_MAGIC) + 2 + len(body) + 1) // _ALIGN) * _ALIGN
    pad = length - len(_MAGIC) - 2 - len(body) - 1
    if pad < 0:
        raise ValueError(f"npy header for shape {shape} does not fit in {length} bytes")
    body += b" " * pad + b"\n"
    return _MAGIC + struct.pack("<H", len(body)) + body


class NpyAppender:
    """Append ``(n, *row_shape)`` chunks to ``path``; ``close()`` writes the final row count."""

    def __init__(self, path: str | Path, row_shape: tuple, dtype=np.float32):
        self.path, self.row_shape, self.dtype = (
            Path(path),
            tuple(int(s) for s in row_shape),
            np.dtype(dtype),
        )
        self.n = 0
        self._length = len(_header(self.dtype, (_MAX_ROWS, *self.row_shape)))
        self._file = open(self.path, "wb")
        self._file.write(_header(self.dtype, (_MAX_ROWS, *self.row_shape)))

    def append(self, rows) -> None:
        rows = np.asarray(rows)
        if rows.ndim == len(self.row_shape):  # one row
            rows = rows[None]
        if rows.shape[1:] != self.row_shape:
            raise ValueError(
                f"{self.path.name}: rows of shape {rows.shape[1:]}, expected {self.row_shape}"
            )
        self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.n += len(rows)

    def close(self) -> np.ndarray:
        """Finish the file and return it memory-mapped, read-only (in memory when empty:
        there is nothing to map)."""
        if not self._file.closed:
            self._file.seek(0)
            self._file.write(_header(self.dtype, (self.n, *self.row_shape), self._length))
            self._file.close()
        return np.load(self.path, mmap_mode="r" if self.n else None)

    def __enter__(self) -> "NpyAppender":
        return self

    def __exit__(self, *exc) -> None:
        if not self._file.closed:
            self._file.close()


def copy_rows(src: np.ndarray, keep: np.ndarray, path: str | Path, chunk: int = 4096) -> np.ndarray:
    """``src[keep]`` written to ``path`` chunk by chunk (``src`` may be a memmap); returns its
    memmap."""
    with NpyAppender(path, src.shape[1:], src.dtype) as out:
        idx = np.flatnonzero(keep)
        for i in range(0, len(idx), chunk):
            out.append(src[idx[i : i + chunk]])
        return out.close()


class RowSink:
    """Rows collected in memory (``path`` None) or streamed to a ``.npy`` file; ``array()``
    ends it."""

    def __init__(self, path: str | Path | None, row_shape: tuple, dtype=np.float32):
        self.row_shape, self.dtype = tuple(row_shape), np.dtype(dtype)
        self._file = None if path is None else NpyAppender(path, row_shape, dtype)
        self._rows: list = []

    def extend(self, rows: list) -> None:
        if self._file is None:
            self._rows += rows
        elif rows:
            self._file.append(np.stack(rows))

    def array(self) -> np.ndarray:
        if self._file is not None:
            return self._file.close()
        if not self._rows:
            return np.zeros((0, *self.row_shape), self.dtype)
        return np.stack(self._rows).astype(self.dtype, copy=False)
