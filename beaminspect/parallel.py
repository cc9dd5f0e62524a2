"""Run a per-file job over many files on all cores, results in input order.

The job is a top-level function ``job(path, *args) -> (ok: bool, text: str)``; results
come back in the order of ``paths`` whatever the pool does, so parallel and serial
runs print byte-identical output.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

#: Below this many files a pool costs more than it saves.
MIN_FILES_FOR_POOL = 48
#: Files per slice handed to a worker: small enough that the slices share out evenly
#: between the processes whatever the file sizes, large enough that a slice's round
#: trip to a worker costs little next to its work.
SLICE_FILES = 12
#: Slices computed or in flight ahead of the one being printed, per process (bounds the
#: results waiting in memory).
AHEAD_PER_PROCESS = 3


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

    With ``jobs`` > 1 (and enough files), the list is cut into small slices handed out
    in order: ``jobs - 1`` worker processes keep a few slices each in flight, and this
    process, whenever the next slice to print is not ready yet, takes the next slice
    not handed out yet and works through it itself (it has to receive and print all
    the results anyway, so a worker of its own would only compete with it for a core).
    Taking slices as each process becomes free, rather than every ``jobs``-th one,
    keeps both busy however the file sizes vary.  At most a few slices per process are
    handed out ahead of the one being printed, which bounds the results held in memory.
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or len(paths) < MIN_FILES_FOR_POOL:
        for p in paths:
            yield job(p, *args)
        return
    from concurrent.futures import ProcessPoolExecutor

    n = max(1, min(SLICE_FILES, len(paths) // (4 * jobs)))
    slices = [paths[i:i + n] for i in range(0, len(paths), n)]
    total = len(slices)
    in_flight = 2 * (jobs - 1)
    ahead = AHEAD_PER_PROCESS * jobs
    with ProcessPoolExecutor(max_workers=jobs - 1) as pool:
        done: dict[int, object] = {}  # slice -> its results (list) or a future
        pooled = 0  # futures not printed yet
        handed = 0  # slices handed out (to the pool or to this process)
        for k in range(total):
            while True:
                while pooled < in_flight and handed < total and handed - k < ahead:
                    done[handed] = pool.submit(_run_chunk, job, slices[handed], args)
                    handed += 1
                    pooled += 1
                r = done[k] if k < handed else None
                if r is None or (type(r) is not list and not r.done()):
                    if handed < total and handed - k < ahead:
                        done[handed] = [job(p, *args) for p in slices[handed]]
                        handed += 1
                        continue
                break
            r = done.pop(k)
            if type(r) is not list:
                pooled -= 1
                r = r.result()
            yield from r
