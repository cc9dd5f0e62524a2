"""The gate's Markdown report as a pull-request comment: grouped, folded, escaped, and
under GitHub's 65,536-character limit however large the upgrade."""

from __future__ import annotations

import re

import pytest

from beaminspect.release.gate import compare_releases
from beaminspect.render import gate_out
from beaminspect.render import markdown as md
from otp import otp

from test_gate import shop  # noqa: F401  (the fixture)

GITHUB_COMMENT_LIMIT = 65_536


def _shown_findings(md: str) -> int:
    """Rows of the findings tables (the folded groups whose summary starts <b>)."""
    n = 0
    for block in md.split("<details>")[1:]:
        body = block.split("</details>")[0]
        if body.startswith("<summary><b>"):
            n += sum(1 for line in body.splitlines()
                     if line.startswith("| ") and not line.startswith("| module |"))
    return n


def _more(md: str) -> int:
    m = re.search(r"\*\*(\d+) more findings: see the JSON report\*\*", md)
    return int(m.group(1)) if m else 0


def test_findings_grouped_by_severity_and_kind(shop):  # noqa: F811
    _, _, r = shop
    md = gate_out.render_markdown(r)
    groups = re.findall(r"<summary><b>(\w+)</b> `(\w+)` \((\d+)\)", md)
    want = {}
    for f in r.findings:
        want[(f.severity, f.kind)] = want.get((f.severity, f.kind), 0) + 1
    assert {(s, k): int(n) for s, k, n in groups} == want
    severities = [s for s, _k, _n in groups]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert _shown_findings(md) == len(r.findings) and _more(md) == 0
    assert "<summary>Applications" in md and "<summary>Modules" in md
    # kind names in code spans; message text escaped
    assert "code\\_change" in md or "code_change" not in " ".join(f.message for f in r.findings)


@pytest.mark.parametrize("limit", [1500, 3000, 8000])
def test_the_cap_counts_what_it_leaves_out(shop, limit):  # noqa: F811
    _, _, r = shop
    md = gate_out.render_markdown(r, limit=limit)
    assert len(md) <= limit
    assert _shown_findings(md) + _more(md) == len(r.findings)
    assert md.startswith("### :x: beaminspect gate: failed")


def test_table_cells_cannot_break_the_table():
    cell = md.escape("a|b <script> *x* _y_ `z` [l](u)\nnext")
    assert "|" not in cell.replace("\\|", "")
    assert "<" not in cell and "\n" not in cell
    assert md.code("we`ird") == "`` we`ird ``"
    assert md.code("a``b") == "``` a``b ```"      # a fence longer than any run in it
    assert md.code("'x|y'") == "`'x\\|y'`"
    assert md.fence("move {atom,'a``b'} {x,0}") == "```"
    assert md.fence("a ```` b") == "`````"


@pytest.mark.slow
@pytest.mark.parametrize("releases", [(27, 29), (25, 27)], ids=["otp27-29", "host25-otp27"])
def test_two_otp_trees_fit_a_comment(releases):
    """Two whole OTP lib trees (27 -> 29 in the roots; the host's 25 -> the root's 27),
    every application changed: thousands of findings."""
    old, new = otp(releases[0]), otp(releases[1])
    if not (old.available and new.available):
        pytest.skip(old.skip_reason or new.skip_reason)
    r = compare_releases(old.lib_dir, new.lib_dir)
    md = gate_out.render_markdown(r)
    print(f"\nMarkdown of OTP {releases[0]} -> {releases[1]}: {len(md)} characters "
          f"(uncapped {len(gate_out.render_markdown(r, limit=10**9))}), {len(r.findings)} findings, "
          f"{_shown_findings(md)} shown, {_more(md)} left to the JSON report")
    assert len(md) < GITHUB_COMMENT_LIMIT
    assert len(r.findings) > 500 and _more(md) > 0
    assert _shown_findings(md) + _more(md) == len(r.findings)
    assert "<summary>Applications" in md
    assert "<summary>Load order" in md or not r.dep_mods
