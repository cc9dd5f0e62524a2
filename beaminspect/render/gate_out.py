"""Renderings of a release comparison (:class:`beaminspect.release.gate.GateReport`): text
(summary, then tables), JSON (``schemas/gate.schema.json``), Markdown for a pull-request
comment, and SARIF 2.1.0 for code-scanning tools."""

from __future__ import annotations

from beaminspect._version import __version__
from beaminspect.analysis.diff import STATUSES
from beaminspect.analysis.findings import KINDS, Kind
from beaminspect.render import markdown as md

#: Version of the JSON document; bumped on any incompatible change.
SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _release_dict(rel, root: str) -> dict:
    cur = rel.current_rel
    return {
        "path": root,
        "release": {"name": cur.name, "vsn": cur.vsn} if cur is not None else None,
        "modules": len(rel.modules),
        "applications": len(rel.apps),
    }


def _change_dict(ch) -> dict:
    d = {"module": ch.name, "old_app": ch.old_app, "new_app": ch.new_app,
         "old_path": ch.old_path, "new_path": ch.new_path}
    if ch.status == "changed":
        r = ch.report
        if r is not None:
            diff = r.diff
            d.update({
                "md5": {"old": diff.md5_old.hex(), "new": diff.md5_new.hex()},
                "functions": {s: list(diff.by_status(s))
                              for s in STATUSES if s != "unchanged"},
                "exports": {"added": list(diff.exports_added),
                            "removed": list(diff.exports_removed)},
                "state_changed": ch.state_changed,
                "worst": r.worst(),
            })
        d["error"] = ch.error
    if ch.status == "unchanged":
        d["bytes_identical"] = ch.bytes_identical
    return d


def report_dict(report, fail_on: str = "error", live=None) -> dict:
    """The ``beaminspect gate --format json`` document."""
    out = {
        "schema": SCHEMA_VERSION,
        "tool": {"name": "beaminspect", "version": __version__},
        "old": _release_dict(report.old, report.old_root),
        "new": _release_dict(report.new, report.new_root),
        "summary": {
            "modules": report.counts(),
            "findings": report.severity_counts(),
            "fail_on": fail_on,
            "passed": not report.failed(fail_on),
        },
        "applications": [{"app": a, "old_vsn": o, "new_vsn": n}
                         for a, o, n in report.app_versions()],
        "modules": {s: [_change_dict(c) for c in report.by_status(s)]
                    for s in ("added", "removed", "changed", "unchanged")},
        "load_order": {m: list(d) for m, d in report.dep_mods.items()},
        "findings": [f.to_dict() for f in report.findings],
        "policy": {"source": report.policy.source,
                   "severities": dict(sorted(report.policy.severities.items())),
                   "external": sorted(report.policy.external)},
    }
    if live is not None:
        from beaminspect.render.live_out import live_dict
        out["live"] = live_dict(live)
    return out


def _summary_lines(report, fail_on: str) -> list[str]:
    c = report.counts()
    s = report.severity_counts()
    verdict = "FAILED" if report.failed(fail_on) else "passed"
    return [
        f"gate {verdict} (fail on {fail_on}): {report.old_root} -> {report.new_root}",
        f"modules: {c['added']} added, {c['removed']} removed, {c['changed']} changed, "
        f"{c['unchanged']} unchanged",
        f"findings: {s['error']} error, {s['warning']} warning, {s['info']} info",
    ]


def _clip(s: str | None, n: int = 60) -> str:
    if not s:
        return "-"
    return s if len(s) <= n else "..." + s[-(n - 3):]


def render_text(report, fail_on: str = "error", live=None) -> str:
    from tabulate import tabulate       # only the text report needs it

    from beaminspect.render.table import table
    out = _summary_lines(report, fail_on)
    apps = [(a, o or "-", n or "-") for a, o, n in report.app_versions() if o != n]
    if apps:
        out += ["", "Applications (version changes)",
                tabulate(apps, headers=["application", "old", "new"], tablefmt="simple",
                         disable_numparse=True)]
    if report.findings:
        out += ["", "Findings",
                table([(f.severity, f.kind, f.module or "-", f.function or "-", f.message)
                       for f in report.findings],
                      ["severity", "kind", "module", "function", "message"], wrap=4,
                      disable_numparse=True)]
    rows = []
    for status in ("added", "removed", "changed"):
        for ch in report.by_status(status):
            detail = ""
            if ch.error:
                detail = "unreadable"
            elif ch.report is not None:
                d = ch.report.diff
                detail = (f"{len(d.by_status('changed'))} fn changed, "
                          f"{len(d.by_status('added'))} added, {len(d.by_status('removed'))} removed")
            app = ch.app if ch.old_app == ch.new_app or ch.old_app is None or \
                ch.new_app is None else f"{ch.old_app} -> {ch.new_app}"
            rows.append((ch.name, status, app or "-", detail or "-"))
    if rows:
        out += ["", "Modules (unchanged ones left out)",
                tabulate(rows, headers=["module", "status", "application", "details"],
                         tablefmt="simple", disable_numparse=True)]
    if report.dep_mods:
        out += ["", "Load order (DepMods: load these first)",
                table([(m, ", ".join(d)) for m, d in report.dep_mods.items()],
                      ["module", "depends on"], wrap=1, disable_numparse=True)]
    if live is not None:
        from beaminspect.render.live_out import live_text
        out += live_text(live)
    return "\n".join(out)


