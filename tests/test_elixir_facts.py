"""Elixir's debug info read as facts about the module, on the samples each Elixir
release built (1.14 with OTP 25, 1.18 with OTP 27, 1.20 with OTP 29)."""

from __future__ import annotations

from pathlib import Path

import pytest

import beaminspect
from beaminspect.analysis.elixir import elixir_facts

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
BUILDS = {"elixir-1.14": SAMPLES / "elixir", "elixir-1.18": SAMPLES / "otp27" / "elixir",
          "elixir-1.20": SAMPLES / "otp29" / "elixir"}


@pytest.fixture(params=sorted(BUILDS), ids=str)
def build(request) -> Path:
    return BUILDS[request.param]


def test_genserver_callbacks_written_and_injected(build):
    f = elixir_facts(beaminspect.load(build / "Elixir.BeamInspect.Sample.Counter.beam"))
    assert f is not None and f.module == "Elixir.BeamInspect.Sample.Counter"
    assert f.behaviours == ("Elixir.GenServer",)
    assert f.otp_behaviours == {"gen_server"}
    for mfa in ("init/1", "handle_cast/2", "handle_call/3", "start_link/1", "bump/2"):
        assert f.written(mfa), mfa
    for mfa in ("code_change/3", "handle_info/2", "terminate/2", "child_spec/1"):
        d = f.definition(mfa)
        assert d is not None and d.injected_by == "Elixir.GenServer", mfa
        assert not f.written(mfa)
    # The head that a default argument generates is the author's, not a use's.
    assert f.written("start_link/0")
    assert f.struct is None


def test_struct_fields_and_defaults(build):
    f = elixir_facts(beaminspect.load(build / "Elixir.BeamInspect.Sample.Shape.beam"))
    assert f is not None
    assert [(s.name, s.default, s.required) for s in f.struct] == \
        [("kind", "square", False), ("size", 1.0, False)]
    assert f.definition("area/1").clauses == 2
    assert f.definition("__struct__/1").injected_by == "Elixir.Kernel"
    assert f.otp_behaviours == frozenset()


def test_erlang_modules_have_no_elixir_facts():
    assert elixir_facts(beaminspect.load(SAMPLES / "ebin" / "bi_server.beam")) is None


def test_debug_info_backend_read_from_the_head_matches_the_whole_chunk():
    """The backend read from the first bytes of ``Dbgi`` (what keeps Erlang modules'
    abstract code from being decoded in the Elixir analysis) is the one the decoded
    chunk names, on every bundled sample and on the host's OTP and Elixir beams."""
    from corpus import all_beams
    seen = set()
    for path in all_beams()[::3]:
        m = beaminspect.load(path)
        dbgi = m.debug_info
        whole = str(dbgi[1]) if isinstance(dbgi, tuple) and len(dbgi) == 3 \
            and dbgi[0] == "debug_info_v1" else None
        assert m.debug_info_backend == whole, path
        seen.add(whole)
    assert {"erl_abstract_code", "elixir_erl"} <= seen or not any(
        "/elixir/" in p for p in all_beams())
