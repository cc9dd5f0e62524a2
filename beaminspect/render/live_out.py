"""What a node runs (``beaminspect live``) and the ``live`` section of ``diff`` and
``gate`` reports with ``--node``."""

from __future__ import annotations

from tabulate import tabulate

from beaminspect.render.table import table

__all__ = ["snapshot_dict", "render_snapshot_text", "live_dict", "live_text",
           "live_markdown"]


def snapshot_dict(snap) -> dict:
    """The ``beaminspect live --json`` document."""
    from beaminspect import __version__
    return {"tool": {"name": "beaminspect", "version": __version__}, **snap.to_dict()}


def render_snapshot_text(snap) -> str:
    old = snap.old_code()
    out = [f"Node {snap.node}: OTP {snap.otp_release}, ERTS {snap.erts_version}",
           f"{len(snap.modules)} modules loaded, {len(old)} with old code"
           + (f" ({', '.join(old)})" if old else "")
           + f"; {len(snap.processes)} processes"]
    rows = []
    for p in snap.processes:
        rows.append((p.pid, p.registered_name or "-", p.initial_call or "-",
                     p.current_function or "-", "yes" if p.waiting else "no"))
    if rows:
        out += ["", "Processes",
                tabulate(rows, headers=["pid", "name", "initial call", "current function",
                                        "waiting"], tablefmt="simple")]
    by_module = [(m.name, m.md5 or "-", "yes" if m.old_code else "no",
                  " ".join(p.pid for p in snap.running(m.name)) or "-")
                 for m in snap.modules.values()]
    out += ["", "Modules",
            tabulate(by_module, headers=["module", "md5", "old code", "processes in it"],
                     tablefmt="simple")]
    return "\n".join(out)


def live_dict(assessment) -> dict:
    """The ``live`` object of the ``diff`` and ``gate`` JSON reports."""
    return assessment.to_dict()


def _counts(a) -> str:
    if a.restart:
        return (f"the upgrade restarts it on a new emulator, which ends its processes "
                f"before any hot load; {len(a.drift)} drifted module(s)")
    n = {f: 0 for f in ("killed", "at_risk", "survives")}
    for p in a.processes:
        n[p.fate] += 1
    return (f"{n['killed']} killed, {n['at_risk']} at risk, {n['survives']} survive; "
            f"{len(a.drift)} drifted module(s); old code in {len(a.old_code)}")


def live_text(a) -> list[str]:
    out = ["", f"Node {a.node} (OTP {a.otp_release}, ERTS {a.erts_version}): {_counts(a)}"]
    if a.drift:
        out += [tabulate(a.drift, headers=["drifted module", "loaded md5", "old md5"],
                         tablefmt="simple")]
    if a.processes:
        out += [table([(p.fate, p.pid, p.registered_name or "-", p.current_function or "-",
                        p.reason) for p in a.processes],
                      ["fate", "pid", "name", "current function", "why"], wrap=4)]
    return out


def live_markdown(a) -> list[str]:
    out = ["", f"#### Node `{a.node}` (OTP {a.otp_release})", "", f"{_counts(a)}."]
    if a.processes:
        out += ["", "| fate | pid | name | current function | why |", "|---|---|---|---|---|"]
        for p in a.processes:
            out.append(f"| {p.fate} | `{p.pid}` | {('`' + p.registered_name + '`') if p.registered_name else '-'}"
                       f" | {('`' + p.current_function + '`') if p.current_function else '-'}"
                       f" | {p.reason.replace('|', chr(92) + '|')} |")
    return out
