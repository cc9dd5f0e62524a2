"""Renderings of a hot-load report (:class:`beaminspect.analysis.hotload.HotLoadReport`):
text (tabulate), JSON (the documented schema) and Markdown."""

from __future__ import annotations

from tabulate import tabulate

from beaminspect.render.table import table

from beaminspect.analysis.diff import STATUSES
from beaminspect.analysis.findings import MODULE_FIELDS
from beaminspect.render import markdown as md
from beaminspect.terms import to_json

#: Version of the JSON schema below; bumped on any incompatible change.
SCHEMA_VERSION = 1


def code_dict(code) -> list:
    """The ``code`` member: :func:`beaminspect.analysis.diff.code_diff` as JSON."""
    return [{"function": fc.function, "file": fc.file,
             "hunks": [{"old_start": h.old_start, "old_count": h.old_count,
                        "new_start": h.new_start, "new_count": h.new_count,
                        "lines": [{"op": ln.op, "text": ln.text, "line": ln.line}
                                  for ln in h.lines]} for h in fc.hunks]}
            for fc in code]


def code_lines(fc) -> list[str]:
    """One changed function as a unified diff: each instruction after its source line
    (blank when it has none)."""
    out = [f"--- {fc.function} (old)", f"+++ {fc.function} (new)"
           + (f" {fc.file}" if fc.file else "")]
    for h in fc.hunks:
        out.append(f"@@ -{h.old_start},{h.old_count} +{h.new_start},{h.new_count} @@")
        out += [f"{ln.op}{'' if ln.line is None else ln.line:>6}  {ln.text}" for ln in h.lines]
    return out


def report_dict(report, live=None, code=None) -> dict:
    """The ``beaminspect diff --format json`` object (schema in the README); ``code``,
    the module's :func:`~beaminspect.analysis.diff.code_diff`, adds the ``code``
    member."""
    d = report.diff
    out = {
        "schema": SCHEMA_VERSION,
        "module": d.module,
        "files": {"old": d.old_file, "new": d.new_file},
        "md5": {"old": d.md5_old.hex(), "new": d.md5_new.hex()},
        "reload_needed": d.reload_needed,
        "exports": {"added": list(d.exports_added), "removed": list(d.exports_removed),
                    "kept": list(d.exports_kept)},
        "labels": [{"function": c.function, "old": c.old, "new": c.new} for c in d.labels],
        "functions": {s: list(d.by_status(s)) for s in STATUSES},
        "lambdas": {"added": list(d.lambdas_added), "removed": list(d.lambdas_removed),
                    "changed": list(d.lambdas_changed),
                    "invalidated": list(d.lambdas_invalidated),
                    "uses": [{"fun": u.fun, "function": u.function, "class": u.cls,
                              "where": u.where} for u in report.fun_uses]},
        "imports": {"added": list(d.imports_added), "removed": list(d.imports_removed)},
        "attributes": {k: {"old": None if v["old"] is None else to_json(v["old"]),
                           "new": None if v["new"] is None else to_json(v["new"])}
                       for k, v in d.attributes.items()},
        "compile_options_changed": bool(d.compile_options),
        "literals": dict(d.literals),
        "strings_changed": d.strings_changed,
        "chunks_changed": list(d.chunks_changed),
        "findings": [f.to_dict(MODULE_FIELDS) for f in report.findings],
    }
    if live is not None:
        from beaminspect.render.live_out import live_dict
        out["live"] = live_dict(live)
    if code is not None:
        out["code"] = code_dict(code)
    return out


def _summary(report) -> list[str]:
    d = report.diff
    counts = {s: len(d.by_status(s)) for s in STATUSES}
    sev = {}
    for f in report.findings:
        sev[f.severity] = sev.get(f.severity, 0) + 1
    lines = [
        f"module {d.module}: {d.old_file} -> {d.new_file}",
        f"md5 {d.md5_old.hex()} -> {d.md5_new.hex()}"
        + ("" if d.reload_needed else " (unchanged: no reload needed)"),
        "functions: " + ", ".join(f"{n} {s.replace('_', '-')}" for s, n in counts.items()),
        f"exports: {len(d.exports_added)} added, {len(d.exports_removed)} removed, "
        f"{len(d.exports_kept)} kept; funs invalidated by the purge: {len(d.lambdas_invalidated)}",
        "findings: " + (", ".join(f"{sev[s]} {s}" for s in ("error", "warning", "info") if s in sev)
                        or "none"),
    ]
    return lines


