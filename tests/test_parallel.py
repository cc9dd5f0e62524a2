"""The file pool: order, errors in workers, the window of results held, clean stops."""

from __future__ import annotations

import os

import pytest

from beaminspect import parallel
from beaminspect.parallel import WorkerFailed, map_files


#: Generous watchdog for waits on other processes: only a hang reaches it.
HANG_SECONDS = 60

#: Set by the first job a worker process runs (created before map_files forks).
WORKER_RAN = None


def _worker_ran() -> bool:
    """In a worker: say so and return True.  Here: wait until a worker has run a job
    (the pool must hand work to its workers, however fast this process is), return False."""
    if os.getpid() != PARENT:
        WORKER_RAN.set()
        return True
    assert WORKER_RAN.wait(HANG_SECONDS), "no worker ran a job"
    return False


@pytest.fixture
def worker_ran():
    import multiprocessing
    global WORKER_RAN
    WORKER_RAN = multiprocessing.Event()
    yield WORKER_RAN
    WORKER_RAN = None


def echo(path: str, suffix: str = ""):
    """A job: the path and the process that ran it."""
    return True, (path + suffix, os.getpid())


def echo_waiting(path: str, suffix: str = ""):
    """:func:`echo`, but this process runs nothing before a worker has run a job."""
    _worker_ran()
    return echo(path, suffix)


def fail_on(path: str, bad: str):
    if path == bad:
        raise ValueError(f"cannot do {path}")
    return True, path


def die_in_worker(path: str):
    """Kills any worker process that takes a file (this process works normally, once a
    worker has taken one)."""
    if _worker_ran():
        os._exit(3)
    return True, path


def slow_first(path: str):
    """The first files are slow, so that later ones finish first."""
    if path in ("f0", "f1", "f2"):
        import time
        time.sleep(0.3)
    return True, path


PARENT = os.getpid()
PATHS = [f"f{i}" for i in range(200)]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_results_come_in_input_order(jobs, worker_ran):
    got = list(map_files(echo if jobs == 1 else echo_waiting, PATHS, ("!",), jobs))
    assert [r[1][0] for r in got] == [p + "!" for p in PATHS]
    pids = {r[1][1] for r in got}
    if jobs == 1:
        assert pids == {os.getpid()}
    else:
        # Workers took part: some results come from other processes.
        assert pids - {os.getpid()}


@pytest.mark.parametrize("jobs", [2, 3])
def test_a_gathering_pool_runs_every_job_in_a_worker(jobs):
    """``here=False``: ``jobs`` workers do all the work, this process none of it."""
    got = list(map_files(echo, PATHS, ("!",), jobs, here=False))
    assert [r[1][0] for r in got] == [p + "!" for p in PATHS]
    pids = {r[1][1] for r in got}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= jobs


def test_out_of_order_completion_is_reordered():
    got = [r[1] for r in map_files(slow_first, PATHS, (), 2)]
    assert got == PATHS


def test_few_files_run_here():
    got = list(map_files(echo, PATHS[:parallel.MIN_FILES_FOR_POOL - 1], (), 2))
    assert {r[1][1] for r in got} == {os.getpid()}


def test_an_exception_in_a_job_reaches_the_caller():
    # Whichever process runs the bad file, the caller sees the error (from a worker,
    # with the worker's traceback).
    with pytest.raises((WorkerFailed, ValueError), match="cannot do f77"):
        list(map_files(fail_on, PATHS, ("f77",), 2))


def raise_in_worker(path: str):
    if _worker_ran():
        raise ValueError(f"worker cannot do {path}")
    return True, path


def test_a_worker_exception_carries_its_traceback(worker_ran):
    with pytest.raises(WorkerFailed, match=r"(?s)Traceback.*ValueError: worker cannot do f"):
        list(map_files(raise_in_worker, PATHS, (), 2))


def pickled(path: str):
    return {"path": path, "n": len(path)}


def test_results_of_any_kind_come_back():
    got = list(map_files(pickled, PATHS, (), 2))
    assert got == [{"path": p, "n": len(p)} for p in PATHS]
    got = list(map_files(echo_text, PATHS, (), 2))
    assert got == [(p.endswith("7"), f"{p} \u00e9\U0001F600") for p in PATHS]


def echo_text(path: str):
    return path.endswith("7"), f"{path} \u00e9\U0001F600"


def test_a_dead_worker_is_reported_not_waited_for(worker_ran):
    with pytest.raises(WorkerFailed, match="a worker process died"):
        list(map_files(die_in_worker, PATHS, (), 2))
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_stopping_early_stops_the_workers():
    it = map_files(echo, PATHS, (), 3)
    assert next(it)[1][0] == "f0"
    it.close()
    # Every worker was stopped and reaped: this process has no child left.
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


STARTED = None


def counted(path: str):
    with STARTED.get_lock():
        STARTED.value += 1
    return True, path


def test_results_held_stay_within_the_window(monkeypatch):
    """While the caller dawdles over result k, the workers start no more than AHEAD
    files past the results printed (and this process, which takes files only while it
    waits, at most as many again)."""
    import multiprocessing
    import time
    global STARTED
    STARTED = multiprocessing.Value("l", 0)
    monkeypatch.setattr(parallel, "AHEAD", 4)
    for k, r in enumerate(map_files(counted, PATHS, (), 2)):
        assert r[1] == PATHS[k]
        if k % 40 == 0:
            # Dawdle: the workers run ahead as far as they may.  Wait until they are
            # AHEAD files ahead (the deadline only catches a pool that never gets there),
            # then a little more, and check they went no further.
            deadline = time.monotonic() + HANG_SECONDS
            while STARTED.value - k < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert STARTED.value - k >= 4, (k, STARTED.value)
            time.sleep(0.05)
            assert STARTED.value - k <= 2 * 4, (k, STARTED.value)
