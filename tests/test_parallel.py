"""The file pool: order, errors in workers, the window of results held, clean stops."""

from __future__ import annotations

import os

import pytest

from beaminspect import parallel
from beaminspect.parallel import WorkerFailed, map_files


def echo(path: str, suffix: str = ""):
    """A job: the path and the process that ran it."""
    return True, (path + suffix, os.getpid())


def fail_on(path: str, bad: str):
    if path == bad:
        raise ValueError(f"cannot do {path}")
    return True, path


def die_on(path: str, bad: str):
    if path == bad and os.getpid() != PARENT:
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
def test_results_come_in_input_order(jobs):
    got = list(map_files(echo, PATHS, ("!",), jobs))
    assert [r[1][0] for r in got] == [p + "!" for p in PATHS]
    pids = {r[1][1] for r in got}
    if jobs == 1:
        assert pids == {os.getpid()}
    else:
        # Workers took part: some results come from other processes.
        assert pids - {os.getpid()}


def test_out_of_order_completion_is_reordered():
    got = [r[1] for r in map_files(slow_first, PATHS, (), 2)]
    assert got == PATHS


def test_few_files_run_here():
    got = list(map_files(echo, PATHS[:parallel.MIN_FILES_FOR_POOL - 1], (), 2))
    assert {r[1][1] for r in got} == {os.getpid()}


def test_an_exception_in_a_job_reaches_the_caller():
    # Whichever process runs the bad file, the caller sees the error.
    with pytest.raises((WorkerFailed, ValueError), match="cannot do f77"):
        list(map_files(fail_on, PATHS, ("f77",), 2))


def test_a_dead_worker_is_reported_not_waited_for():
    bad = "f150"
    try:
        got = [r[1] for r in map_files(die_on, PATHS, (bad,), 2)]
    except WorkerFailed as e:
        assert "died" in str(e) or "no result" in str(e)
    else:
        # This process happened to take the file itself.
        assert got == PATHS


def test_stopping_early_stops_the_workers():
    import multiprocessing
    before = set(multiprocessing.active_children())
    it = map_files(echo, PATHS, (), 2)
    assert next(it)[1][0] == "f0"
    it.close()
    assert set(multiprocessing.active_children()) == before


STARTED = None


def counted(path: str):
    with STARTED.get_lock():
        STARTED.value += 1
    return True, path


def test_results_held_stay_within_the_window(monkeypatch):
    """While the caller dawdles over result k, no more than AHEAD files past the
    results already printed are started."""
    import multiprocessing
    import time
    global STARTED
    STARTED = multiprocessing.Value("l", 0)
    monkeypatch.setattr(parallel, "AHEAD", 4)
    peak_lead = 0
    for k, r in enumerate(map_files(counted, PATHS, (), 2)):
        assert r[1] == PATHS[k]
        if k % 40 == 0:
            time.sleep(0.2)  # the workers run ahead as far as they may
            lead = STARTED.value - k
            peak_lead = max(peak_lead, lead)
            assert lead <= 4, (k, STARTED.value)
    assert peak_lead == 4  # and they did run ahead that far
