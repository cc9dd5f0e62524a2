"""Run a per-file job over many files on all cores, results in input order.

The job is a top-level function ``job(path, *args) -> (ok: bool, text: str)``; results
come back in the order of ``paths`` whatever the pool does, so parallel and serial
runs print byte-identical output.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator

#: Below this many files a pool costs more than it saves.
MIN_FILES_FOR_POOL = 48
#: Slices per process: enough to even out files of different sizes.
SLICES_PER_PROCESS = 8


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _run_chunk(job, paths, args):
    return [job(p, *args) for p in paths]


def map_files(job: Callable, paths: list[str], args: tuple = (), jobs: int | None = None
              ) -> Iterator[tuple[bool, str]]:
    """Yield ``job(path, *args)`` for each path, in order.

    With ``jobs`` > 1 (and enough files), ``jobs - 1`` worker processes take every other
    slice of the list and this process works through the rest itself while they run:
    it has to receive and print all the results anyway, so a worker of its own would
    only compete with it for a core.
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or len(paths) < MIN_FILES_FOR_POOL:
        for p in paths:
            yield job(p, *args)
        return
    from concurrent.futures import ProcessPoolExecutor

    # Contiguous slices keep the per-task overhead low; several slices per process keep
    # every core busy when file sizes vary.
    n = max(1, len(paths) // (jobs * SLICES_PER_PROCESS))
    slices = [paths[i:i + n] for i in range(0, len(paths), n)]
    # Slice k goes to this process when k % jobs == 0, to the pool otherwise.  Only a
    # window of pool slices is in flight at once, so finished results waiting to be
    # printed never hold more than a few slices' output in memory.
    pooled = [k for k in range(len(slices)) if k % jobs]
    window = 2 * (jobs - 1)
    with ProcessPoolExecutor(max_workers=jobs - 1) as pool:
        futures = {}
        queue = iter(pooled)

        def refill():
            while len(futures) < window:
                k = next(queue, None)
                if k is None:
                    return
                futures[k] = pool.submit(_run_chunk, job, slices[k], args)

        refill()
        for k, s in enumerate(slices):
            if k % jobs:
                results = futures.pop(k).result()
                refill()
                yield from results
            else:
                for p in s:
                    yield job(p, *args)


def chunked(it: Iterable, n: int):
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
