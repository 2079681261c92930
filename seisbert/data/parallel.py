"""Chunks of work in worker processes, results in input order (so output is deterministic).

The ``waveforms`` source reads and preprocesses its events here when ``data.num_workers``
> 0: ObsPy decoding and SciPy filtering hold the GIL, so threads would not help. Workers
are forked where the platform allows (they inherit the file index without pickling it),
else spawned with the state pickled once per worker.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable

from tqdm.auto import tqdm

_STATE: dict = {}  # what the initializer gave this worker process


def _init(state: dict) -> None:
    _STATE.clear()
    _STATE.update(state)


def _call(fn: Callable, chunk):
    return fn(_STATE, chunk)


def map_chunks(fn: Callable, chunks: list, state: dict, num_workers: int,
               progress: bool = True, desc: str = "chunks") -> Iterable:
    """``fn(state, chunk)`` for every chunk, in ``num_workers`` processes (0: here), in order."""
    if num_workers <= 0:
        return [fn(state, c) for c in tqdm(chunks, desc=desc, disable=not progress)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context(method),
                             initializer=_init, initargs=(state,)) as pool:
        futures = [pool.submit(_call, fn, c) for c in chunks]
        return [f.result() for f in tqdm(futures, desc=desc, disable=not progress)]
