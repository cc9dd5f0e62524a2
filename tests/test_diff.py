"""The module diff and the hot-load findings on the bundled pairs (no Erlang needed),
plus normalisation checks on the OTP corpus and on modules compiled at test time."""

import json
import os
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

import beaminspect
from beaminspect.cli.app import app
from beaminspect.analysis.diff import diff_modules
from beaminspect.analysis.findings import KINDS
from beaminspect.analysis.hotload import analyse
from corpus import SAMPLES
from otp import OTP_BEAMS, needs_erl

PAIRS = os.path.join(SAMPLES, "pairs")
runner = CliRunner()


def pair(name):
    d = os.path.join(PAIRS, name)
    v1 = [f for f in os.listdir(os.path.join(d, "v1")) if f.endswith(".beam")][0]
    v2 = [f for f in os.listdir(os.path.join(d, "v2")) if f.endswith(".beam")][0]
    return os.path.join(d, "v1", v1), os.path.join(d, "v2", v2)


def report(name):
    a, b = pair(name)
    return analyse(beaminspect.load(a), beaminspect.load(b))


def kinds(r):
    return {(f.kind, f.function) for f in r.findings}


def test_one_changed_function_does_not_mark_the_others():
    r = report("local_loop_killed")
    assert r.diff.by_status("changed") == ("describe/0",)
    assert not r.diff.by_status("added") and not r.diff.by_status("removed")
    assert ("purge_kills_local_loop", "loop/1") in kinds(r)


def test_comment_only_edit_keeps_md5_and_is_line_only():
    r = report("identical_md5")
    d = r.diff
    assert not d.reload_needed and d.md5_old == d.md5_new
    assert d.by_status("changed") == ()
    assert len(d.by_status("line_only")) >= 1
    assert set(d.chunks_changed) <= {"Line", "Attr", "CInf", "Dbgi", "Docs"}
    assert ("reload_not_needed", None) in kinds(r)
    assert d.lambdas_invalidated == ()


def test_recompile_without_change_is_unchanged():
    d = report("no_change_recompile").diff
    assert not d.reload_needed
    assert d.by_status("changed") == d.by_status("line_only") == ()


def test_export_removed_and_arity_change():
    r = report("export_removed")
    assert set(r.diff.exports_removed) == {"api/1", "old_api/0"}
    assert "api/2" in r.diff.exports_added
    assert {("export_removed", "api/1"), ("export_removed", "old_api/0")} <= kinds(r)


def test_funs_invalidated_when_md5_changes():
    r = report("fun_badfun")
    assert r.diff.reload_needed
    assert len(r.diff.lambdas_invalidated) == len(beaminspect.load(pair("fun_badfun")[0]).lambdas)
    assert {f.function for f in r.findings if f.kind == "fun_invalidated"} >= {"adder/1",
                                                                               "constant/0"}


def test_gen_server_state_change_without_code_change():
    assert any(f.kind == "state_change_without_code_change"
               for f in report("gen_server_state_change").findings)
    ok = report("gen_server_code_change_ok")
    assert not any(f.kind in ("state_change_without_code_change", "vsn_not_bumped")
                   for f in ok.findings)
    assert any(f.kind == "vsn_not_bumped" for f in report("vsn_not_bumped").findings)


def test_state_shape_only_for_records_that_reach_the_state():
    from beaminspect.analysis.hotload import state_changed
    inside = report("record_in_state")        # #limits{} sits inside #state{}
    assert [(f.kind, f.severity) for f in inside.findings
            if "record" in f.message] == [("state_change_without_code_change", "error")]
    assert "#limits" in inside.findings[0].message
    outside = report("record_out_of_state")   # #reading{} is built per call, sent away
    assert not any(f.kind == "state_change_without_code_change" for f in outside.findings)
    [note] = [f for f in outside.findings if f.kind == "record_changed_outside_state"]
    assert note.severity == "info" and "#reading" in note.message
    # An Elixir struct built per call and replied with, the state a map.
    ex = report("ex_struct_out_of_state")
    assert [(f.kind, f.severity) for f in ex.findings] == [
        ("record_changed_outside_state", "info")]
    assert "%HlExStructOut{}" in ex.findings[0].message
    for name, expected in (("record_in_state", True), ("record_out_of_state", False),
                           ("gen_server_state_change", True), ("ex_struct_state_change", True),
                           ("ex_struct_out_of_state", False)):
        a, b = (beaminspect.load(p) for p in pair(name))
        assert state_changed(a, b, analyse(a, b)) is expected, name


