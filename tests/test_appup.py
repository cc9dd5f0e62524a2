"""Appup checks and suggested appups; OTP's systools is the oracle for what we write."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from beaminspect.release.appup import (Instruction, parse_instructions, suggest_appup_text,
                               suggest_appups, version_matches)
from beaminspect.cli.app import main
from beaminspect.terms.source import parse_terms
from beaminspect.release.gate import compare_releases
from otp import needs_erl

import gate_fixtures as gf



def _terms(text):
    return parse_terms(text)[0]


# ---------------------------------------------------------------------------
# Instructions and versions (no OTP needed)


def test_parse_every_high_level_form():
    instrs, apps, problems = parse_instructions(_terms(
        "[{load_module, a}, {load_module, b, [a]}, {load_module, c, soft_purge, brutal_purge, []},"
        " {update, d}, {update, e, supervisor}, {update, f, {advanced, x}},"
        " {update, g, {advanced, []}, soft_purge, soft_purge, [a]},"
        " {update, h, 5000, soft, brutal_purge, brutal_purge, []},"
        " {update, i, dynamic, infinity, {advanced, 1}, soft_purge, soft_purge, []},"
        " {add_module, j}, {add_module, k, [a]}, {delete_module, l},"
        " {restart_application, shop}, point_of_no_return,"
        " {load, {m, soft_purge, soft_purge}}, {remove, {n, brutal_purge, brutal_purge}},"
        " {load_object_code, {shop, \"1.1\", [o, p]}}]."))
    by = {i.module: i for i in instrs}
    assert problems == []
    assert apps == ["shop"]
    assert by["a"] == Instruction("load_module", "a")
    assert by["b"].dep_mods == ("a",)
    assert (by["c"].pre_purge, by["c"].post_purge) == ("soft_purge", "brutal_purge")
    assert by["e"].change == "supervisor"
    assert by["f"].change[0] == "advanced"
    assert by["g"].change == ("advanced", []) and by["g"].dep_mods == ("a",)
    assert by["h"].change == "soft"
    assert by["i"].change == ("advanced", 1)
    assert [by[m].op for m in "jklmnop"] == ["add_module", "add_module", "delete_module",
                                            "load", "remove", "load", "load"]


@pytest.mark.parametrize("text", ["[{load_module, \"a\"}].", "[{load_module, a, x, y}].",
                                  "[{add_module, a, b}].", "[{update, a, 1, 2, 3, 4}]."])
def test_malformed_instructions_are_problems(text):
    assert parse_instructions(_terms(text))[2]


@pytest.mark.parametrize("spec, vsn, expected", [
    ('"1.0"', "1.0", True), ('"1.0"', "1.0.1", False),
    ('<<"1\\\\.0(\\\\.[0-9]+)*">>', "1.0.7", True),
    ('<<"1\\\\.0">>', "1.0.7", False),          # must match the whole version
    ('<<"1\\\\.[0-9]+">>', "21.3", False),
    ('<<".*">>', "9.9", True),
])
def test_version_matches(spec, vsn, expected):
    assert version_matches(_terms(spec + "."), vsn) is expected


@needs_erl
def test_version_matches_agrees_with_re_run():
    cases = [(r"1\.0(\.[0-9]+)*", "1.0.7"), (r"1\.0", "1.0.7"), (r"1\.[0-9]+", "21.3"),
             (r"[0-9]+\.[0-9]+", "2.10"), (r"2\.1", "2.1"), (r"a|ab", "ab"), (r"1.*", "1.2")]
    body = ", ".join(
        f'case re:run("{v}", <<"{p.replace(chr(92), chr(92) * 2)}">>, '
        f'[unicode, {{capture, first, list}}]) of {{match, ["{v}"]}} -> true; _ -> false end'
        for p, v in cases)
    r = subprocess.run(["erl", "-noshell", "-eval", f"io:format(\"~w\", [[{body}]]), halt()."],
                       capture_output=True, text=True, timeout=60)
    otp = r.stdout.strip("[]\n").split(",")
    ours = [str(version_matches(p.encode(), v)).lower() for p, v in cases]
    assert ours == otp


# ---------------------------------------------------------------------------
# Checks over the shop releases (our own modules are compiled: needs OTP)


def _appup_findings(report):
    return {(f.kind, f.module) for f in report.findings if f.kind.startswith("appup_")}


@needs_erl
def test_bad_appup_problems(tmp_path):
    old, new = gf.build_shop_pair(tmp_path, gf.BAD_APPUP)
    r = compare_releases(old, new)
    found = _appup_findings(r)
    assert found == {
        ("appup_missing_module", "hl_pure_library_change"),
        ("appup_missing_module", "shop_client"),
        ("appup_missing_module", "shop_new"),
        ("appup_missing_module", "shop_legacy"),
        ("appup_brutal_purge_kills", "hl_local_loop_killed"),
        ("appup_advanced_without_code_change", "hl_gen_server_state_change"),
        ("appup_update_needed", "hl_gen_server_code_change_ok"),
        ("appup_unknown_module", "ghost"),
        ("appup_missing_module", None),       # its DownTo entry is empty
    }
    appup_path = str(new / "lib/shop-1.1/ebin/shop.appup")
    assert all(f.location == appup_path and f.app == "shop"
               for f in r.findings if f.kind.startswith("appup_"))


@needs_erl
def test_good_appup_with_regex_upfrom_passes(tmp_path):
    old, new = gf.build_shop_pair(tmp_path, gf.GOOD_APPUP)
    assert _appup_findings(compare_releases(old, new)) == set()


@needs_erl
@pytest.mark.parametrize("appup, kind", [
    (None, "appup_missing"),
    ('{"1.1", [{"0.9", []}], [{"1.0", []}]}.\n', "appup_no_upfrom"),
    ('{"1.1", [{"1.0", []}], [{<<"0\\\\..*">>, []}]}.\n', "appup_no_downto"),
    ('{"1.2", [{"1.0", []}], [{"1.0", []}]}.\n', "appup_wrong_vsn"),
    ('{"1.1", [{"1.0", []}]}.\n', "appup_malformed"),
    ('{"1.1", [{<<"(">>, []}], [{"1.0", []}]}.\n', "appup_malformed"),
])
def test_appup_level_problems(tmp_path, appup, kind):
    old, new = gf.build_shop_pair(tmp_path, appup)
    kinds = {f.kind for f in compare_releases(old, new).findings}
    assert kind in kinds


@needs_erl
def test_syntax_error_in_appup_has_a_position(tmp_path):
    old, new = gf.build_shop_pair(tmp_path, '{"1.1",\n [{"1.0", [{load_module, x}]}],\n [}.\n')
    f = [f for f in compare_releases(old, new).findings if f.kind == "appup_malformed"]
    assert len(f) == 1
    assert f[0].location.endswith("shop.appup")
    assert "line 3" in f[0].message or "offset" in f[0].message


# ---------------------------------------------------------------------------
# Suggestions


@needs_erl
def test_suggested_appup_content(tmp_path):
    old, new = gf.build_shop_pair(tmp_path, None)
    r = compare_releases(old, new)
    appups = suggest_appups(r)
    assert list(appups) == ["shop"]           # tools did not change
    vsn, [(up_from, up)], [(down_to, down)] = appups["shop"]
    assert (vsn, up_from, down_to) == ("1.1", "1.0", "1.0")
    text = suggest_appup_text(appups["shop"])
    term = parse_terms(text)[0]
    ups = {str(i[1]): i for i in term[1][0][1]}
    assert str(term[1][0][1][0][0]) == "add_module"
    assert ups["shop_new"][0] == "add_module"
    assert ups["shop_legacy"][0] == "delete_module"
    assert ups["hl_gen_server_code_change_ok"] == ("update", "hl_gen_server_code_change_ok",
                                                   ("advanced", []))
    assert ups["hl_local_loop_killed"][2:4] == ("soft_purge", "soft_purge")
    assert ups["shop_client"] == ("load_module", "shop_client", ["hl_export_removed"])
    order = [str(i[1]) for i in term[1][0][1]]
    assert order.index("hl_export_removed") < order.index("shop_client")
    downs = {str(i[1]): str(i[0]) for i in term[2][0][1]}
    assert downs["shop_new"] == "delete_module" and downs["shop_legacy"] == "add_module"


def _erl(expr: str, cwd: Path) -> str:
    r = subprocess.run(["erl", "-noshell", "-eval", expr + " halt()."], cwd=cwd,
                       capture_output=True, text=True, timeout=300)
    return r.stdout


@needs_erl
def test_suggested_appup_passes_systools_make_relup(tmp_path):
    """Build releases 1.0 and 1.1 with systools:make_script, write our appup into shop
    1.1 and have systools:make_relup translate it: OTP's own checks of the appup."""
    old, new = gf.build_shop_pair(tmp_path / "gate", None)
    out = tmp_path / "shop.appup"
    assert main(["appup", str(old), str(new), "--app", "shop", "-o", str(out)]) == 0
    consult = _erl(f'{{ok, [T]}} = file:consult("{out}"), io:format("~p", [T]),', tmp_path)
    assert consult.startswith('{"1.1"')

    work = tmp_path / "rel"
    vsns = {a: gf.otp_app_vsn(a) for a in ("kernel", "stdlib", "sasl", "erts")}
    for version in ("v1", "v2"):
        files = gf.shop_release_files(version, None, erts=vsns["erts"], kernel=vsns["kernel"],
                                      stdlib=vsns["stdlib"], sasl=vsns["sasl"])
        gf.write_files(work / "lib", {k[4:]: v for k, v in files.items()
                                      if k.startswith("lib/")})
        rel = next(v for k, v in files.items() if k.endswith(".rel"))
        (work / f"shop_{version}.rel").write_bytes(rel)
    (work / "lib/shop-1.1/ebin/shop.appup").write_bytes(out.read_bytes())
    expr = ('P = [{path, ["lib/*/ebin"]}, silent], '
            '{ok, _, _} = systools:make_script("shop_v1", P), '
            '{ok, _, _} = systools:make_script("shop_v2", P), '
            'R = systools:make_relup("shop_v2", ["shop_v1"], ["shop_v1"], P), '
            'io:format("~p", [element(1, R)]),')
    assert _erl(expr, work) == "ok", _erl(expr.replace("element(1, R)", "R"), work)
    relup = _erl('{ok, [R]} = file:consult("relup"), '
                 '{_, [{_, _, Up}], [{_, _, Down}]} = R, io:format("~w~n~w", [Up, Down]),',
                 work)
    up = relup.splitlines()[0]
    # the load order (DepMods) survives translation: the callee is loaded first
    assert up.index("{load,{hl_export_removed") < up.index("{load,{shop_client")
    assert "{load,{hl_local_loop_killed,soft_purge,soft_purge}}" in up
    assert "{code_change,up,[{hl_gen_server_code_change_ok,[]}]}" in up
    assert "{remove,{shop_legacy" in up
    # Down: what the upgrade changed is loaded back, shop_legacy comes back, shop_new
    # goes; systools reverses the DepMods order on the way down (the dependent first).
    down = relup.splitlines()[1]
    assert "{load,{shop_legacy" in down and "{remove,{shop_new" in down
    assert "{code_change,down,[{hl_gen_server_code_change_ok,[]}]}" in down
    assert down.index("{load,{shop_client") < down.index("{load,{hl_export_removed")


