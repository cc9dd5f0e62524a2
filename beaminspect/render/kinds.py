"""The finding kinds of the registry (:mod:`beaminspect.analysis.findings`) as a text
table and as JSON, for ``beaminspect kinds [--json]``."""

from __future__ import annotations

import json

from beaminspect.analysis.findings import REGISTRY

__all__ = ["kinds_text", "kinds_json", "kinds_list", "kinds_markdown"]


def kinds_list() -> list[dict]:
    """Every kind as a dict: kind, severity, summary, explanation, fix."""
    return [{"kind": k.name, "severity": k.severity, "summary": k.summary,
             "explanation": k.explanation, "fix": k.fix} for k in REGISTRY]


def kinds_text() -> str:
    """A table of every kind: kind, default severity, meaning."""
    from beaminspect.render.table import table
    return table([(k.name, k.severity, k.summary) for k in REGISTRY],
                 ["kind", "default", "meaning"], wrap=2, disable_numparse=True)


def kinds_json() -> str:
    """A JSON array of every kind: kind, severity, summary, explanation, fix."""
    return json.dumps(kinds_list(), indent=2, ensure_ascii=False)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


#: Which commands report the kinds of each scope.
FOUND_BY = {"module": "diff, gate", "release": "gate", "appup": "gate (appups)",
            "node": "diff, gate (--node)"}


def kinds_markdown() -> str:
    """The README's table of every kind: kind, default severity, the commands that
    report it, meaning, how to fix."""
    out = ["| kind | default | found by | meaning | how to fix |", "|---|---|---|---|---|"]
    for k in REGISTRY:
        out.append(f"| `{k.name}` | {k.severity} | {FOUND_BY[k.scope]} | {_md(k.summary)} "
                   f"| {_md(k.fix)} |")
    return "\n".join(out)
