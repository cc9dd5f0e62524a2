"""Run a per-file job over many files on all cores, results in input order.

The job is a top-level function ``job(path, *args) -> (ok: bool, text)``; results come
back in the order of ``paths`` whatever the processes do, so parallel and serial runs
print byte-identical output.

Scheduling is by file, pulled: the files are numbered, and ``jobs - 1`` worker
processes and this process each take the next number whenever they are free (one
shared counter), so the work shares out evenly however the file sizes vary, and the
last file started is the only one anyone waits for.  This process also receives and
prints the results; it takes a file of its own only while the next result to print is
not in yet.  (A caller that keeps every result can ask for ``jobs`` workers instead,
this process only gathering: its memory then holds the results and none of the jobs'
own.)  A worker needs one of :data:`AHEAD` tickets to take a file and gets it back when
that file's result is printed, which bounds the results held in memory.  Workers
send results through a pipe each, which a thread of this process drains as they come,
so a worker never waits for this process to finish its own file.

The workers are forked (they inherit the job and the list: nothing is pickled on the
way in), and the counter, its lock and the tickets are an anonymous shared page and
two pipes, so a run costs no ``multiprocessing`` import.  Where ``os.fork`` does not
exist, everything runs in this process.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import Callable, Iterator

#: Below this many files a pool costs more than it saves.
MIN_FILES_FOR_POOL = 48
#: Files taken by workers but not printed yet, at most.
AHEAD = 48
#: Pipe buffer asked of Linux for each worker's results (a large module's listing is
#: about a megabyte; the kernel's default is 64 KiB).
PIPE_BYTES = 1 << 20

# Message kinds on a result pipe: [kind: 1 byte][index: 8][length: 4][payload].
_OK_BYTES, _ERR_TEXT, _OK_TEXT, _PICKLED, _DONE, _FAILED = range(6)
_HEAD = struct.Struct(">BqI")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class WorkerFailed(RuntimeError):
    """A worker process raised (the message carries its traceback) or died."""


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or None at end of file."""
    parts = []
    while n:
        chunk = os.read(fd, min(n, PIPE_BYTES))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _encode(index: int, result) -> bytes:
    """One result as a message: ``(True, bytes)``, ``(True, str)`` and ``(False, str)``
    -- what the commands' jobs return -- as they are, anything else pickled."""
    ok, value = result if type(result) is tuple and len(result) == 2 else (None, None)
    if ok is True and type(value) is bytes:
        kind, payload = _OK_BYTES, value
    elif ok is True and type(value) is str:
        kind, payload = _OK_TEXT, value.encode("utf-8", "surrogatepass")
    elif ok is False and type(value) is str:
        kind, payload = _ERR_TEXT, value.encode("utf-8", "surrogatepass")
    else:
        import pickle
        kind, payload = _PICKLED, pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(kind, index, len(payload)) + payload


def _control(kind: int, text: str = "") -> bytes:
    payload = text.encode("utf-8", "replace")
    return _HEAD.pack(kind, -1, len(payload)) + payload


def _decode(kind: int, payload: bytes):
    if kind == _OK_BYTES:
        return True, payload
    if kind == _OK_TEXT:
        return True, payload.decode("utf-8", "surrogatepass")
    if kind == _ERR_TEXT:
        return False, payload.decode("utf-8", "surrogatepass")
    import pickle
    return pickle.loads(payload)