def render_text(report, live=None, code=None) -> str:
    d = report.diff
    out = _summary(report)
    if report.findings:
        out += ["", "Findings",
                table([(f.severity, f.kind, f.function or "-", f.message)
                       for f in report.findings],
                      ["severity", "kind", "function", "message"], wrap=3)]
    rows = [(f.mfa, f.status.replace("_", "-"), f.old_entry if f.old_entry is not None else "-",
             f.new_entry if f.new_entry is not None else "-")
            for f in d.functions if f.status != "unchanged"]
    if rows:
        out += ["", "Functions (unchanged ones left out)",
                tabulate(rows, headers=["function", "status", "old entry", "new entry"],
                         tablefmt="simple")]
    if d.exports_added or d.exports_removed:
        out += ["", "Exports",
                tabulate([("added", e) for e in d.exports_added] +
                         [("removed", e) for e in d.exports_removed],
                         headers=["change", "export"], tablefmt="simple")]
    moved = [(c.function, c.old, c.new) for c in d.labels if c.old != c.new]
    if moved:
        out += ["", "Export entry labels (old -> new)",
                tabulate(moved, headers=["export", "old label", "new label"], tablefmt="simple")]
    lam = ([("added", x) for x in d.lambdas_added] + [("removed", x) for x in d.lambdas_removed] +
           [("changed", x) for x in d.lambdas_changed])
    if lam:
        out += ["", "Funs", tabulate(lam, headers=["change", "fun"], tablefmt="simple")]
    if d.imports_added or d.imports_removed:
        out += ["", "Imports",
                tabulate([("added", x) for x in d.imports_added] +
                         [("removed", x) for x in d.imports_removed],
                         headers=["change", "import"], tablefmt="simple")]
    if d.attributes:
        from beaminspect.render.text import display_term
        out += ["", "Attributes",
                tabulate([(k, display_term(v["old"]) if v["old"] is not None else "-",
                           display_term(v["new"]) if v["new"] is not None else "-")
                          for k, v in d.attributes.items()],
                         headers=["attribute", "old", "new"], tablefmt="simple")]
    if live is not None:
        from beaminspect.render.live_out import live_text
        out += live_text(live)
    if code:
        out += ["", "Code of the changed functions (labels numbered within each function)"]
        for fc in code:
            out += [""] + code_lines(fc)
    return "\n".join(out)


def render_markdown(report, live=None, code=None) -> str:
    d = report.diff
    out = [f"### {md.code(d.module)}: hot-load report", ""]
    out += [f"- {line}" for line in _summary(report)[1:]]
    if report.findings:
        out += ["", "| severity | kind | function | message |", "|---|---|---|---|"]
        for f in report.findings:
            out.append(f"| {f.severity} | {md.code(f.kind)} | {md.code(f.function)} | {md.escape(f.message)} |")
    changed = [f for f in d.functions if f.status != "unchanged"]
    if changed:
        out += ["", "<details><summary>Functions</summary>", "",
                "| function | status | old entry | new entry |", "|---|---|---|---|"]
        for f in changed:
            out.append(f"| {md.code(f.mfa)} | {f.status} | {f.old_entry if f.old_entry is not None else '-'}"
                       f" | {f.new_entry if f.new_entry is not None else '-'} |")
        out += ["", "</details>"]
    if live is not None:
        from beaminspect.render.live_out import live_markdown
        out += live_markdown(live)
    for fc in code or ():
        body = "\n".join(code_lines(fc))
        ticks = md.fence(body)
        changed = sum(1 for h in fc.hunks for ln in h.lines if ln.op != " ")
        out += ["", f"<details><summary>Code of <code>{_html(fc.function)}</code> "
                f"({changed} instructions differ)</summary>", "",
                ticks + "diff", body, ticks, "", "</details>"]
    return "\n".join(out)


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
