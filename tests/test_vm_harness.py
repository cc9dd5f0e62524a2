"""The hot-load harness against a real VM: every pair under samples/pairs must
behave as its EXPECTED file says.

The harness runs one escript per pair (about half a second each); the pairs
run concurrently once per session and the results are shared.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from vm.observe import (  # noqa: E402
    HARNESS,
    PAIRS,
    REPO,
    HarnessError,
    Outcome,
    mismatches,
    observe,
    observe_pair,
    pair_beams,
    pair_names,
    parse_expected,
    summarize,
)

NO_ESCRIPT = shutil.which("escript") is None

PAIR_NAMES = pair_names()


@pytest.fixture(scope="session")
def observations() -> dict[str, list[dict] | HarnessError]:
    def run(name):
        try:
            return observe_pair(name)
        except HarnessError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(PAIR_NAMES, pool.map(run, PAIR_NAMES)))


# --- the committed pairs (no VM needed) -------------------------------------


def test_pairs_present():
    assert len(PAIR_NAMES) >= 15


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_pair_layout(name):
    v1, v2 = pair_beams(name)
    assert v1.stem == v2.stem, "v1 and v2 must define the same module"
    for side in ("v1", "v2"):
        sources = list((PAIRS / name / side).glob("*.erl")) + list((PAIRS / name / side).glob("*.ex"))
        assert len(sources) == 1, f"{name}/{side}: one .erl or .ex source"
    expected = parse_expected(PAIRS / name / "EXPECTED")
    assert [o.kind for o in expected[:4]] == ["load", "md5", "vsn", "purge"]
    assert all(o.kind in {"proc", "fun", "call", "children"} for o in expected[4:])
    assert all(o.label and "/" in o.label for o in expected[4:])


def test_parse_expected(tmp_path):
    path = tmp_path / "EXPECTED"
    path.write_text(
        "# comment\n\nload error reason=on_load_failure\n"
        "proc loop/1 survived runs={v2,#{a=>1}} final=alive\n"
        "call f/0 undef\n"
    )
    assert parse_expected(path) == [
        Outcome("load", None, "error", {"reason": "on_load_failure"}),
        Outcome("proc", "loop/1", "survived", {"runs": "{v2,#{a=>1}}", "final": "alive"}),
        Outcome("call", "f/0", "undef", {}),
    ]


def test_parse_expected_rejects_bad_lines(tmp_path):
    path = tmp_path / "EXPECTED"
    path.write_text("proc loop/1\n")
    with pytest.raises(ValueError, match="LABEL STATUS"):
        parse_expected(path)
    path.write_text("call f/0 ok value\n")
    with pytest.raises(ValueError, match="key=value"):
        parse_expected(path)


def test_mismatches_compare_only_listed_details():
    observed = [Outcome("fun", "f/1", "ok", {"value": "3"})]
    assert mismatches([Outcome("fun", "f/1", "ok", {})], observed) == []
    assert mismatches([Outcome("fun", "f/1", "ok", {"value": "4"})], observed)
    assert mismatches([Outcome("fun", "f/1", "badfun", {})], observed)
    assert mismatches([], observed) == ["0 expected outcomes, 1 observed", "unexpected: 'fun f/1 ok value=3'"]


# --- the VM ------------------------------------------------------------------


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_pair_matches_expected(name, observations):
    records = observations[name]
    if isinstance(records, HarnessError):
        pytest.fail(str(records))
    expected = parse_expected(PAIRS / name / "EXPECTED")
    problems = mismatches(expected, summarize(records))
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_record_shapes(observations):
    records = observations["fun_badfun"]
    kinds = [r["kind"] for r in records]
    assert kinds[:5] == ["load", "load", "md5", "vsn", "purge"]
    md5 = records[2]
    assert re.fullmatch(r"[0-9a-f]{32}", md5["old"]) and re.fullmatch(r"[0-9a-f]{32}", md5["new"])
    assert md5["current"] == md5["new"]
    funs = [r for r in records if r["kind"] == "fun"]
    assert {f["fun_info"]["type"] for f in funs} == {"local"}
    assert all(f["fun_info"]["module"] == "hl_fun_badfun" for f in funs)
    assert all(f["fun_info"]["new_uniq"] == md5["old"] for f in funs)
    assert all(f["before"]["status"] == "ok" for f in funs)
    proc, idle = [r for r in records if r["kind"] == "proc"]
    assert proc["reply_before_purge"] == "v1" and proc["reply_after_purge"] == "v2"
    assert idle["nudge"] == "none" and idle["killed"] and idle["reply_before_purge"] is None


@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_external_funs_report_external_type(observations):
    funs = [r for r in observations["external_fun_ok"] if r["kind"] == "fun"]
    assert [f["fun_info"]["type"] for f in funs] == ["external", "external"]


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["escript", str(HARNESS), *args], capture_output=True, timeout=30, cwd=REPO
    )


@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_harness_usage():
    result = _harness()
    assert result.returncode == 64
    assert b"usage" in result.stderr


@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_harness_rejects_bad_input(tmp_path):
    junk = tmp_path / "junk.beam"
    junk.write_bytes(b"FOR1\x00\x00\x00\x04BEAM-not-really")
    v1, _ = pair_beams("local_loop_killed")
    with pytest.raises(HarnessError, match="exited with 2"):
        observe(junk, v1)
    other, _ = pair_beams("fun_badfun")
    with pytest.raises(HarnessError, match="module_names_differ"):
        observe(v1, other)
    with pytest.raises(HarnessError, match="cannot_read"):
        observe(tmp_path / "missing.beam", v1)


@pytest.mark.otp
@pytest.mark.skipif(NO_ESCRIPT, reason="escript not found: Erlang/OTP is not installed")
def test_harness_output_is_ascii_json(observations):
    for name, records in observations.items():
        assert not isinstance(records, HarnessError), name
        for r in records:
            assert json.loads(json.dumps(r)) == r