class _Shared:
    """The claim counter (an anonymous shared page behind a one-token pipe lock) and
    the tickets (a pipe holding one byte per ticket)."""

    def __init__(self, n: int) -> None:
        import mmap
        self.n = n
        self.page = mmap.mmap(-1, 8)
        self.lock_r, self.lock_w = os.pipe()
        os.write(self.lock_w, b"L")
        self.tickets_r, self.tickets_w = os.pipe()
        os.write(self.tickets_w, b"T" * AHEAD)

    def claim(self) -> int | None:
        os.read(self.lock_r, 1)
        try:
            i = int.from_bytes(self.page[:8], "little")
            if i >= self.n:
                return None
            self.page[:8] = (i + 1).to_bytes(8, "little")
            return i
        finally:
            os.write(self.lock_w, b"L")

    def take_ticket(self) -> None:
        os.read(self.tickets_r, 1)

    def give_ticket(self) -> None:
        os.write(self.tickets_w, b"T")

    def close(self) -> None:
        for fd in (self.lock_r, self.lock_w, self.tickets_r, self.tickets_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.page.close()


def _worker(job, paths, args, shared: _Shared, out: int) -> None:
    """A forked worker: take a ticket, claim, run, send; never returns."""
    code = 0
    try:
        while True:
            shared.take_ticket()
            i = shared.claim()
            if i is None:
                break
            _write_all(out, _encode(i, job(paths[i], *args)))
        _write_all(out, _control(_DONE))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        code = 1
        try:
            import traceback
            _write_all(out, _control(_FAILED, "".join(traceback.format_exception(e)).rstrip()))
        except BaseException:  # noqa: BLE001 - the parent sees the pipe close
            pass
    finally:
        os._exit(code)


def _widen(fd: int) -> None:
    if sys.platform.startswith("linux"):
        import fcntl
        try:
            fcntl.fcntl(fd, 1031, PIPE_BYTES)  # F_SETPIPE_SZ
        except OSError:
            pass


def map_files(job: Callable, paths: list, args: tuple = (), jobs: int | None = None,
              min_files: int = MIN_FILES_FOR_POOL, here: bool = True) -> Iterator:
    """Yield ``job(path, *args)`` for each path, in order (see the module's text).

    With ``jobs`` <= 1, fewer than ``min_files`` paths, or no ``os.fork``, everything
    runs here, one file after another.  (A "path" may be any value ``job`` takes.)  An
    exception in a worker is raised here as :class:`WorkerFailed`; the workers are
    stopped when the iteration ends, however it ends.  With ``here`` false, a pool is
    ``jobs`` workers and this process only gathers their results (for jobs whose
    results this process keeps: its memory then holds those alone).
    """
    jobs = default_jobs() if jobs is None else jobs
    paths = list(paths)
    n = len(paths)
    jobs = min(jobs, n)
    if jobs <= 1 or n < min_files or not hasattr(os, "fork"):
        for p in paths:
            yield job(p, *args)
        return
    yield from _pooled(job, paths, args, jobs, here)


def _pooled(job, paths: list, args: tuple, jobs: int, here: bool = True) -> Iterator:
    import threading

    n = len(paths)
    shared = _Shared(n)
    results: dict[int, tuple] = {}  # index -> (result, from a worker)
    state = {"live": 0, "failure": None}
    arrived = threading.Condition()
    pids: list[int] = []
    ends: list[int] = []

    def drain(fd: int) -> None:
        try:
            while True:
                head = _read_exact(fd, _HEAD.size)
                if head is None:
                    raise EOFError
                kind, i, size = _HEAD.unpack(head)
                payload = _read_exact(fd, size) if size else b""
                if payload is None:
                    raise EOFError
                with arrived:
                    if kind == _DONE:
                        state["live"] -= 1
                    elif kind == _FAILED:
                        state["failure"] = payload.decode("utf-8", "replace")
                    else:
                        results[i] = (_decode(kind, payload), True)
                    arrived.notify()
                if kind == _DONE or kind == _FAILED:
                    return
        except (EOFError, OSError):
            with arrived:
                state["failure"] = state["failure"] or "a worker process died"
                arrived.notify()
        finally:
            os.close(fd)

    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(jobs - 1 if here else jobs):
            r, w = os.pipe()
            _widen(w)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; coverage does not follow it
                os.close(r)
                for fd in ends:
                    os.close(fd)
                _worker(job, paths, args, shared, w)
            os.close(w)
            pids.append(pid)
            ends.append(r)
        state["live"] = len(pids)
        # The threads start once every worker is forked.
        for fd in ends:
            threading.Thread(target=drain, args=(fd,), daemon=True).start()
        ends = []
        for k in range(n):
            while True:
                with arrived:
                    hit = results.pop(k, None)
                    failure = state["failure"]
                if hit is not None:
                    break
                if failure is not None:
                    raise WorkerFailed(failure)
                # The next result is not in: work on a file meanwhile, if one is left
                # within the window.
                i = shared.claim() if here and len(results) < AHEAD else None
                if i is not None:
                    r = job(paths[i], *args)
                    with arrived:
                        results[i] = (r, False)
                    continue
                with arrived:
                    arrived.wait_for(lambda: k in results or state["failure"] is not None
                                     or state["live"] == 0, timeout=1.0)
                    # Every file is claimed once the workers are done, and this
                    # process stores its own results at once: one missing is lost.
                    if k not in results and state["live"] == 0 and state["failure"] is None:
                        state["failure"] = f"no result for item {k}"
            result, from_worker = hit
            yield result
            if from_worker:
                shared.give_ticket()
    finally:
        import signal
        for fd in ends:
            os.close(fd)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        shared.close()
