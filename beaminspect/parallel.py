"""Run a per-file job over many files on all cores, results in input order.

The job is a top-level function ``job(path, *args) -> (ok: bool, text)``; results come
back in the order of ``paths`` whatever the processes do, so parallel and serial runs
print byte-identical output.

Scheduling is by file, pulled: the files are numbered, and ``jobs - 1`` worker
processes and this process each take the next number whenever they are free (one
shared counter), so the work shares out evenly however the file sizes vary, and the
last file started is the only one anyone waits for.  This process also receives and
prints the results; it takes a file of its own only while the next result to print is
not in yet.  A claim needs one of :data:`AHEAD` tickets and printing a result gives
its ticket back, which bounds the results held in memory.  Workers send results
through a pipe that a thread of this process drains as they come, so a worker never
waits for this process to finish its own file.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Iterator

#: Below this many files a pool costs more than it saves.
MIN_FILES_FOR_POOL = 48
#: Files claimed but not printed yet, at most (all processes together).
AHEAD = 48
#: Pipe buffer asked of Linux for each worker's results (a large module's listing is
#: about a megabyte; the kernel's default is 64 KiB).
PIPE_BYTES = 1 << 20

_DONE = "done"
_FAILED = "failed"


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _claim(counter, n: int) -> int | None:
    with counter.get_lock():
        i = counter.value
        if i >= n:
            return None
        counter.value = i + 1
        return i


def _worker(job, paths, args, counter, tickets, conn) -> None:
    """A worker process: claim, run, send ``(index, result)``; then ``(_DONE, None)``."""
    try:
        n = len(paths)
        while True:
            tickets.acquire()
            i = _claim(counter, n)
            if i is None:
                tickets.release()
                break
            conn.send((i, job(paths[i], *args)))
        conn.send((_DONE, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        import traceback
        try:
            conn.send((_FAILED, "".join(traceback.format_exception(e)).rstrip()))
        except Exception:  # noqa: BLE001 - the parent sees the pipe close
            pass
    finally:
        conn.close()


def _widen(fd: int) -> None:
    if sys.platform.startswith("linux"):
        import fcntl
        try:
            fcntl.fcntl(fd, 1031, PIPE_BYTES)  # F_SETPIPE_SZ
        except OSError:
            pass


class WorkerFailed(RuntimeError):
    """A worker process raised (the message carries its traceback) or died."""


def map_files(job: Callable, paths: list, args: tuple = (), jobs: int | None = None,
              min_files: int = MIN_FILES_FOR_POOL) -> Iterator:
    """Yield ``job(path, *args)`` for each path, in order (see the module's text).

    With ``jobs`` <= 1 or fewer than ``min_files`` paths, everything runs here, one
    file after another.  (A "path" may be any value ``job`` takes: workers are forked
    with the list, so nothing is pickled on the way in.)  An exception in a worker is
    raised here as :class:`WorkerFailed`; the workers are stopped when the iteration
    ends, however it ends.
    """
    jobs = default_jobs() if jobs is None else jobs
    paths = list(paths)
    n = len(paths)
    jobs = min(jobs, n)
    if jobs <= 1 or n < min_files:
        for p in paths:
            yield job(p, *args)
        return
    import multiprocessing as mp

    counter = mp.Value("l", 0)
    tickets = mp.BoundedSemaphore(AHEAD)
    results: dict[int, object] = {}
    state = {"live": jobs - 1, "failure": None}
    arrived = threading.Condition()
    procs = []

    def drain(conn) -> None:
        try:
            while True:
                i, r = conn.recv()
                with arrived:
                    if i == _DONE:
                        state["live"] -= 1
                    elif i == _FAILED:
                        state["failure"] = r
                    else:
                        results[i] = r
                    arrived.notify()
                if i == _DONE or i == _FAILED:
                    return
        except (EOFError, OSError):
            with arrived:
                state["failure"] = state["failure"] or "a worker process died"
                arrived.notify()
        finally:
            conn.close()

    try:
        ends = []
        for _ in range(jobs - 1):
            recv_end, send_end = mp.Pipe(duplex=False)
            _widen(send_end.fileno())
            p = mp.Process(target=_worker, args=(job, paths, args, counter, tickets, send_end),
                           daemon=True)
            p.start()
            send_end.close()
            procs.append(p)
            ends.append(recv_end)
        # The threads start once every worker is forked.
        for recv_end in ends:
            threading.Thread(target=drain, args=(recv_end,), daemon=True).start()
        for k in range(n):
            while True:
                with arrived:
                    r = results.pop(k, arrived)
                    failure = state["failure"]
                if r is not arrived:
                    break
                if failure is not None:
                    raise WorkerFailed(failure)
                # The next result is not in: work on a file meanwhile, if one is left.
                if tickets.acquire(block=False):
                    i = _claim(counter, n)
                    if i is not None:
                        r = job(paths[i], *args)
                        with arrived:
                            results[i] = r
                        continue
                    tickets.release()
                with arrived:
                    arrived.wait_for(lambda: k in results or state["failure"] is not None
                                     or state["live"] == 0, timeout=1.0)
                    if k not in results and state["live"] == 0 and state["failure"] is None:
                        state["failure"] = f"no result for {paths[k]}"
            yield r
            tickets.release()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()
