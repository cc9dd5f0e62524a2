"""Predictions of `beaminspect diff` against what the running VM does.

For every pair under samples/pairs/, the harness (tests/vm/hotload.escript) loads v1,
starts the scenario's processes and funs, loads v2, purges, and reports what happened.
The test asserts, both ways, that the static prediction matches: every predicted kill,
badfun and undef happens, and nothing the VM did went unpredicted; every break the VM
showed has a finding at warning or above, and no such finding is about something the
scenario ran without breaking (tests/vm/verdicts.py judges each finding).  It runs on every
release tests/otp.py can start: OTP 25 on the host, OTP 27 and 29 in their roots (the
pairs' beams, built by OTP 25's compiler, load on all three).  The Elixir pairs are also
compiled anew by each root's own Elixir (1.18 with OTP 27, 1.20 with OTP 29) and judged
on that release's VM: what `use GenServer` injects and how structs compile differ
between Elixir releases.
"""

import functools
import os

import pytest

import beaminspect
from beaminspect.analysis.hotload import analyse
from beaminspect.analysis.waits import WaitIndex
from otp import needs_erl, require_otp
from vm.observe import compile_elixir_pairs, elixir_pair_names, observe, pair_beams, pair_names
from vm.verdicts import judge

pytestmark = [needs_erl, pytest.mark.otp]

PAIRS = pair_names()
RELEASES = (25, 27, 29)


@functools.lru_cache(maxsize=None)
def release_code(release: int) -> WaitIndex:
    """Which calls block, read from the release's own OTP and Elixir code."""
    rel = require_otp(release)
    return WaitIndex.from_code_path(rel.code_path)


def compare(name: str, release: int = 25, beams=None):
    v1, v2 = beams or pair_beams(name)
    old, new = beaminspect.load(v1), beaminspect.load(v2)
    report = analyse(old, new, waits=release_code(release))
    records = observe(v1, v2, release=require_otp(release))
    return report, judge(report, old, records, new)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
@pytest.mark.parametrize("name", PAIRS)
def test_prediction_matches_the_vm(name, release):
    assert_agrees(name, *compare(name, release))


@pytest.fixture(scope="module")
def elixir_builds(tmp_path_factory):
    """Per release: the Elixir pairs compiled by that release's own Elixir."""
    cache = {}

    def build(release: int):
        if release not in cache:
            rel = require_otp(release)
            if not os.path.exists(os.path.join(rel.root, "usr/bin/elixir")):
                pytest.skip(f"OTP {release}'s root has no Elixir")
            cache[release] = compile_elixir_pairs(rel, tmp_path_factory.mktemp(f"ex{release}"))
        return cache[release]
    return build


@pytest.mark.parametrize("release", (27, 29), ids=lambda r: f"otp{r}")
@pytest.mark.parametrize("name", elixir_pair_names())
def test_elixir_pairs_built_by_the_releases_elixir(name, release, elixir_builds):
    beams = elixir_builds(release)[name]
    committed = beaminspect.load(pair_beams(name)[0]).compiler_version
    assert beaminspect.load(beams[0]).compiler_version != committed, \
        "the beam must come from the release's own compiler"
    assert_agrees(name, *compare(name, release, beams))


def assert_agrees(name, report, j):
    assert j.rows, f"{name}: the scenario observed nothing"
    wrong = [r for r in j.rows if r[2] != r[3]]
    assert not wrong, f"{name}: (what, label, predicted, observed) disagree: {wrong}"
    # Both ways for the findings too: a warning or an error about something the
    # scenario ran and the VM did not break is as wrong as a missed break.
    refuted = [(f.severity, f.kind, f.function) for f, v in j.findings if v == "refuted"]
    assert not refuted, f"{name}: findings the VM did not confirm: {refuted}"
    missed = [b for b in j.breaks if not b[2]]
    assert not missed, f"{name}: breaks no warning or error foretold: {missed}"
    if not j.load_ok:
        # The VM refused v2 (its on_load failed): the report must have warned about on_load.
        assert any(f.kind == "on_load_changed" for f in report.findings), name


def test_every_finding_kind_about_processes_is_exercised():
    kinds = set()
    for name in PAIRS:
        v1, v2 = pair_beams(name)
        kinds |= {f.kind for f in analyse(beaminspect.load(v1), beaminspect.load(v2)).findings}
    for k in ("purge_kills_local_loop", "purge_kills_idle_external_loop",
              "purge_kills_blocked_call", "fun_invalidated", "export_removed",
              "state_change_without_code_change", "record_changed_outside_state",
              "supervisor_children_changed"):
        assert k in kinds, k
