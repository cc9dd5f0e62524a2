"""What the upgrade does to the node as it runs now: drift, old code, and each process's
fate, from the static hot-load reports (:mod:`beaminspect.analysis.hotload`) and a
:class:`~beaminspect.live.model.NodeSnapshot`.

A process's fate follows where it is when the load and the purge come (the purge kills
every process with a frame, current or a return address, in the old code):

* its innermost frame in a module the upgrade loads is the current function and it
  waits there: ``killed`` when the function is a receive loop closed by local calls or
  any other receive in the old code; ``at_risk`` when the loop re-enters through an
  external call (it moves to the new code only if a message comes between load and
  purge);
* that frame is a return address (the process is blocked in a call made from the old
  code): ``killed`` when it waits, since it returns into the old code;
* it is running (not waiting) in or under old code: ``at_risk``, killed if it is still
  there at the purge;
* no frame in those modules, but its initial call is one of them (a gen_server waiting
  in gen_server's loop): ``survives``, its next call into the module is external.
"""

from __future__ import annotations

from dataclasses import dataclass

from beaminspect.analysis.findings import Finding, effective_severity
from beaminspect.live.model import NodeSnapshot, ProcessInfo

__all__ = ["assess", "LiveAssessment", "ProcessFate", "FATES"]

FATES = ("killed", "at_risk", "survives")


@dataclass(frozen=True)
class ProcessFate:
    pid: str
    registered_name: str | None
    module: str
    current_function: str | None
    fate: str
    reason: str

    def to_dict(self) -> dict:
        return {"pid": self.pid, "registered_name": self.registered_name,
                "module": self.module, "current_function": self.current_function,
                "fate": self.fate, "reason": self.reason}


@dataclass(frozen=True)
class LiveAssessment:
    node: str
    otp_release: int
    erts_version: str
    drift: tuple            # (module, loaded_md5, old_md5)
    old_code: tuple         # module names with old code on the node
    processes: tuple        # ProcessFate
    findings: tuple         # Finding
    #: The upgrade restarts the node on another emulator before any hot load.
    restart: bool = False

    def to_dict(self) -> dict:
        return {
            "node": self.node,
            "otp_release": self.otp_release,
            "erts_version": self.erts_version,
            "restart": self.restart,
            "drift": [{"module": m, "loaded_md5": l, "old_md5": o} for m, l, o in self.drift],
            "old_code": list(self.old_code),
            "processes": [p.to_dict() for p in self.processes],
        }


def _who(p: ProcessInfo) -> str:
    return f"{p.pid} ({p.registered_name})" if p.registered_name else p.pid


def _fate(p: ProcessInfo, reports: dict) -> tuple[str, str, str] | None:
    """(module, fate, reason) for a process the upgrade concerns, else None; the
    innermost frame in the module comes first in the reason."""
    for i, (m, f, a) in enumerate(p.stack):
        if m not in reports:
            continue
        fa = f"{f}/{a}"
        rep = reports[m]
        if i == 0:
            if not p.waiting:
                return m, "at_risk", (f"running in {m}:{fa} ({p.status}): killed if it is "
                                      "still in the old code at the purge")
            if fa in rep.external_loops and fa not in rep.local_loops:
                return m, "at_risk", (f"waits in {m}:{fa}, a loop re-entered through an "
                                      "external call: it moves to the new code only if a "
                                      "message arrives between the load and the purge; "
                                      "otherwise the purge kills it")
            if fa in rep.local_loops:
                return m, "killed", (f"waits in {m}:{fa}, a receive loop closed by local "
                                     "calls: it stays in the old code and the purge kills it")
            return m, "killed", (f"waits in a receive in {m}:{fa}: it is still in the old "
                                 "code at the purge, which kills it")
        cm, cf, ca = p.stack[0]
        callee = f"{cm}:{cf}/{ca}"
        if p.waiting:
            return m, "killed", (f"blocked in {callee}, called from {m}:{fa}: it returns "
                                 "into the old code, so the purge kills it (with soft_purge "
                                 "the purge would wait for it instead)")
        return m, "at_risk", (f"runs {callee}, called from {m}:{fa}: it returns into the "
                              "old code and is killed if it is still there at the purge")
    if p.initial_call:
        m = p.initial_call.split(":", 1)[0]
        if m in reports:
            where = p.current_function or "another module"
            return m, "survives", (f"started as {p.initial_call}, now in {where}: none of "
                                   f"its frames is in {m}'s old code, so the purge leaves it "
                                   f"alone, and a later call into {m} is external and reaches "
                                   "the new code")
    return None


def assess(snap: NodeSnapshot, old_md5: dict, reports: dict, *,
           severities: dict | None = None, restart: bool = False) -> LiveAssessment:
    """Compare the node with the upgrade.  ``old_md5``: module -> MD5 (hex) of the OLD
    files, the code the prediction assumes is running; ``reports``: module ->
    :class:`~beaminspect.analysis.hotload.HotLoadReport` for each module the upgrade
    loads (its MD5 changes).  ``restart``: the upgrade moves to another emulator, so the
    node restarts before any hot load: no process running now meets the purge, and no
    old code is left to block a load."""
    findings: list[Finding] = []

    def add(kind, module, function, message):
        s = effective_severity(kind, None, severities)
        if s != "off":
            findings.append(Finding(kind, s, function, message, module=module,
                                    location=f"node {snap.node}"))

    drift = []
    for name, md5 in sorted(old_md5.items()):
        loaded = snap.modules.get(name)
        if loaded is not None and loaded.md5 is not None and loaded.md5 != md5:
            drift.append((name, loaded.md5, md5))
            add("live_drift", name, None,
                f"{name} on {snap.node} has MD5 {loaded.md5}, the old release's file "
                f"{md5}: the node runs other code than the release says (patched by "
                "hand, or another build), so "
                + ("the restart on the new emulator loses it: it loads the release's file"
                   if restart else "the prediction is about code it does not run"))
    if restart:
        add("live_restart", None, None,
            f"the upgrade restarts {snap.node} on a new emulator before it hot-loads "
            f"anything: the {len(snap.processes)} process(es) in the modules it loads end "
            "with the restart, and what the purge does is decided for the processes the "
            "restart starts")
        return LiveAssessment(snap.node, snap.otp_release, snap.erts_version, tuple(drift),
                              (), (), tuple(findings), restart=True)
    old_code = tuple(snap.old_code())
    for name in old_code:
        if name in reports:
            add("live_old_code", name, None,
                f"{name} still has old code on {snap.node}: loading it again fails "
                "(not_purged) until that code is purged, and the purge kills the processes "
                "still running it")
    fates = []
    for p in snap.processes:
        got = _fate(p, reports)
        if got is None:
            continue
        module, fate, reason = got
        fates.append(ProcessFate(p.pid, p.registered_name, module, p.current_function,
                                 fate, reason))
        frame = next((f"{m}:{f}/{a}" for m, f, a in p.stack if m == module),
                     p.current_function)
        if fate == "killed":
            add("live_process_killed", module, frame,
                f"process {_who(p)} on {snap.node}: {reason}")
        elif fate == "at_risk":
            add("live_process_at_risk", module, frame,
                f"process {_who(p)} on {snap.node}: {reason}")
    order = {f: i for i, f in enumerate(FATES)}
    fates.sort(key=lambda x: (order[x.fate], x.module, x.pid))
    return LiveAssessment(snap.node, snap.otp_release, snap.erts_version, tuple(drift),
                          old_code, tuple(fates), tuple(findings))