def test_state_tags_follow_the_state():
    from beaminspect.analysis.state import state_tags
    old = beaminspect.load(pair("record_out_of_state")[0])
    tags = state_tags(old, {"gen_server"})
    assert ("state", 2) in tags and not any(t[0] == "reading" for t in tags)
    new = beaminspect.load(pair("record_in_state")[1])
    assert {("state", 3), ("limits", 3)} <= state_tags(new, {"gen_server"})
    ex = beaminspect.load(pair("ex_struct_state_change")[0])
    assert (ex.name, None) in state_tags(ex, {"gen_server"})


def test_blocked_call_severity_follows_who_waits():
    sev = {f.function: f for f in report("gen_server_sleeps").findings
           if f.kind == "purge_kills_blocked_call"}
    # The gen_server process itself sleeps in handle_cast/2: an error, with the reason
    # and what soft_purge would do instead.
    f = sev["handle_cast/2"]
    assert f.severity == "error" and "gen_server process itself" in f.message
    assert "soft_purge" in f.message and "version/0, woke/1" in f.message
    sev = {f.function: f.severity for f in report("blocked_in_call").findings
           if f.kind == "purge_kills_blocked_call"}
    assert sev == {"wait/0": "error", "receive_one/0": "error", "nap/0": "error",
                   "ask/1": "error"}     # spawned by spawn(?MODULE, F, [])
    sev = {f.function: f for f in report("fun_spawned").findings}
    assert sev["wait/0"].severity == "error" and "-start_waiter/0-fun-0-/0" in \
        sev["wait/0"].message
    assert not any(f.kind == "fun_invalidated" for f in sev.values())
    # A client API function: who waits there is its caller, of unknown lifetime.
    f = next(f for f in report("gen_server_sleeps").findings if f.function == "ask/1")
    assert f.severity == "warning" and "callers" in f.message


def test_fun_classes_by_where_the_callback_puts_the_fun():
    found = {f.function: f for f in report("fun_classes").findings
             if f.kind == "fun_invalidated"}
    # init/1's fun is the state; handle_call/3's is the reply: the caller keeps it.
    assert found["init/1"].severity == "error" and "process state" in found["init/1"].message
    assert found["handle_call/3"].severity == "warning"
    assert "reply to the caller" in found["handle_call/3"].message
    assert "mapper/1" not in found


def test_on_load_and_nif():
    assert any(f.kind == "on_load_changed" for f in report("on_load_changed").findings)
    assert any(f.kind == "nif_changed" for f in report("nif_changed").findings)


def test_pure_library_change_has_no_process_findings():
    r = report("pure_library_change")
    assert r.diff.by_status("changed") == ("slug/1",)
    assert not [f for f in r.findings if f.severity in ("warning", "error")]


def test_blocked_calls_and_stale_code():
    r = report("blocked_in_call")
    assert {"wait/0", "nap/0", "ask/1"} <= set(r.blocking_calls)
    r = report("changed_only_unreachable")
    assert ("stale_code_in_loop", "format/1") in kinds(r)


def test_module_name_differs():
    a = beaminspect.load(pair("fun_badfun")[0])
    b = beaminspect.load(pair("local_loop_killed")[0])
    assert any(f.kind == "module_name_differs" for f in analyse(a, b).findings)


def test_opcode_too_new_for_the_running_release():
    a, b = pair("pure_library_change")
    r = analyse(beaminspect.load(a), beaminspect.load(b), running_otp=20)
    assert any(f.kind == "opcode_too_new" for f in r.findings)
    r = analyse(beaminspect.load(a), beaminspect.load(b), running_otp=25)
    assert not any(f.kind == "opcode_too_new" for f in r.findings)


def test_severity_overrides():
    a, b = pair("local_loop_killed")
    r = analyse(beaminspect.load(a), beaminspect.load(b),
                severities={"purge_kills_local_loop": "info", "fun_invalidated": "off"})
    assert {f.severity for f in r.findings if f.kind == "purge_kills_local_loop"} == {"info"}
    assert not any(f.kind == "fun_invalidated" for f in r.findings)


