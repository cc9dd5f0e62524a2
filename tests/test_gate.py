"""The release gate: module matching, cross-module findings, renderings, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import beaminspect.module
from beaminspect.cli.app import main
from beaminspect.cli.commands import Progress as _Progress
from beaminspect.analysis.findings import DEFAULTS as KINDS
from beaminspect.release.gate import compare_releases
from beaminspect.analysis.hotload import analyse
from beaminspect.module import load
from beaminspect.release.policy import Policy
from beaminspect.render import diff_out, gate_out
from otp import needs_erl

import gate_fixtures as gf

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
GATE_SCHEMA = json.loads((ROOT / "schemas" / "gate.schema.json").read_text())
DIFF_SCHEMA = json.loads((ROOT / "schemas" / "diff.schema.json").read_text())

# The parts of SARIF 2.1.0 the gate writes (the official schema is not available
# offline): required keys, levels, and the location shape.
SARIF_MINIMAL = {
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "$schema": {"type": "string", "pattern": "sarif-2\\.1\\.0"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name", "rules"], "properties": {
                        "name": {"type": "string"},
                        "rules": {"type": "array", "items": {
                            "type": "object", "required": ["id"],
                            "properties": {"id": {"type": "string"},
                                           "shortDescription": {
                                               "type": "object", "required": ["text"]},
                                           "defaultConfiguration": {"type": "object", "properties": {
                                               "level": {"enum": ["none", "note", "warning", "error"]}}}}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["ruleId", "level", "message"],
                    "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": 0},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"type": "object", "required": ["text"],
                                    "properties": {"text": {"type": "string"}}},
                        "locations": {"type": "array", "items": {
                            "type": "object", "required": ["physicalLocation"],
                            "properties": {"physicalLocation": {
                                "type": "object", "required": ["artifactLocation"],
                                "properties": {"artifactLocation": {
                                    "type": "object", "required": ["uri"],
                                    "properties": {"uri": {"type": "string", "minLength": 1}}}}}}}}}}}}}}},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    if not gf.shutil_which("erlc"):
        pytest.skip("Erlang/OTP (erlc) is not installed")
    work = tmp_path_factory.mktemp("shop")
    old, new = gf.build_shop_pair(work, gf.BAD_APPUP)
    return old, new, compare_releases(old, new)


def _find(report, kind, module=None, function=None):
    return [f for f in report.findings if f.kind == kind and
            (module is None or f.module == module) and
            (function is None or f.function == function)]


# ---------------------------------------------------------------------------
# The comparison


def test_summary_counts(shop):
    _, _, r = shop
    assert r.counts() == gf.EXPECTED_COUNTS
    st = {n: c.status for n, c in r.modules.items()}
    assert st["shop_new"] == "added" and st["shop_legacy"] == "removed"
    assert {n for n, s in st.items() if s == "changed"} == {
        "hl_export_removed", "hl_local_loop_killed", "hl_gen_server_code_change_ok",
        "hl_gen_server_state_change", "hl_pure_library_change", "shop_client"}
    # the same MD5 with different bytes (comments moved lines): parsed, then unchanged
    ident = r.modules["hl_identical_md5"]
    assert ident.status == "unchanged" and not ident.bytes_identical
    assert r.modules["bi_records"].bytes_identical
    assert r.modules["bi_funs"].app == "tools"


def test_cross_module_findings(shop):
    _, new, r = shop
    f = _find(r, "export_removed_still_called", "shop_caller", "hl_export_removed:old_api/0")
    assert len(f) == 1 and f[0].severity == "error"
    assert f[0].location == str(new / "lib/shop-1.1/ebin/shop_caller.beam")
    assert len(_find(r, "undef_after_upgrade", "shop_client", "hl_export_removed:gone/0")) == 1
    lo = _find(r, "load_order", "shop_client", "hl_export_removed:api/2")
    assert len(lo) == 1 and lo[0].severity == "warning"
    # an existing export of a changed module: ordering only (info)
    assert _find(r, "load_order", "shop_new")[0].severity == "info"
    assert r.dep_mods == {"shop_client": ["hl_export_removed"], "shop_new": ["hl_export_removed"]}
    # modules outside the release are external: lists, vendor_lib
    assert not [x for x in r.findings if x.function and
                x.function.startswith(("lists:", "vendor_lib:", "erlang:"))]
    assert not _find(r, "load_order", "shop_client", "hl_export_removed:gone/0")


def test_per_module_findings_are_prefixed(shop):
    _, _, r = shop
    loop = _find(r, "purge_kills_local_loop", "hl_local_loop_killed")
    assert [x.function for x in loop] == ["hl_local_loop_killed:loop/1"]
    assert _find(r, "state_change_without_code_change", "hl_gen_server_state_change")
    assert {x.function for x in _find(r, "export_removed", "hl_export_removed")} == {
        "hl_export_removed:api/1", "hl_export_removed:old_api/0"}
    # every per-module finding of the module reports is there
    for ch in r.by_status("changed"):
        for f in ch.report.findings:
            assert _find(r, f.kind, ch.name)


def test_findings_sorted_by_severity(shop):
    _, _, r = shop
    order = ["error", "warning", "info"]
    sev = [order.index(f.severity) for f in r.findings]
    assert sev == sorted(sev)


def test_external_declarations_silence_calls(shop):
    old, new, _ = shop
    r = compare_releases(old, new, external=["hl_export_removed"])
    assert not _find(r, "export_removed_still_called")
    assert not _find(r, "undef_after_upgrade")
    assert not _find(r, "load_order")
    # an application name declares all its modules external
    r = compare_releases(old, new, policy=Policy(external=frozenset({"shop"})))
    assert not _find(r, "export_removed_still_called")


def test_policy_severities_and_off(shop):
    old, new, _ = shop
    pol = Policy(severities={"load_order": "off", "purge_kills_local_loop": "info",
                             "export_removed_still_called": "warning"})
    r = compare_releases(old, new, policy=pol)
    assert not _find(r, "load_order")
    assert {f.severity for f in _find(r, "purge_kills_local_loop")} == {"info"}
    assert {f.severity for f in _find(r, "export_removed_still_called")} == {"warning"}


@pytest.mark.parametrize("layout", ["tar", "ez"])
def test_archives_give_the_same_answer(tmp_path, shop, layout):
    _, _, ref = shop
    old, new = gf.build_shop_pair(tmp_path, gf.BAD_APPUP, layout=layout)
    r = compare_releases(old, new)
    if layout == "tar":
        assert r.counts() == ref.counts()
        key = lambda f: (f.kind, f.module or "", f.function or "", f.severity)  # noqa: E731
        assert sorted(map(key, r.findings)) == sorted(map(key, ref.findings))
        loc = _find(r, "export_removed_still_called")[0].location
        assert loc == f"{new}!lib/shop-1.1/ebin/shop_caller.beam"
    else:
        # one application: tools is not there
        assert r.counts() == {"added": 1, "removed": 1, "changed": 6, "unchanged": 3}
        assert _find(r, "export_removed_still_called", "shop_caller")


def test_unchanged_files_are_not_parsed(tmp_path, monkeypatch):
    old, new = gf.simple_pair(tmp_path, changed=1, same=4)
    calls = []
    real = beaminspect.module.load

    def counting(source, *, file=None):
        calls.append(file)
        return real(source, file=file)

    monkeypatch.setattr(beaminspect.module, "load", counting)
    r = compare_releases(old, new, jobs=1)
    assert r.counts() == {"added": 0, "removed": 0, "changed": 1, "unchanged": 4}
    assert sorted(Path(c).name for c in calls) == ["s_chg0.beam", "s_chg0.beam"]


@needs_erl
def test_parallel_output_is_the_serial_output(tmp_path):
    old, new = gf.simple_pair(tmp_path, changed=60, same=2)
    a = compare_releases(old, new, jobs=1)
    b = compare_releases(old, new, jobs=2)
    assert a.counts()["changed"] == 60
    assert gate_out.report_dict(a) == gate_out.report_dict(b)
    assert gate_out.render_text(a) == gate_out.render_text(b)


def test_module_moved_between_apps(tmp_path):
    from release_fixtures import compile_modules
    beams = compile_modules([("mv_x", "1"), ("mv_y", "1")])
    x, y = beams[("mv_x", "1")], beams[("mv_y", "1")]
    old = gf.write_files(tmp_path / "old", {**gf.app_tree("one", "1.0", {"mv_x": x, "mv_y": y}),
                                            **gf.app_tree("two", "1.0", {})})
    new = gf.write_files(tmp_path / "new", {**gf.app_tree("one", "1.1", {"mv_x": x}),
                                            **gf.app_tree("two", "1.1", {"mv_y": y})})
    r = compare_releases(old, new)
    f = _find(r, "module_moved_app", "mv_y")
    assert len(f) == 1 and "one" in f[0].message and "two" in f[0].message
    assert r.modules["mv_y"].status == "unchanged"


def test_duplicate_module_and_vsn_not_bumped(tmp_path):
    from release_fixtures import compile_modules
    beams = compile_modules([("dup_m", "a"), ("dup_m", "b"), ("solo", "a"), ("solo", "b")])
    old = gf.write_files(tmp_path / "old", gf.app_tree("one", "1.0", {"solo": beams[("solo", "a")]}))
    new = gf.write_files(tmp_path / "new", {
        **gf.app_tree("one", "1.0", {"solo": beams[("solo", "b")], "dup_m": beams[("dup_m", "a")]}),
        **gf.app_tree("two", "1.0", {"dup_m": beams[("dup_m", "b")]})})
    r = compare_releases(old, new)
    d = _find(r, "duplicate_module", "dup_m")
    assert len(d) == 1 and d[0].severity == "error"
    assert _find(r, "app_vsn_not_bumped")[0].app == "one"


def test_unreadable_beam_is_a_finding(tmp_path, capsys):
    from release_fixtures import compile_modules
    beams = compile_modules([("ok_m", "1"), ("bad_m", "1")])
    old = gf.write_files(tmp_path / "old", gf.app_tree("one", "1.0", {
        "ok_m": beams[("ok_m", "1")], "bad_m": beams[("bad_m", "1")]}))
    new = gf.write_files(tmp_path / "new", gf.app_tree("one", "1.1", {
        "ok_m": beams[("ok_m", "1")], "bad_m": b"FOR1\x00\x00\x00\x04BEAM-garbage",
        "junk_m": b"not a beam at all"}))
    r = compare_releases(old, new)
    bad = _find(r, "unreadable_module")
    assert {f.module for f in bad} == {"bad_m", "junk_m"}
    assert all("\n" not in f.message and f.location for f in bad)
    # A file that cannot be read is bad input (exit 2), whatever --fail-on says; the
    # report still lists the rest.
    assert main(["gate", str(old), str(new), "--format", "json"]) == 2
    out = capsys.readouterr()
    doc = json.loads(out.out)
    jsonschema.validate(doc, GATE_SCHEMA)
    assert "Traceback" not in out.err


def test_progress_only_for_large_releases_and_long_runs():
    """The bar (rich's) shows for a release of more than PROGRESS_MIN_MODULES modules
    once the run has taken a second, counts the modules, and is gone at the end."""
    import io

    from rich.console import Console
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    p = _Progress(console)
    p(10, 150)                          # a small release: never
    p._start -= 5                       # as if five seconds had passed
    p(10, 150)
    assert not p.shown
    q = _Progress(console)
    q(64, 786)                          # a large one, but under a second: not yet
    assert not q.shown
    q._start -= 5
    q(64, 786)
    q(786, 786)
    assert q.shown
    q.clear()
    out = buf.getvalue()
    assert "comparing modules" in out and "786/786" in out


def test_progress_callback_over_the_otp_tree():
    import glob
    if len(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam")) < 200:
        pytest.skip("no OTP lib tree")
    seen = []
    r = compare_releases("/usr/lib/erlang/lib", "/usr/lib/erlang/lib",
                         progress=lambda d, t: seen.append((d, t)))
    assert r.counts()["unchanged"] == len(r.modules) > 200
    assert seen[-1][0] == seen[-1][1] == len(r.modules)
    assert not r.findings


# ---------------------------------------------------------------------------
# Renderings


def test_json_matches_the_schema(shop):
    _, _, r = shop
    doc = gate_out.report_dict(r, "error")
    jsonschema.validate(doc, GATE_SCHEMA)
    assert doc["summary"]["modules"] == gf.EXPECTED_COUNTS
    assert doc["summary"]["passed"] is False
    assert doc["load_order"]["shop_client"] == ["hl_export_removed"]
    assert {"app": "shop", "old_vsn": "1.0", "new_vsn": "1.1"} in doc["applications"]


@pytest.mark.parametrize("scenario", [p.name for p in sorted(gf.PAIRS.iterdir())
                                      if p.is_dir()])
def test_diff_json_matches_its_schema(scenario):
    (_, b1), (_, b2) = gf.pair_beam(scenario, "v1"), gf.pair_beam(scenario, "v2")
    report = analyse(load(b1, file="v1").decode_all(), load(b2, file="v2").decode_all())
    jsonschema.validate(json.loads(json.dumps(diff_out.report_dict(report))), DIFF_SCHEMA)


def test_sarif_structure(shop):
    _, new, r = shop
    doc = gate_out.render_sarif(r)
    jsonschema.validate(doc, SARIF_MINIMAL)
    run = doc["runs"][0]
    ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(ids) == len(set(ids))
    assert len(run["results"]) == len(r.findings)
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        assert res["ruleId"] in ids
    levels = {res["ruleId"]: res["level"] for res in run["results"]}
    assert levels["export_removed_still_called"] == "error"
    assert levels["appup_unknown_module"] == "warning"
    assert "note" in {res["level"] for res in run["results"]}
    uris = {res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for res in run["results"] if "locations" in res}
    assert str(new / "lib/shop-1.1/ebin/shop.appup") in uris


def test_text_and_markdown(shop):
    _, _, r = shop
    text = gate_out.render_text(r)
    first = text.splitlines()
    assert first[0].startswith("gate FAILED")
    assert first[1] == "modules: 1 added, 1 removed, 6 changed, 5 unchanged"
    assert first[2].startswith("findings: ")
    assert "shop            1.0    1.1" in text.replace("  ", " ") or "1.0" in text
    md = gate_out.render_markdown(r)
    assert md.startswith("### :x: beaminspect gate: failed")
    assert "| 1 | 1 | 6 | 5 |" in md
    assert "`export_removed_still_called`" in md


# ---------------------------------------------------------------------------
# Command line


def test_cli_exit_codes(shop, tmp_path, capsys):
    old, new, _ = shop
    assert main(["gate", str(old), str(new)]) == 1
    assert main(["gate", str(old), str(new), "--fail-on", "never"]) == 0
    assert main(["gate", str(old), str(old)]) == 0
    assert main(["gate", str(old), str(tmp_path / "missing")]) == 2
    bad_tar = tmp_path / "bad.tar.gz"
    bad_tar.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["gate", str(old), str(bad_tar)]) == 2
    assert main(["gate", str(old), str(new), "--format", "xml"]) == 3
    assert main(["gate", str(old), str(new), "--fail-on", "fatal"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err


@pytest.mark.parametrize("form", [
    [],
    ["--format", "json"],
    ["--format=sarif"],
    ["--format", "markdown", "--fail-on", "never"],
    ["--fail-on=warning", "--external", "hl_export_removed", "--external=kernel"],
    ["--otp", "25", "--format", "json"],
    ["--policy", "MISSING.toml"],
    ["--format", "xml"],          # a usage error
    ["-f", "json"],               # -f is disasm's --function, not --format
    ["--help"],
])
def test_entry_point_gate_is_the_in_process_output(shop, tmp_path, capsys, monkeypatch,
                                                   form):
    """``gate`` as a process (``python -m beaminspect``, which leaves with ``os._exit``)
    prints what :func:`main` prints in this process and exits with its code, whatever
    the form of the options."""
    import subprocess
    import sys
    old, new, _ = shop
    monkeypatch.chdir(tmp_path)
    # The same width for both (tables fit COLUMNS; the process's environment may hold
    # one that os.environ does not show).
    monkeypatch.setenv("COLUMNS", "120")
    argv = ["gate", str(old), str(new), *form]
    want_code = main(argv)
    want = capsys.readouterr()
    proc = subprocess.run([sys.executable, "-m", "beaminspect", *argv], capture_output=True,
                          text=True, encoding="utf-8", timeout=300, cwd=tmp_path)
    assert proc.returncode == want_code
    assert proc.stdout == want.out
    assert proc.stderr == want.err
    if form == ["-f", "json"]:
        assert want_code == 3 and "No such option: -f" in want.err


def test_cli_policy_fail_on_and_output_file(shop, tmp_path, capsys):
    old, new, _ = shop
    pol = tmp_path / "p.toml"
    pol.write_text('fail_on = "never"\n')
    assert main(["gate", str(old), str(new), "--policy", str(pol)]) == 0
    # the flag wins over the policy
    assert main(["gate", str(old), str(new), "--policy", str(pol), "--fail-on", "error"]) == 1
    capsys.readouterr()
    out = tmp_path / "gate.sarif"
    assert main(["gate", str(old), str(new), "--format", "sarif", "-o", str(out)]) == 1
    assert capsys.readouterr().out == ""
    jsonschema.validate(json.loads(out.read_text()), SARIF_MINIMAL)
    assert main(["gate", str(old), str(new), "--external", "hl_export_removed",
                 "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert "hl_export_removed" in doc["policy"]["external"]
    assert not [f for f in doc["findings"] if f["kind"] == "export_removed_still_called"]


@pytest.mark.skipif(not os.path.isdir("/usr/lib/erlang/lib"),
                    reason="needs a large release: the installed OTP lib tree is not there")
def test_cli_stderr_is_quiet_when_not_a_tty(capsys):
    assert main(["gate", "/usr/lib/erlang/lib", "/usr/lib/erlang/lib"]) == 0
    assert "\r" not in capsys.readouterr().err


def test_every_kind_has_a_valid_default():
    for kind, (sev, meaning) in KINDS.items():
        assert sev in ("info", "warning", "error") and meaning


@pytest.mark.parametrize("pair, code", [("gen_server_sleeps", 1), ("record_out_of_state", 0)])
def test_default_gate_follows_what_breaks(tmp_path, capsys, pair, code):
    """A gen_server killed in its callback's timer:sleep fails the default gate; a
    changed record the server never keeps does not (the VM test shows both)."""
    v1, v2 = (sorted((gf.PAIRS / pair / v).glob("*.beam"))[0] for v in ("v1", "v2"))
    old = gf.write_files(tmp_path / "old", gf.app_tree("srv", "1.0", {v1.stem: v1.read_bytes()}))
    new = gf.write_files(tmp_path / "new", gf.app_tree("srv", "1.0", {v2.stem: v2.read_bytes()}))
    assert main(["gate", str(old), str(new)]) == code
    out = capsys.readouterr().out
    assert ("purge_kills_blocked_call" in out) == (pair == "gen_server_sleeps")
    assert "state_change_without_code_change" not in out
