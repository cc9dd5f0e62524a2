"""A supervisor's child ids read from the constant specs of its init/1 (maps and
six-tuples, in init/1 or a local function it calls), and the finding's severity:
warning when ids come or go, info when the specs change with the same ids or are
built at run time.  What the VM does with such a change is held by the
supervisor_children pair (tests/test_hotload_vm.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import beaminspect
from beaminspect.analysis.hotload import analyse
from beaminspect.analysis.supervisor import child_ids, init_reach

PAIR = Path(__file__).resolve().parent.parent / "samples" / "pairs" / "supervisor_children"

needs_erlc = pytest.mark.skipif(shutil.which("erlc") is None,
                                reason="erlc (Erlang/OTP) is not installed: the test "
                                "compiles supervisors")

HEAD = "-module(sup).\n-behaviour(supervisor).\n-export([init/1]).\n"


def _compile(tmp_path: Path, body: str, tag: str) -> beaminspect.BeamModule:
    d = tmp_path / tag
    d.mkdir()
    (d / "sup.erl").write_text(HEAD + body)
    subprocess.run(["erlc", "-o", str(d), str(d / "sup.erl")], check=True,
                   capture_output=True, timeout=120)
    return beaminspect.load(str(d / "sup.beam"))


def test_ids_of_the_sample_pair():
    v1 = beaminspect.load(str(PAIR / "v1" / "hl_supervisor_children.beam"))
    v2 = beaminspect.load(str(PAIR / "v2" / "hl_supervisor_children.beam"))
    assert child_ids(v1) == {"a", "c"} and child_ids(v2) == {"a", "b"}
    f = [x for x in analyse(v1, v2).findings if x.kind == "supervisor_children_changed"]
    assert len(f) == 1 and f[0].severity == "warning"
    assert "added b; removed c" in f[0].message


@needs_erlc
def test_tuple_specs_in_a_helper(tmp_path):
    spec = ("init([]) -> {{ok, {{{{one_for_one, 1, 5}}, children()}}}}.\n"
            "children() -> [{{{id}, {{gen_event, start_link, []}}, permanent, 5000, "
            "worker, dynamic}}].\n")
    old = _compile(tmp_path, spec.format(id="'db.pool'"), "old")
    new = _compile(tmp_path, spec.format(id="cache"), "new")
    assert init_reach(old) == {"init/1", "children/0"}
    assert child_ids(old) == {"'db.pool'"} and child_ids(new) == {"cache"}
    f = [x for x in analyse(old, new).findings if x.kind == "supervisor_children_changed"]
    assert [x.severity for x in f] == ["warning"]
    assert "added cache; removed 'db.pool'" in f[0].message


@needs_erlc
def test_same_ids_or_specs_built_at_run_time_are_info(tmp_path):
    same = ("init(N) -> {{ok, {{#{{intensity => {n}}}, [#{{id => a, start => "
            "{{gen_event, start_link, []}}}}]}}}}.\n")
    a, b = _compile(tmp_path, same.format(n=1), "a"), _compile(tmp_path, same.format(n=2), "b")
    f = [x for x in analyse(a, b).findings if x.kind == "supervisor_children_changed"]
    assert [x.severity for x in f] == ["info"] and "the same child ids" in f[0].message
    built = ("init(Ids) -> {{ok, {{#{{}}, [#{{id => I, start => {{gen_event, start_link, "
             "[]}}, restart => {r}}} || I <- Ids]}}}}.\n")
    c = _compile(tmp_path, built.format(r="permanent"), "c")
    d = _compile(tmp_path, built.format(r="transient"), "d")
    assert child_ids(c) is None
    f = [x for x in analyse(c, d).findings if x.kind == "supervisor_children_changed"]
    assert [x.severity for x in f] == ["info"] and "built at run time" in f[0].message


@needs_erlc
def test_nothing_when_init_does_not_change(tmp_path):
    body = ("-export([other/0]).\n"
            "init([]) -> {ok, {#{}, [#{id => a, start => {gen_event, start_link, []}}]}}.\n"
            "other() -> {}.\n")
    a = _compile(tmp_path, body, "a")
    b = _compile(tmp_path, body.replace("other() -> {}", "other() -> {x}"), "b")
    assert not [x for x in analyse(a, b).findings if x.kind == "supervisor_children_changed"]