def test_every_finding_has_a_known_kind_and_severity():
    for name in os.listdir(PAIRS):
        for f in report(name).findings:
            assert f.kind in KINDS and f.severity in ("info", "warning", "error")
            assert f.message and "\n" not in f.message


@pytest.mark.parametrize("path", OTP_BEAMS[::7])
def test_self_diff_is_all_unchanged(path):
    m1, m2 = beaminspect.load(path), beaminspect.load(path)
    d = diff_modules(m1, m2)
    assert not d.reload_needed
    assert {f.status for f in d.functions} <= {"unchanged"}
    assert d.exports_removed == d.exports_added == ()


# -- CLI ------------------------------------------------------------------------

def test_cli_json_schema_and_exit_codes():
    a, b = pair("local_loop_killed")
    r = runner.invoke(app, ["diff", a, b, "--format", "json"])
    assert r.exit_code == 1, r.output       # an error-severity finding, default --fail-on error
    obj = json.loads(r.stdout)
    for key in ("module", "md5", "reload_needed", "exports", "labels", "functions", "lambdas",
                "imports", "findings"):
        assert key in obj
    assert set(obj["functions"]) == {"added", "removed", "changed", "type_only", "line_only",
                                     "unchanged"}
    assert set(obj["exports"]) == {"added", "removed", "kept"}
    assert set(obj["lambdas"]) == {"added", "removed", "changed", "invalidated", "uses"}
    assert obj["findings"][0].keys() == {"kind", "severity", "function", "message"}
    assert obj["md5"]["old"] == beaminspect.load(a).md5.hex()
    assert runner.invoke(app, ["diff", a, b, "--fail-on", "never"]).exit_code == 0
    a, b = pair("pure_library_change")
    assert runner.invoke(app, ["diff", a, b]).exit_code == 0
    assert runner.invoke(app, ["diff", a, b, "--fail-on", "info"]).exit_code in (0, 1)


def test_cli_markdown_and_text():
    a, b = pair("export_removed")
    md = runner.invoke(app, ["diff", a, b, "--format", "markdown"])
    assert md.exit_code == 1 and "| severity | kind | function | message |" in md.stdout
    txt = runner.invoke(app, ["diff", a, b])
    assert "Findings" in txt.stdout and "export_removed" in txt.stdout


def test_cli_bad_input_exit_2(tmp_path):
    bad = tmp_path / "x.beam"
    bad.write_bytes(b"nope")
    a, _ = pair("export_removed")
    r = runner.invoke(app, ["diff", a, str(bad)])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"beaminspect: {bad}: ")


# -- label shifts, compiled at test time ---------------------------------------

SRC_V1 = """-module(shift).
-export([a/0, b/1, c/2]).
a() -> {ok, b(1)}.
b(X) -> lists:reverse([X, 2, 3]).
c(X, Y) -> case X of 1 -> Y; _ -> {X, Y} end.
"""
SRC_V2 = """-module(shift).
-export([a/0, b/1, c/2, new/0]).

new() -> [fun(Z) -> Z end, 7].


a() -> {ok, b(1)}.
b(X) -> lists:reverse([X, 2, 3]).
c(X, Y) -> case X of 1 -> Y; _ -> {X, Y, extra} end.
"""


@needs_erl
@pytest.mark.otp
def test_inserted_function_shifts_labels_but_not_status(tmp_path):
    out = {}
    for tag, src in (("v1", SRC_V1), ("v2", SRC_V2)):
        d = tmp_path / tag
        d.mkdir()
        (d / "shift.erl").write_text(src)
        subprocess.run([shutil.which("erlc"), "-o", str(d), str(d / "shift.erl")], check=True)
        out[tag] = beaminspect.load(str(d / "shift.beam"))
    d = diff_modules(out["v1"], out["v2"])
    assert d.by_status("added") == ("-new/0-fun-0-/1", "new/0")
    assert d.by_status("changed") == ("c/2",)
    assert set(d.by_status("line_only")) >= {"a/0", "b/1"}
    moved = {c.function: (c.old, c.new) for c in d.labels}
    assert moved["a/0"][0] != moved["a/0"][1]   # entry labels did move


