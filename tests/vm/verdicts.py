"""What the VM said about each prediction and each finding of a pair.

    from vm.verdicts import judge
    j = judge(report, old_module, records, new_module)   # records: vm.observe.observe(...)
    j.rows       # (what, label, predicted, observed) per observation
    j.findings   # (finding, verdict) per finding at warning or above
    j.breaks     # (what, label, warned) per break the VM showed

A finding's verdict is ``confirmed`` (the VM did what it says), ``refuted`` (the
scenario ran what it is about and the VM did not break it) or ``unobserved`` (the
scenario does not run what it is about, or the finding is not about something the
VM does).  Breaks are kills, crashes after the purge, badfuns, undefs and failed
loads; ``warned`` says whether a finding at warning or above foretold it.

Run directly for precision and recall over every pair, per release:

    python tests/vm/verdicts.py [--otp 25,27,29]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

KILL_KINDS = ("purge_kills_local_loop", "purge_kills_idle_external_loop",
              "purge_kills_blocked_call")
#: Findings that say the state or the callbacks of a behaviour no longer fit what its
#: processes hold or receive: their next callback crashes after a plain load.
CRASH_ANY_UPGRADE = ("state_change_without_code_change", "callback_removed",
                     "callbacks_changed_without_code_change")
LOUD = ("warning", "error")


def _loud(f) -> bool:
    return f.severity in LOUD


def fun_maker(old, fun_info: dict) -> str | None:
    """The FunT entry (name/arity) of a local fun of ``old`` the harness holds."""
    if fun_info.get("type") != "local" or fun_info.get("module") != old.name:
        return None
    by_index = {lam.index: f"{lam.name}/{lam.arity}" for lam in old.lambdas}
    return by_index.get(fun_info.get("index"))


def predict_proc(report, label: str, nudge) -> bool:
    """True when the purge is predicted to kill a process running ``label``."""
    if label in report.mixed_loops:
        # Local and external back-edges: only a message whose branch re-enters through
        # ?MODULE:loop(...) moves the process.  The scenarios send that message as their
        # own nudge; a probe or silence keeps it on the local path.
        return nudge in ("none", "probe", None)
    if label in report.local_loops or label in report.blocking_calls:
        return True
    if label in report.external_loops:
        # Moves to the new code on its next message; killed if it got none.
        return nudge == "none"
    return False


def predict_badfun(report, old, fun_info: dict) -> bool:
    """A fun made by the old code raises badfun after the purge when the MD5 changed."""
    key = fun_maker(old, fun_info)
    return key is not None and key in report.diff.lambdas_invalidated


def fun_findings(report, old, fun_info: dict) -> list:
    """fun_invalidated findings at warning or above naming the function that made the
    fun the harness holds."""
    key = fun_maker(old, fun_info)
    if key is None:
        return []
    makers = {u.function for u in report.fun_uses if u.fun == key}
    return [f for f in report.findings if f.kind == "fun_invalidated" and _loud(f)
            and f.function in makers]


def crash_findings(report, upgrade: str | None) -> list:
    """Findings at warning or above that foretell a crash in the next callback of a
    process that survives the purge (upgraded by ``upgrade``: load or sys)."""
    out = [f for f in report.findings if f.kind in CRASH_ANY_UPGRADE and _loud(f)]
    if upgrade != "sys":
        out += [f for f in report.findings
                if f.kind == "code_change_needs_advanced_update" and _loud(f)]
    return out


def predict_undef(report, label: str) -> bool:
    return label in report.diff.exports_removed


@dataclass
class Judgement:
    load_ok: bool
    rows: list        # (what, label, predicted, observed)
    findings: list    # (finding, verdict)
    breaks: list      # (what, label, warned)


def _crashed(r) -> bool:
    return not r.get("killed") and r.get("final") not in ("alive", "normal", None)


def judge(report, old, records, new=None) -> Judgement:
    """Rows, finding verdicts and breaks for one pair.  When the MD5 is unchanged the
    verdict is "do not load it" and what a load would do anyway is said at info: the
    harness loads it anyway, and there a break is foretold by a finding at any
    severity."""
    return _judge(report, old, records,
                  _loud if report.diff.reload_needed else (lambda f: True), new)


def _judge(report, old, records, foretells, new=None) -> Judgement:
    load = next(r for r in records if r["kind"] == "load" and r["version"] == "v2")
    load_ok = load["result"] == "ok"
    procs = [r for r in records if r["kind"] == "proc"]
    funs = [r for r in records if r["kind"] == "fun"]
    calls = [r for r in records if r["kind"] == "call"]
    children = _children(old, new, records)
    rows, breaks = [], []
    kill_warned = {f.function for f in report.findings
                   if f.kind in KILL_KINDS and foretells(f)}
    for r in procs:
        observed = bool(r.get("killed"))
        predicted = predict_proc(report, r["label"], r.get("nudge")) if load_ok else False
        rows.append(("killed", r["label"], predicted, observed))
        if observed:
            breaks.append(("killed", r["label"], r["label"] in kill_warned))
        else:
            crashed = _crashed(r)
            warned = bool(crash_findings(report, r.get("upgrade"))) if load_ok else False
            rows.append(("crashed", r["label"], warned, crashed))
            if crashed:
                breaks.append(("crashed", r["label"], warned))
    for r in funs:
        observed = r["result"]["status"] == "badfun"
        predicted = predict_badfun(report, old, r["fun_info"]) if load_ok else False
        rows.append(("badfun", r["label"], predicted, observed))
        # The finding, not only the invalidation: said at warning or above exactly
        # for the funs that break.
        warned = bool(fun_findings(report, old, r["fun_info"])) if load_ok else False
        rows.append(("badfun finding", r["label"], warned, observed))
        if observed:
            breaks.append(("badfun", r["label"], warned))
    for r in calls:
        status = r["result"]["status"]
        observed = status == "undef"
        predicted = predict_undef(report, r["label"]) if load_ok else False
        rows.append(("undef", r["label"], predicted, observed))
        if observed:
            breaks.append(("undef", r["label"], any(
                f.kind == "export_removed" and f.function == r["label"] and foretells(f)
                for f in report.findings)))
        elif status != "ok" and r["before"]["status"] == "ok":
            # A call that worked before the load and fails after it (into a server that
            # crashed on its state): the crash's finding.
            breaks.append(("call failed", r["label"], any(
                f.kind in CRASH_ANY_UPGRADE + ("code_change_needs_advanced_update",)
                and foretells(f) for f in report.findings)))
    for label, predicted, observed in children:
        rows.append(("children", label, predicted, observed))
    if not load_ok:
        breaks.append(("load failed", None, any(
            f.kind in ("on_load_changed", "nif_changed", "opcode_too_new") and foretells(f)
            for f in report.findings)))

    verdicts = []
    for f in report.findings:
        if not _loud(f):
            continue
        verdicts.append((f, _verdict(f, report, old, load_ok, procs, funs, calls,
                                     children)))
    return Judgement(load_ok, rows, verdicts, breaks)


def _children(old, new, records) -> list:
    """``(label, predicted, observed)`` per ``children`` record: the supervisor's child
    ids and whether each runs after the upgrade, ``((running...), (stopped...))``.

    Predicted from the static child ids (beaminspect.analysis.supervisor): a
    supervisor upgraded through sys:change_code keeps every old child running and lists
    the added ones stopped; one only reloaded keeps the old children as they were."""
    from beaminspect.analysis.supervisor import child_ids
    procs = [r for r in records if r["kind"] == "proc"]
    kids = [r for r in records if r["kind"] == "children"]
    if not kids:
        return []
    a = child_ids(old) or frozenset()
    b = (child_ids(new) if new is not None else None) or a
    out = []
    # The n-th children record is about the supervisor of the n-th proc record with its
    # label (the scenarios list them in the same order).
    sups = [p for p in procs if p["label"] in {k["label"] for k in kids}]
    for k, sup in zip(kids, sups):
        if sup.get("upgrade") == "sys" and sup.get("change_code", {}).get("status") == "ok":
            predicted = (tuple(sorted(a)), tuple(sorted(b - a)))
        else:
            predicted = (tuple(sorted(a)), ())
        observed = (tuple(sorted(c["id"] for c in k["children"] if c["running"])),
                    tuple(sorted(c["id"] for c in k["children"] if not c["running"])))
        out.append((k["label"], predicted, observed))
    return out


def _verdict(f, report, old, load_ok, procs, funs, calls, children=()) -> str:
    if f.kind in ("on_load_changed", "nif_changed", "opcode_too_new"):
        return "confirmed" if not load_ok else "unobserved"
    if not load_ok:
        return "unobserved"
    if f.kind in KILL_KINDS:
        judged = [r for r in procs if r["label"] == f.function]
        if f.kind == "purge_kills_idle_external_loop":
            judged = [r for r in judged if r.get("nudge") == "none"]
        elif f.function in report.mixed_loops:
            judged = [r for r in judged if r.get("nudge") in ("none", "probe", None)]
        if not judged:
            return "unobserved"
        return "confirmed" if any(r.get("killed") for r in judged) else "refuted"
    if f.kind == "export_removed":
        judged = [r for r in calls if r["label"] == f.function]
        if not judged:
            return "unobserved"
        return ("confirmed" if any(r["result"]["status"] == "undef" for r in judged)
                else "refuted")
    if f.kind == "fun_invalidated":
        judged = [r for r in funs if f in fun_findings(report, old, r["fun_info"])]
        if not judged:
            return "unobserved"
        return ("confirmed" if any(r["result"]["status"] == "badfun" for r in judged)
                else "refuted")
    if f.kind in CRASH_ANY_UPGRADE or f.kind == "code_change_needs_advanced_update":
        judged = [r for r in procs if not r.get("killed")
                  and f in crash_findings(report, r.get("upgrade"))]
        if not judged:
            return "unobserved"
        return "confirmed" if any(_crashed(r) for r in judged) else "refuted"
    if f.kind == "supervisor_children_changed":
        # Confirmed when an upgraded supervisor shows what the finding says: added
        # children listed but not started, removed ones still running.
        if not children:
            return "unobserved"
        return ("confirmed" if all(p == o for _l, p, o in children)
                and any(p[1] or o[1] for _l, p, o in children) else "refuted")
    return "unobserved"


def main(argv) -> int:
    import beaminspect
    from beaminspect.analysis.hotload import analyse
    from beaminspect.analysis.waits import WaitIndex
    from otp import otp
    from vm.observe import observe, pair_beams, pair_names

    releases = [25, 27, 29]
    if "--otp" in argv:
        releases = [int(x) for x in argv[argv.index("--otp") + 1].split(",")]
    for rel in releases:
        release = otp(rel)
        if not release.available:
            print(f"OTP {rel}: {release.skip_reason}")
            continue
        # Which calls block, read from the release's own OTP and Elixir code.
        waits = WaitIndex.from_code_path(release.code_path)
        counts = {"confirmed": 0, "refuted": 0, "unobserved": 0}
        warned = total = 0
        notes = []
        for name in pair_names():
            v1, v2 = pair_beams(name)
            old, new = beaminspect.load(v1), beaminspect.load(v2)
            report = analyse(old, new, waits=waits)
            j = judge(report, old, observe(v1, v2, release=release), new)
            for f, v in j.findings:
                counts[v] += 1
                if v != "confirmed":
                    notes.append(f"  {v}: {name}: {f.severity} {f.kind} {f.function or ''}")
            for what, label, w in j.breaks:
                total += 1
                warned += w
                if not w:
                    notes.append(f"  missed: {name}: {what} {label or ''}")
        loud = sum(counts.values())
        print(f"OTP {rel}: {len(pair_names())} pairs; warnings and errors: {loud}, "
              f"confirmed {counts['confirmed']}, refuted {counts['refuted']}, not observed "
              f"by the scenarios {counts['unobserved']}; precision "
              f"{counts['confirmed']}/{loud} = {counts['confirmed'] / max(loud, 1):.2f} "
              f"(of the observed: {counts['confirmed']}/"
              f"{counts['confirmed'] + counts['refuted']}); recall {warned}/{total} = "
              f"{warned / max(total, 1):.2f}")
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
