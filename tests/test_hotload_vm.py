"""Predictions of `beaminspect diff` against what the running VM does.

For every pair under samples/pairs/, the harness (tests/vm/hotload.escript) loads v1,
starts the scenario's processes and funs, loads v2, purges, and reports what happened.
The test asserts, both ways, that the static prediction matches: every predicted kill,
badfun and undef happens, and nothing the VM did went unpredicted.  It runs on every
release tests/otp.py can start: OTP 25 on the host, OTP 27 and 29 in their roots (the
pairs' beams, built by OTP 25's compiler, load on all three).
"""

import pytest

import beaminspect
from beaminspect.analysis.hotload import analyse
from otp import needs_erl, require_otp
from vm.observe import observe, pair_beams, pair_names

pytestmark = [needs_erl, pytest.mark.otp]

PAIRS = pair_names()
RELEASES = (25, 27, 29)


def predict_proc(report, label: str, nudge) -> bool:
    """True when the purge is predicted to kill a process running ``label``."""
    if label in report.mixed_loops:
        pass
    elif label in report.local_loops or label in report.blocking_calls:
        return True
    if label in report.external_loops:
        # Moves to the new code on its next message; killed if it got none.
        return nudge == "none"
    if label in report.mixed_loops:
        # Local and external back-edges: only a message whose branch re-enters through
        # ?MODULE:loop(...) moves the process.  The scenarios send that message as their
        # own nudge; a probe or silence keeps it on the local path.
        return nudge in ("none", "probe", None)
    return False


def predict_badfun(report, old, fun_info: dict) -> bool:
    """A fun made by the old code raises badfun after the purge when the MD5 changed.
    The harness tells which fun it holds (local: module and FunT index; external: M:F/A)."""
    if fun_info.get("type") != "local" or fun_info.get("module") != old.name:
        return False
    by_index = {lam.index: f"{lam.name}/{lam.arity}" for lam in old.lambdas}
    key = by_index.get(fun_info.get("index"))
    return key is not None and key in report.diff.lambdas_invalidated


def predict_fun_finding(report, old, fun_info: dict) -> bool:
    """A fun_invalidated finding at warning or above names the function that made the
    fun the harness holds (found through the fun's FunT index)."""
    if fun_info.get("type") != "local" or fun_info.get("module") != old.name:
        return False
    by_index = {lam.index: f"{lam.name}/{lam.arity}" for lam in old.lambdas}
    key = by_index.get(fun_info.get("index"))
    makers = {u.function for u in report.fun_uses if u.fun == key}
    return any(f.kind == "fun_invalidated" and f.severity in ("warning", "error")
               and f.function in makers for f in report.findings)


def predict_undef(report, label: str) -> bool:
    return label in report.diff.exports_removed


#: Findings that say the state or the callbacks of a behaviour no longer fit what its
#: processes hold or receive: their next callback crashes after a plain load.
CRASH_ANY_UPGRADE = ("state_change_without_code_change", "callback_removed")


def predict_crash(report, upgrade: str | None) -> bool:
    """A process that survives the purge crashes in its next callback: the state or
    the callback it needs changed, and (with a code_change that converts it) the
    process was not upgraded through sys:change_code."""
    kinds = {f.kind for f in report.findings if f.severity == "error"}
    if kinds & set(CRASH_ANY_UPGRADE):
        return True
    advanced = any(f.kind == "code_change_needs_advanced_update" for f in report.findings)
    return advanced and upgrade != "sys"


def compare(name: str, release: int = 25):
    v1, v2 = pair_beams(name)
    old = beaminspect.load(v1)
    report = analyse(old, beaminspect.load(v2))
    records = observe(v1, v2, release=require_otp(release))
    load_ok = next(r for r in records if r["kind"] == "load" and r["version"] == "v2")["result"] == "ok"
    rows = []  # (what, label, predicted, observed)
    for r in records:
        if r["kind"] == "proc":
            observed = bool(r.get("killed"))
            predicted = predict_proc(report, r["label"], r.get("nudge")) if load_ok else False
            rows.append(("killed", r["label"], predicted, observed))
            if not observed:
                crashed = r.get("final") not in ("alive", "normal", None)
                rows.append(("crashed", r["label"],
                             predict_crash(report, r.get("upgrade")) if load_ok else False,
                             crashed))
        elif r["kind"] == "fun":
            observed = r["result"]["status"] == "badfun"
            predicted = predict_badfun(report, old, r["fun_info"]) if load_ok else False
            rows.append(("badfun", r["label"], predicted, observed))
            # The finding, not only the invalidation: said at warning or above exactly
            # for the funs that break.
            warned = predict_fun_finding(report, old, r["fun_info"]) if load_ok else False
            rows.append(("badfun finding", r["label"], warned, observed))
        elif r["kind"] == "call":
            observed = r["result"]["status"] == "undef"
            predicted = predict_undef(report, r["label"]) if load_ok else False
            rows.append(("undef", r["label"], predicted, observed))
    return report, load_ok, rows


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
@pytest.mark.parametrize("name", PAIRS)
def test_prediction_matches_the_vm(name, release):
    report, load_ok, rows = compare(name, release)
    assert rows, f"{name}: the scenario observed nothing"
    wrong = [r for r in rows if r[2] != r[3]]
    assert not wrong, f"{name}: (what, label, predicted, observed) disagree: {wrong}"
    if not load_ok:
        # The VM refused v2 (its on_load failed): the report must have warned about on_load.
        assert any(f.kind == "on_load_changed" for f in report.findings), name


def test_every_finding_kind_about_processes_is_exercised():
    kinds = set()
    for name in PAIRS:
        v1, v2 = pair_beams(name)
        kinds |= {f.kind for f in analyse(beaminspect.load(v1), beaminspect.load(v2)).findings}
    for k in ("purge_kills_local_loop", "purge_kills_idle_external_loop",
              "purge_kills_blocked_call", "fun_invalidated", "export_removed"):
        assert k in kinds, k