def test_every_renderer_takes_unrelated_modules():
    """Diffs of one pair's v1 against another pair's v2 change behaviours, on_load, nifs
    and names at once: every format renders them, and the JSON matches its schema."""
    import jsonschema
    from beaminspect.render import diff_out
    with open(os.path.join(os.path.dirname(SAMPLES), "schemas", "diff.schema.json")) as f:
        schema = json.load(f)
    names = sorted(os.listdir(PAIRS))
    seen_attrs = set()
    for a, b in zip(names, names[1:] + names[:1]):
        r = analyse(beaminspect.load(pair(a)[0]), beaminspect.load(pair(b)[1]))
        obj = json.loads(json.dumps(diff_out.report_dict(r)))
        jsonschema.validate(obj, schema)
        assert diff_out.render_text(r) and diff_out.render_markdown(r)
        seen_attrs |= set(obj["attributes"])
    assert {"behaviours", "on_load"} <= seen_attrs


# --- operands that name functions, and type annotations (OTP 27 -> OTP 29 builds) ----

def _release_pair(module: str):
    import glob
    from otp import require_otp
    paths = []
    for n in (27, 29):
        rel = require_otp(n)
        found = glob.glob(f"{rel.lib_dir}/stdlib-*/ebin/{module}.beam")
        if not found:
            pytest.skip(f"OTP {n} has no {module}.beam")
        paths.append(found[0])
    return diff_modules(beaminspect.load(paths[0]), beaminspect.load(paths[1]))


def test_call_fun2_tag_is_compared_by_the_fun_it_names():
    # in_guard/1 calls a known local fun whose FunT index is 1 in OTP 27's build and
    # 2 in OTP 29's: the same fun, so only the line information differs.
    d = _release_pair("erl_expand_records")
    assert "in_guard/1" in d.by_status("line_only")


def test_type_annotations_alone_are_type_only():
    # OTP 29 adds `record` to the union of "any" types: the code is the same.
    d = _release_pair("calendar")
    assert "datetime_to_gregorian_seconds/1" in d.by_status("type_only")
    assert "datetime_to_gregorian_seconds/1" not in d.by_status("changed")


@pytest.mark.parametrize("pair", ["identical_md5", "no_change_recompile"])
def test_same_md5_is_do_not_load_and_never_fails(pair):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
    from vm.observe import pair_beams
    v1, v2 = pair_beams(pair)
    r = analyse(beaminspect.load(v1), beaminspect.load(v2))
    assert not r.diff.reload_needed
    assert any(f.kind == "reload_not_needed" and "do not load it" in f.message
               for f in r.findings)
    # What a load would do anyway is still said, as information.
    others = [f for f in r.findings if f.kind != "reload_not_needed"]
    assert others and all(f.severity == "info" for f in others)
    assert all(f.message.startswith("if it is loaded anyway: ") for f in others)
    assert not r.failed("warning")


def test_vsn_renders_as_erlang_writes_it():
    msgs = [f.message for f in report("vsn_not_bumped").findings if f.kind == "vsn_not_bumped"]
    assert msgs and '-vsn stays "1"' in msgs[0] and "[49]" not in msgs[0]


@needs_erl
def test_code_path_tells_which_calls_block(tmp_path):
    """diff --code-path reads the running system's code for what blocks: sys:get_state/2
    is in no table, and gen_server:start/3 only waits through proc_lib; without the code
    path they are looked up in the table and missed."""
    a, b = pair("blocked_derived")
    lib = os.path.dirname(os.path.dirname(os.path.dirname(OTP_BEAMS[0])))

    def blocked(*extra):
        r = runner.invoke(app, ["diff", a, b, "--format", "json", *extra])
        assert r.exit_code in (0, 1), r.output
        return {f["function"]: f for f in json.loads(r.output)["findings"]
                if f["kind"] == "purge_kills_blocked_call"}

    assert "peek/1" not in blocked() and "starter/0" not in blocked()
    found = blocked("--code-path", lib)
    assert found["peek/1"]["severity"] == "error"
    assert "sys:get_state/2 (which waits in gen:do_call/4)" in found["peek/1"]["message"]
    assert "gen_server:start/3 (which waits in proc_lib:" in found["starter/0"]["message"]
    # The gen_server that printed, logged, read a file and set a timer does not wait.
    assert "handle_call/3" not in found
    # A directory of beams works as well as a lib directory; an empty one changes nothing.
    assert blocked("--code-path", str(tmp_path)).keys() == blocked().keys()