#: GitHub refuses a comment body over 65,536 characters; the Markdown report stays under
#: this, with room for what a CI job adds around it.
MARKDOWN_LIMIT = 60_000


class _Budget:
    """Markdown pieces added while they fit under the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def fits(self, text: str, reserve: int = 0) -> bool:
        return self.size + len(text) + 1 + reserve <= self.limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text) + 1


def _md_table(budget: _Budget, header: str, rows: list[str], reserve: int) -> int:
    """Add a table's rows while they fit; return how many were left out."""
    budget.add(header)
    for i, row in enumerate(rows):
        if not budget.fits(row, reserve):
            return len(rows) - i
        budget.add(row)
    return 0


def render_markdown(report, fail_on: str = "error", live=None,
                    limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: the verdict and counts, the application versions, the
    findings grouped by severity and kind (each group folded), the load order, the
    modules and the node's view; under ``limit`` characters, with what was left out
    counted and pointed to the JSON report."""
    c = report.counts()
    s = report.severity_counts()
    failed = report.failed(fail_on)
    icon = ":x:" if failed else ":white_check_mark:"
    b = _Budget(limit)
    reserve = 400                       # the closing lines always fit
    b.add(f"### {icon} beaminspect gate: {'failed' if failed else 'passed'} (fail on {fail_on})")
    b.add("")
    b.add(f"{len(report.findings)} findings ({s['error']} errors, {s['warning']} warnings, "
          f"{s['info']} info) over {c['changed']} changed, {c['added']} added and "
          f"{c['removed']} removed modules.")
    b.add("")
    b.add("| added | removed | changed | unchanged | errors | warnings | info |")
    b.add("|---:|---:|---:|---:|---:|---:|---:|")
    b.add(f"| {c['added']} | {c['removed']} | {c['changed']} | {c['unchanged']} | "
          f"{s['error']} | {s['warning']} | {s['info']} |")
    left_out = 0
    apps = [(a, o or "-", n or "-") for a, o, n in report.app_versions() if o != n]
    if apps:
        b.add("")
        b.add(f"<details><summary>Applications ({len(apps)} version changes)</summary>")
        b.add("")
        _md_table(b, "| application | old | new |\n|---|---|---|",
                  [f"| {md.code(a)} | {md.escape(o)} | {md.escape(n)} |" for a, o, n in apps], reserve)
        b.add("")
        b.add("</details>")
    groups: dict[tuple[str, str], list] = {}
    for f in report.findings:
        groups.setdefault((f.severity, f.kind), []).append(f)
    order = {"error": 0, "warning": 1, "info": 2}
    shown = 0
    # The load order, the modules and the node's view keep a share of the room.
    tail = 0
    if report.dep_mods or report.by_status("changed") or live is not None:
        tail = limit // 4
    b.limit = limit - tail
    for (sev, kind), items in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        opening = (f"\n<details><summary><b>{sev}</b> {md.code(kind)} ({len(items)}): "
                   f"{md.escape(KINDS[kind].summary)}</summary>\n")
        if not b.fits(opening, reserve + 200):
            left_out += len(items)
            continue
        b.add(opening)
        rows = [f"| {md.code(f.module)} | {md.code(f.function)} | {md.escape(f.message)} |" for f in items]
        missed = _md_table(b, "| module | function | message |\n|---|---|---|", rows,
                           reserve + 20)
        shown += len(items) - missed
        left_out += missed
        b.add("")
        b.add("</details>")
    b.limit = limit
    sections = []
    if report.dep_mods:
        sections.append((f"Load order ({len(report.dep_mods)} modules with DepMods)",
                         "| module | load after |\n|---|---|",
                         [f"| {md.code(m)} | {', '.join(md.code(x) for x in d)} |"
                          for m, d in report.dep_mods.items()]))
    changed = [ch for st in ("added", "removed", "changed") for ch in report.by_status(st)]
    if changed:
        sections.append((f"Modules ({len(changed)} not unchanged)",
                         "| module | status | application |\n|---|---|---|",
                         [f"| {md.code(ch.name)} | {ch.status} | {md.code(ch.app)} |"
                          for ch in changed]))
    live_text = ""
    if live is not None:
        from beaminspect.render.live_out import live_markdown
        live_text = "\n".join(live_markdown(live))
    for i, (title, header, rows) in enumerate(sections):
        opening = f"\n<details><summary>{title}</summary>\n"
        if not b.fits(opening, reserve + 200):
            continue
        # each section leaves room for the ones after it
        share = (b.limit - b.size - reserve - len(live_text)) // (len(sections) - i)
        saved, b.limit = b.limit, b.size + max(share, 0) + reserve
        b.add(opening)
        missed = _md_table(b, header, rows, reserve + 80)
        if missed:
            b.add(f"| {missed} more | see the JSON report | |")
        b.add("")
        b.add("</details>")
        b.limit = saved
    if live_text and b.fits(live_text, 100):
        b.add(live_text)
    if left_out:
        b.add("")
        b.add(f"**{left_out} more findings: see the JSON report** (`--format json`).")
    return "\n".join(b.parts)


def _fingerprint(f, seen: dict) -> str:
    """A key for a finding that stays the same from run to run (no paths, no message
    text, which may hold counts): kind, application, module, function, and which of the
    findings with those it is."""
    import hashlib
    base = "\0".join(x or "" for x in (f.kind, f.app, f.module, f.function))
    n = seen.get(base, 0)
    seen[base] = n + 1
    return hashlib.sha256(f"{base}\0{n}".encode()).hexdigest()[:32]


def _artifact(path: str) -> dict:
    return {"artifactLocation": {"uri": _uri(path)}}


def render_sarif(report, locations: dict | None = None) -> dict:
    """A SARIF 2.1.0 log with one run; rules are the finding kinds that occur, described
    from the registry.  ``locations`` (:func:`beaminspect.release.locations.source_locations`)
    puts a finding on its source file and the first line of its function, relative to
    the repository, with the beam or appup it was found in as a related location;
    without one, the finding points at that beam or appup."""
    locations = locations or {}
    used = sorted({f.kind for f in report.findings})
    rule_index = {k: i for i, k in enumerate(used)}
    rules = [sarif_rule(KINDS[k]) for k in used]
    results = []
    seen: dict = {}
    for f in report.findings:
        r = {
            "ruleId": f.kind,
            "ruleIndex": rule_index[f.kind],
            "level": SARIF_LEVELS[f.severity],
            "message": {"text": f.message},
        }
        src = locations.get((f.module, f.function, f.location))
        if src is not None:
            phys = _artifact(src.path)
            phys["region"] = {"startLine": src.line or 1}
            r["locations"] = [{"physicalLocation": phys}]
            if f.location:
                r["relatedLocations"] = [{"id": 1, "physicalLocation": _artifact(f.location),
                                          "message": {"text": "where it was found"}}]
        elif f.location:
            r["locations"] = [{"physicalLocation": _artifact(f.location)}]
        r["partialFingerprints"] = {"beaminspect/v1": _fingerprint(f, seen)}
        props = {k: v for k, v in (("module", f.module), ("function", f.function),
                                   ("application", f.app)) if v}
        if props:
            r["properties"] = props
        results.append(r)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "beaminspect", "version": __version__,
                                "rules": rules}},
            "results": results,
        }],
    }


def sarif_rule(kind: Kind) -> dict:
    """The SARIF ``reportingDescriptor`` of a finding kind, from the registry."""
    return {
        "id": kind.name,
        "name": "".join(p.capitalize() for p in kind.name.split("_")),
        "shortDescription": {"text": kind.summary},
        "fullDescription": {"text": kind.explanation},
        "defaultConfiguration": {"level": SARIF_LEVELS[kind.severity]},
        "help": {
            "text": f"{kind.explanation}\n\nHow to fix: {kind.fix}",
            "markdown": (f"**{kind.name}** (default severity: {kind.severity})\n\n"
                         f"{kind.explanation}\n\n**How to fix:** {kind.fix}"),
        },
    }


def _uri(path: str) -> str:
    """Paths as URI references (archive members keep their ``archive!member`` form)."""
    from urllib.parse import quote
    return quote(path.replace("\\", "/"), safe="/!:._-~")
