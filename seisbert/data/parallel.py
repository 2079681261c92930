"""Chunks of work in worker processes, results in input order (so output is deterministic).

The ``waveforms`` source reads and preprocesses its events here when ``data.num_workers``
> 0: ObsPy decoding and SciPy filtering hold the GIL, so threads would not help. Workers
are forked where the platform allows (they inherit the file index without pickling it),
else spawned with the state pickled once per worker.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator

from tqdm.auto import tqdm

_STATE: dict = {}  # what the initializer gave this worker process


def _init(state: dict) -> None:
    _STATE.clear()
    _STATE.update(state)


def _call(fn: Callable, chunk):
    return fn(_STATE, chunk)


def map_chunks(
    fn: Callable,
    chunks: list,
    state: dict,
    num_workers: int,
    progress: bool = True,
    desc: str = "chunks",
) -> Iterator:
    """``fn(state, chunk)`` for every chunk, in ``num_workers`` processes (0: here), in order.

    A generator holding at most ``2 * num_workers`` results ahead of the caller, so a caller
    that streams each result to disk keeps memory at a few chunks whatever the count.
    """
    bar = tqdm(total=len(chunks), desc=desc, disable=not progress)
    if num_workers <= 0:
        for c in chunks:
            yield fn(state, c)
            bar.update()
        bar.close()
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        num_workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_init,
        initargs=(state,),
    ) as pool:
        ahead = deque()
        for c in chunks:
            ahead.append(pool.submit(_call, fn, c))
            if len(ahead) >= 2 * num_workers:
                yield ahead.popleft().result()
                bar.update()
        while ahead:
            yield ahead.popleft().result()
            bar.update()
    bar.close()