@needs_erl
def test_appup_cli_output_needs_app_when_several(tmp_path, capsys):
    old, new = gf.build_shop_pair(tmp_path, None)
    assert main(["appup", str(old), str(new)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("%% shop.appup")
    assert main(["appup", str(old), str(new), "--app", "nope"]) == 3


def test_gate_agrees_with_the_appup_it_suggests(tmp_path):
    """With the suggested appup shipped in the new release, the gate has nothing left for
    the appup to fix: no appup finding (UpFrom and DownTo complete), and the load order,
    the purge kill and the advanced update it asks for are at info, saying that the appup
    settles them.  What no appup can fix (a removed export still called, a state change
    without code_change) stays."""
    old, new = gf.build_shop_pair(tmp_path, None)
    before = compare_releases(old, new)
    loud = {f.kind for f in before.findings if f.severity != "info"}
    assert {"load_order", "purge_kills_local_loop", "code_change_needs_advanced_update",
            "appup_missing"} <= loud
    for app, term in suggest_appups(before).items():
        (Path(before.new.apps[app].path) / "ebin" / f"{app}.appup").write_text(
            suggest_appup_text(term))
    after = compare_releases(old, new)
    assert not [f for f in after.findings if f.kind.startswith("appup_")]
    settled = {f.kind: f for f in after.findings if f.message.startswith("settled by the appup")}
    assert set(settled) == {"load_order", "purge_kills_local_loop",
                            "code_change_needs_advanced_update"}
    assert all(f.severity == "info" for f in settled.values())
    still = {f.kind for f in after.findings if f.severity != "info"}
    assert still == {"export_removed", "export_removed_still_called", "undef_after_upgrade",
                     "state_change_without_code_change"}


def test_downto_must_undo_the_upgrade(tmp_path):
    """A DownTo entry that does not load a changed module back, delete an added one or
    add a removed one back is an appup_missing_module; the UpFrom checks are as before."""
    old, new = gf.build_shop_pair(tmp_path, None)
    r = compare_releases(old, new)
    vsn, up, [(down_to, down)] = suggest_appups(r)["shop"]
    short = [i for i in down if str(i[1]) not in ("shop_client", "shop_new")]
    path = Path(r.new.apps["shop"].path) / "ebin" / "shop.appup"
    path.write_text(suggest_appup_text((vsn, up, [(down_to, short)])))
    missing = [f for f in compare_releases(old, new).findings
               if f.kind == "appup_missing_module"]
    assert sorted(f.module for f in missing) == ["shop_client", "shop_new"]
    assert all("DownTo" in f.message for f in missing)
