"""An upgrade that changes the emulator: the gate says the node restarts
(``new_emulator_needed``), and names every module of the running release that the new
release's loader refuses (``module_refused_by_new_emulator``), held against that
release's own loader: OTP 25's lib tree upgraded to OTP 29's, checked by OTP 29's VM."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from beaminspect.release.emulator import RESTART_TAKES_NEW, erts_version
from beaminspect.release.gate import compare_releases
from beaminspect.release.layout import open_release

ROOT = Path(__file__).resolve().parent.parent
EBIN = ROOT / "samples" / "ebin"
KINDS = ("new_emulator_needed", "module_refused_by_new_emulator")


def _release(root: Path, erts: str, beams: dict[str, Path], app: str = "app") -> Path:
    ebin = root / "lib" / f"{app}-1.0" / "ebin"
    ebin.mkdir(parents=True)
    for name, path in beams.items():
        (ebin / f"{name}.beam").write_bytes(path.read_bytes())
    (ebin / f"{app}.app").write_text('{application,%s,[{vsn,"1.0"},{modules,[%s]}]}.\n'
                                     % (app, ",".join(beams)))
    rel = root / "releases" / "1"
    rel.mkdir(parents=True)
    (rel / "demo.rel").write_text('{release,{"demo","1"},{erts,"%s"},[{%s,"1.0"}]}.\n'
                                  % (erts, app))
    return root


def _kinds(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        if f.kind in KINDS:
            out.setdefault(f.kind, []).append(f)
    return out


def test_same_emulator_says_nothing(tmp_path):
    beams = {"bi_flow": EBIN / "bi_flow.beam"}
    old = _release(tmp_path / "a", "13.1.5", beams)
    new = _release(tmp_path / "b", "13.1.5", beams)
    assert erts_version(open_release(new)) == "13.1.5"
    assert _kinds(compare_releases(old, new)) == {}


def test_a_new_emulator_restarts_the_node_and_checks_the_old_modules(tmp_path):
    """OTP 25 -> OTP 29: bi_binaries (OTP 25's compiler wrote bs_test_unit, which OTP
    29's loader refuses) is named, bi_flow is not."""
    beams = {"bi_flow": EBIN / "bi_flow.beam", "bi_binaries": EBIN / "bi_binaries.beam"}
    old = _release(tmp_path / "a", "13.1.5", beams)
    new = _release(tmp_path / "b", "17.1.1", beams)
    got = _kinds(compare_releases(old, new))
    [restart] = got["new_emulator_needed"]
    assert "ERTS 13.1.5 to ERTS 17.1.1 (OTP 25 -> OTP 29)" in restart.message
    assert "restart_new_emulator" in restart.message
    refused = {f.module: f for f in got["module_refused_by_new_emulator"]}
    assert set(refused) == {"bi_binaries"}
    assert "bs_test_unit" in refused["bi_binaries"].message
    # OTP 27's loader takes both.
    new27 = _release(tmp_path / "c", "15.2.7", beams)
    got27 = _kinds(compare_releases(old, new27))
    assert "module_refused_by_new_emulator" not in got27 and got27["new_emulator_needed"]


@pytest.mark.parametrize("app", sorted(RESTART_TAKES_NEW))
def test_the_restart_takes_the_core_applications_from_the_new_release(tmp_path, app):
    """release_handler restarts on the new emulator with the new erts, kernel, stdlib
    and sasl: an old module of those that OTP 29 refuses is never loaded there, so it is
    not named; the same module in another application is."""
    beams = {"bi_binaries": EBIN / "bi_binaries.beam"}
    old = _release(tmp_path / "a", "13.1.5", beams, app=app)
    new = _release(tmp_path / "b", "17.1.1", beams, app=app)
    got = _kinds(compare_releases(old, new))
    assert got["new_emulator_needed"] and "module_refused_by_new_emulator" not in got
    other = _release(tmp_path / "c", "13.1.5", beams, app="mine")
    got = _kinds(compare_releases(other, _release(tmp_path / "d", "17.1.1", beams, app="mine")))
    assert [f.module for f in got["module_refused_by_new_emulator"]] == ["bi_binaries"]


def test_target_release_given_when_the_files_do_not_tell(tmp_path):
    """Two directories of beams (no .rel, no erts application): --target-otp names the
    new emulator, --otp the running one."""
    d = tmp_path / "beams"
    d.mkdir()
    (d / "bi_binaries.beam").write_bytes((EBIN / "bi_binaries.beam").read_bytes())
    assert _kinds(compare_releases(d, d)) == {}
    got = _kinds(compare_releases(d, d, running_otp=25, target_otp=29))
    assert [f.module for f in got["module_refused_by_new_emulator"]] == ["bi_binaries"]
    assert "new_emulator_needed" not in got      # no ERTS versions to compare


@pytest.mark.otp
@pytest.mark.slow
def test_otp_25_lib_tree_to_otp_29_agrees_with_otp_29s_loader():
    """Every module of OTP 25's lib tree the gate says OTP 29 refuses is one OTP 29's VM
    refuses, and the other way round."""
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_loader_rules
    from otp import require_otp
    host, rel = require_otp(25), require_otp(29)
    if not host.on_host:
        pytest.skip("OTP 25 is not the host's release")
    report = compare_releases(host.lib_dir, rel.lib_dir)
    got = _kinds(report)
    assert len(got.get("new_emulator_needed", [])) == 1
    said = {f.module for f in got.get("module_refused_by_new_emulator", [])}
    files = {os.path.basename(p)[:-5]: p for p in host.otp_beams()}
    with tempfile.TemporaryDirectory(prefix="emulator-", dir=os.path.join(rel.root, "tmp")) \
            as workdir:
        staged = {}
        for name, p in files.items():
            d = os.path.join(workdir, name)
            os.mkdir(d)
            q = os.path.join(d, os.path.basename(p))
            with open(p, "rb") as f, open(q, "wb") as g:
                g.write(f.read())
            staged[q] = name
        answers = gen_loader_rules.ask(rel, [(q,) for q in staged], workdir)
    refused = {name for q, name in staged.items() if answers[q][0] != "ok"}
    # Modules of OTP 25 that the gate reads (duplicates and the like aside), but for
    # those of the applications the restart takes from the new release.
    loaded = {name for name, src in report.old.modules.items()
              if src.app not in RESTART_TAKES_NEW}
    skipped = {name for name in refused & set(report.old.modules) if name not in loaded}
    refused &= loaded
    print(f"\nOTP 25 -> 29: {len(said)} modules of the running release refused by OTP 29, "
          f"OTP 29's VM refuses {len(refused)} (and {len(skipped)} of erts, kernel, "
          "stdlib and sasl, which the restart does not load)")
    assert said == refused
    assert len(said) > 10


def test_diff_target_otp(tmp_path):
    """diff --otp 25 --target-otp 29: the new version (OTP 29's compiler) is judged by
    OTP 29's loader, not flagged as too new for OTP 25; the old one (bs_test_unit) is
    refused by OTP 29; without --target-otp the new file is too new for OTP 25."""
    import json
    import subprocess
    import sys
    old = EBIN / "bi_binaries.beam"
    new = ROOT / "samples" / "otp29" / "ebin" / "bi_binaries.beam"

    def kinds(*extra):
        r = subprocess.run([sys.executable, "-m", "beaminspect", "diff", str(old), str(new),
                            "--format", "json", "--otp", "25", *extra],
                           capture_output=True, text=True, timeout=120)
        return {f["kind"]: f for f in json.loads(r.stdout)["findings"]}, r.returncode

    got, code = kinds("--target-otp", "29")
    assert "opcode_too_new" not in got and code == 1
    assert "old version" in got["module_refused_by_new_emulator"]["message"]
    assert got["new_emulator_needed"]["severity"] == "warning"
    got, _ = kinds()
    assert "opcode_too_new" in got and "new_emulator_needed" not in got


# -- what the restart starts new is not hot-loaded -------------------------------------

PAIRS = ROOT / "samples" / "pairs"


def _tree(root: Path, erts: str, apps: dict[str, tuple[str, dict[str, bytes], str | None]]
          ) -> Path:
    """A release at ``root``: ``apps`` maps each application to (version, its modules'
    bytes, its .appup text or None)."""
    for app, (vsn, beams, appup) in apps.items():
        ebin = root / "lib" / f"{app}-{vsn}" / "ebin"
        ebin.mkdir(parents=True)
        for name, data in beams.items():
            (ebin / f"{name}.beam").write_bytes(data)
        (ebin / f"{app}.app").write_text('{application,%s,[{vsn,"%s"},{modules,[%s]}]}.\n'
                                         % (app, vsn, ",".join(beams)))
        if appup is not None:
            (ebin / f"{app}.appup").write_text(appup)
    rel = root / "releases" / "1"
    rel.mkdir(parents=True)
    libs = ",".join('{%s,"%s"}' % (app, vsn) for app, (vsn, _b, _a) in apps.items())
    (rel / "demo.rel").write_text('{release,{"demo","1"},{erts,"%s"},[%s]}.\n' % (erts, libs))
    return root


def _loop(version: str) -> dict[str, bytes]:
    d = PAIRS / "local_loop_killed" / version
    return {"hl_local_loop_killed": (d / "hl_local_loop_killed.beam").read_bytes()}


@pytest.mark.parametrize("app,erts_new,killed", [
    ("stdlib", "17.1.1", False),     # OTP 25 -> 29: the restart starts the new stdlib
    ("kernel", "17.1.1", False),
    ("stdlib", "13.1.5", True),      # the same emulator: stdlib is hot-loaded
    ("mine", "17.1.1", True),        # other applications restart with their old code
])
def test_hot_load_findings_of_what_the_restart_starts_new(tmp_path, app, erts_new, killed):
    old = _tree(tmp_path / "a", "13.1.5", {app: ("1.0", _loop("v1"), None)})
    new = _tree(tmp_path / "b", erts_new, {app: ("1.0", _loop("v2"), None)})
    report = compare_releases(old, new)
    kinds = {f.kind for f in report.findings}
    assert ("purge_kills_local_loop" in kinds) is killed
    assert ("new_emulator_needed" in kinds) is (erts_new != "13.1.5")
    # The module's own report (its worst severity in the outputs) says the same.
    module = report.modules["hl_local_loop_killed"].report
    assert ("purge_kills_local_loop" in {f.kind for f in module.findings}) is killed
    assert (module.worst() == "error") is killed


@pytest.mark.parametrize("app,named", [("stdlib", False), ("mine", True)])
def test_appup_restart_new_emulator(tmp_path, app, named):
    """restart_new_emulator in stdlib's appup: the restart loads its new modules, none
    needs an instruction; in another application's appup it loads none of them."""
    appup = '{"1.1", [{"1.0", [restart_new_emulator]}], [{"1.0", [restart_new_emulator]}]}.\n'
    old = _tree(tmp_path / "a", "13.1.5", {app: ("1.0", _loop("v1"), None)})
    new = _tree(tmp_path / "b", "17.1.1", {app: ("1.1", _loop("v2"), appup)})
    kinds = {f.kind for f in compare_releases(old, new).findings}
    assert ("appup_missing_module" in kinds) is named


def _compare_compiled(tmp_path, erts_new: str, stdlib: dict, mine: dict):
    """compare_releases of two trees, on ERTS 13.1.5 and on ``erts_new``, whose stdlib
    and mine hold the modules ``{name: {1: source, 2: source or None}}`` of each
    version (None: not in version 2), compiled by erlc."""
    from gate_fixtures import compiled

    def tree(root, erts, v):
        def beams(mods):
            return {n: compiled(n, src[v]) for n, src in mods.items() if src[v]}
        return _tree(root, erts, {"stdlib": ("1.0", beams(stdlib), None),
                                  "mine": ("1.0", beams(mine), None)})
    return compare_releases(tree(tmp_path / "a", "13.1.5", 1),
                            tree(tmp_path / "b", erts_new, 2))


@pytest.mark.otp
@pytest.mark.parametrize("erts_new,ordered", [("17.1.1", False), ("13.1.5", True)])
def test_no_load_order_into_what_the_restart_starts_new(tmp_path, erts_new, ordered):
    """A module of another application newly calls a function added to a stdlib
    module: on another emulator, the restart has loaded the new stdlib before any
    upgrade instruction runs, so no order is asked for."""
    callee = {1: "-module(lo_callee).\n-export([f/0]).\nf() -> 1.\n",
              2: "-module(lo_callee).\n-export([f/0, g/0]).\nf() -> 1.\ng() -> 2.\n"}
    caller = {1: "-module(lo_caller).\n-export([h/0]).\nh() -> lo_callee:f().\n",
              2: "-module(lo_caller).\n-export([h/0]).\nh() -> lo_callee:g().\n"}
    report = _compare_compiled(tmp_path, erts_new, {"lo_callee": callee},
                               {"lo_caller": caller})
    found = [f for f in report.findings if f.kind == "load_order"]
    assert bool(found) is ordered
    assert ("lo_caller" in report.dep_mods) is ordered


def test_erts_needs_no_appup(tmp_path):
    """The erts application of a lib tree is upgraded by the emulator the .rel names,
    not by an appup: a new erts version without one is not appup_missing, a new
    version of another application without one is."""
    beams = _loop("v1")
    old = _tree(tmp_path / "a", "13.1.5", {"erts": ("13.1.5", beams, None),
                                          "mine": ("1.0", _loop("v1"), None)})
    new = _tree(tmp_path / "b", "17.1.1", {"erts": ("17.1.1", beams, None),
                                          "mine": ("1.1", _loop("v1"), None)})
    missing = {f.app for f in compare_releases(old, new).findings if f.kind == "appup_missing"}
    assert missing == {"mine"}


# -- the restart window: the new kernel, stdlib and sasl beside the old other code -----

def _sources(name: str, exports: str, body: str) -> str:
    return f"-module({name}).\n-export([{exports}]).\n{body}\n"


@pytest.mark.otp
@pytest.mark.parametrize("erts_new,caller_new,window,after", [
    # The caller stops calling g/0: only the restart window fails.
    ("17.1.1", "h() -> rw_lib:f().", True, False),
    # The same emulator: stdlib is hot-loaded with the rest, no restart window.
    ("13.1.5", "h() -> rw_lib:f().", False, False),
    # The caller keeps the call: it fails after the upgrade too, which says so alone.
    ("17.1.1", "h() -> rw_lib:g().", False, True),
    # The upgrade removes the caller: it runs in the window all the same.
    ("17.1.1", None, True, False),
])
def test_restart_window_old_caller_of_a_function_stdlib_drops(tmp_path, erts_new, caller_new,
                                                              window, after):
    lib = {1: _sources("rw_lib", "f/0, g/0", "f() -> 1.\ng() -> 2."),
           2: _sources("rw_lib", "f/0", "f() -> 1.")}
    user = {1: _sources("rw_user", "h/0", "h() -> rw_lib:g()."),
            2: caller_new and _sources("rw_user", "h/0", caller_new)}
    report = _compare_compiled(tmp_path, erts_new, {"rw_lib": lib}, {"rw_user": user})
    found = [f for f in report.findings if f.kind == "restart_window_undef"]
    assert bool(found) is window
    if window:
        [f] = found
        assert (f.module, f.function, f.app) == ("rw_user", "rw_lib:g/0", "mine")
        assert "no longer exports rw_lib:g/0" in f.message
        assert ("the upgrade removes it" in f.message) is (caller_new is None)
        assert f.location.endswith("a/lib/mine-1.0/ebin/rw_user.beam")
    still = [f for f in report.findings if f.kind == "export_removed_still_called"]
    assert bool(still) is after


@pytest.mark.otp
@pytest.mark.parametrize("erts_new,window", [("17.1.1", True), ("13.1.5", False)])
def test_restart_window_new_stdlib_calls_what_only_the_new_application_has(
        tmp_path, erts_new, window):
    """A stdlib module newly calls a function added to another application's module:
    on another emulator the restart starts the new stdlib beside the old module, which
    no DepMods orders; on the same one, the load order says which goes first."""
    core = {1: _sources("rw_core", "h/0", "h() -> 0."),
            2: _sources("rw_core", "h/0", "h() -> rw_app:g().")}
    app = {1: _sources("rw_app", "f/0", "f() -> 1."),
           2: _sources("rw_app", "f/0, g/0", "f() -> 1.\ng() -> 2.")}
    report = _compare_compiled(tmp_path, erts_new, {"rw_core": core}, {"rw_app": app})
    kinds = [f.kind for f in report.findings if f.module == "rw_core"]
    assert ("restart_window_undef" in kinds) is window
    assert ("load_order" in kinds) is not window
    assert ("rw_core" in report.dep_mods) is not window
    if window:
        [f] = [f for f in report.findings if f.kind == "restart_window_undef"]
        assert f.function == "rw_app:g/0" and "only the new rw_app exports g/0" in f.message


@pytest.mark.parametrize("erts_new", ["17.1.1", "13.1.5"])
def test_suggested_appups_on_an_emulator_change(tmp_path, erts_new):
    """On another emulator, stdlib's suggested appup is restart_new_emulator (as OTP's
    own appups say), erts gets none, and other applications load their modules; on the
    same emulator, stdlib loads its modules too."""
    from beaminspect.release.appup import suggest_appups
    ext = PAIRS / "external_loop_survives"

    def mine(v):
        return {"hl_external_loop_survives":
                (ext / v / "hl_external_loop_survives.beam").read_bytes()}
    old = _tree(tmp_path / "a", "13.1.5", {"erts": ("13.1.5", {}, None),
                                          "stdlib": ("1.0", _loop("v1"), None),
                                          "mine": ("1.0", mine("v1"), None)})
    new = _tree(tmp_path / "b", erts_new, {"erts": (erts_new, {}, None),
                                          "stdlib": ("1.1", _loop("v2"), None),
                                          "mine": ("1.1", mine("v2"), None)})
    got = suggest_appups(compare_releases(old, new))
    restart = erts_new != "13.1.5"
    assert "erts" not in got
    stdlib_up = got["stdlib"][1][0][1]
    assert (stdlib_up == ["restart_new_emulator"]) is restart
    assert got["stdlib"][2][0][1] == stdlib_up
    assert [i[0] for i in got["mine"][1][0][1]] == ["load_module"]
