"""The findings registry: every kind the code emits is declared once, and the README's
table, ``beaminspect kinds`` (text and JSON) and the SARIF rules all say what it says."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from beaminspect.analysis.findings import (DEFAULTS, FAIL_ON_VALUES, KINDS, REGISTRY, SCOPES,
                                           SEVERITIES, SEVERITY_VALUES, Finding,
                                           effective_severity, exceeds, worst)
from beaminspect.release.policy import PolicyError, parse_policy
from beaminspect.render.gate_out import SARIF_LEVELS, sarif_rule
from beaminspect.render.kinds import kinds_json, kinds_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gen_docs  # noqa: E402

#: The modules that create findings.
EMITTERS = [ROOT / "beaminspect" / "analysis" / "hotload.py",
            ROOT / "beaminspect" / "release" / "gate.py",
            ROOT / "beaminspect" / "release" / "appup.py",
            ROOT / "beaminspect" / "live" / "predict.py",
            ROOT / "beaminspect" / "release" / "appchecks.py",
            ROOT / "beaminspect" / "release" / "emulator.py"]
#: The modules of the findings pipeline (no cycles, no private names across them).
PIPELINE = EMITTERS + [ROOT / "beaminspect" / p for p in (
    "analysis/findings.py", "release/policy.py", "release/facts.py", "render/gate_out.py",
    "render/diff_out.py", "render/kinds.py")]
KIND_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def test_registry_is_well_formed():
    names = [k.name for k in REGISTRY]
    assert len(names) == len(set(names)) == len(KINDS) == len(DEFAULTS)
    for k in REGISTRY:
        assert KIND_NAME.match(k.name), k.name
        assert k.severity in SEVERITIES and k.scope in SCOPES
        assert k.summary and "\n" not in k.summary and not k.summary.endswith(".")
        assert k.explanation.endswith(".") and len(k.explanation) > len(k.summary) // 2
        assert k.fix.endswith(".") and "\n" not in k.explanation + k.fix
        assert DEFAULTS[k.name] == (k.severity, k.summary)
    # Documentation order: the module kinds, then the release's, then the appups'.
    assert [k.scope for k in REGISTRY] == sorted((k.scope for k in REGISTRY), key=SCOPES.index)
    assert SEVERITY_VALUES == SEVERITIES + ("off",) and FAIL_ON_VALUES == SEVERITIES + ("never",)


# ---------------------------------------------------------------------------
# Every kind the code can emit is in the registry, and every kind is emitted


def _emitted_kinds(path: Path) -> set[str]:
    """Kind names in the emitting positions of a module: the first argument of an
    ``add(...)``/``.add(...)`` or ``Finding(...)`` call, and the string literals of a
    tuple unpacked into a variable named ``kind`` (``for label, kind, lst in ...``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(
                fn, ast.Attribute) else None
            first = node.args[0]
            if name in ("add", "Finding") and isinstance(first, ast.Constant):
                out.add(first.value)
        if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
            slots = [i for i, t in enumerate(node.target.elts)
                     if isinstance(t, ast.Name) and t.id == "kind"]
            if slots and isinstance(node.iter, ast.Tuple):
                for row in node.iter.elts:
                    out.add(row.elts[slots[0]].value)
    return out


def test_every_emitted_kind_is_registered_and_every_kind_is_emitted():
    emitted = set().union(*(_emitted_kinds(p) for p in EMITTERS))
    assert emitted - set(KINDS) == set()
    assert set(KINDS) - emitted == set()
    # Each scope's kinds come from its own module.
    by_scope = {"module": [EMITTERS[0]], "release": [EMITTERS[1], EMITTERS[4], EMITTERS[5]],
                "appup": [EMITTERS[2]], "node": [EMITTERS[3]]}
    for scope, paths in by_scope.items():
        assert {k.name for k in REGISTRY if k.scope == scope} == \
            set().union(*map(_emitted_kinds, paths))


def test_an_unregistered_kind_cannot_become_a_finding():
    with pytest.raises(KeyError):
        effective_severity("no_such_kind")


# ---------------------------------------------------------------------------
# One severity rule and one threshold


def test_effective_severity_order_of_precedence():
    assert effective_severity("load_order") == "warning"
    assert effective_severity("load_order", "info") == "info"
    assert effective_severity("load_order", "info", {"load_order": "error"}) == "error"
    assert effective_severity("load_order", None, {"load_order": "off"}) == "off"
    assert effective_severity("load_order", "info", {"fun_invalidated": "off"}) == "info"


def test_threshold_and_worst():
    fs = [Finding("load_order", "warning", None, "m"), Finding("reload_not_needed", "info",
                                                               None, "m")]
    assert worst(fs) == "warning" and worst([]) is None
    assert exceeds(fs, "info") and exceeds(fs, "warning") and not exceeds(fs, "error")
    assert not exceeds(fs, "never") and not exceeds([], "info")


def test_finding_fields():
    f = Finding("load_order", "info", "b:f/1", "msg", "a", "a.beam", "app")
    assert list(f.to_dict()) == ["kind", "severity", "module", "function", "message",
                                 "location", "app"]
    assert f.to_dict(("kind", "severity", "function", "message")) == {
        "kind": "load_order", "severity": "info", "function": "b:f/1", "message": "msg"}


def test_policy_accepts_every_registered_kind_and_nothing_else():
    p = parse_policy({"severity": {k: "off" for k in KINDS}})
    assert set(p.severities) == set(KINDS)
    with pytest.raises(PolicyError, match="unknown finding kind 'no_such_kind'"):
        parse_policy({"severity": {"no_such_kind": "info"}})


# ---------------------------------------------------------------------------
# What is generated from the registry


def _readme_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    _, body, _ = gen_docs.split(text)
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]


def test_readme_table_is_generated_from_the_registry():
    assert gen_docs.main(["--check"]) == 0
    rows = _readme_rows()
    assert [r[0] for r in rows] == [f"`{k.name}`" for k in REGISTRY]
    for row, k in zip(rows, REGISTRY):
        assert row[1] == k.severity and row[3] == k.summary and row[4] == k.fix


def test_gen_docs_rewrites_only_between_the_markers():
    text = "# x\n\n" + gen_docs.BEGIN + "\nstale\n" + gen_docs.END + "\n\nafter\n"
    out = gen_docs.render(text)
    assert out.startswith("# x\n\n" + gen_docs.BEGIN + "\n| kind |")
    assert out.endswith("|\n" + gen_docs.END + "\n\nafter\n")
    assert gen_docs.render(out) == out
    with pytest.raises(gen_docs.MarkerError):
        gen_docs.render("no markers")


def test_kinds_json_is_the_registry():
    doc = json.loads(kinds_json())
    assert doc == [{"kind": k.name, "severity": k.severity, "summary": k.summary,
                    "explanation": k.explanation, "fix": k.fix} for k in REGISTRY]


def test_kinds_text_lists_every_kind_with_its_default():
    lines = kinds_text().splitlines()
    assert lines[0].split() == ["kind", "default", "meaning"]
    starts = {tuple(line.split()[:2]) for line in lines[2:] if line[:1].strip()}
    assert starts == {(k.name, k.severity) for k in REGISTRY}


def test_sarif_rules_come_from_the_registry():
    for k in REGISTRY:
        r = sarif_rule(k)
        assert r["id"] == k.name
        assert r["shortDescription"] == {"text": k.summary}
        assert r["fullDescription"] == {"text": k.explanation}
        assert r["defaultConfiguration"] == {"level": SARIF_LEVELS[k.severity]}
        assert k.explanation in r["help"]["text"] and k.fix in r["help"]["text"]
        assert k.explanation in r["help"]["markdown"] and k.fix in r["help"]["markdown"]


def test_sarif_rules_of_a_gate_run():
    if subprocess.run(["which", "erlc"], capture_output=True).returncode:
        pytest.skip("Erlang/OTP (erlc) is not installed")
    import tempfile

    import gate_fixtures as gf
    from beaminspect.release.gate import compare_releases
    from beaminspect.render.gate_out import render_sarif
    with tempfile.TemporaryDirectory() as work:
        old, new = gf.build_shop_pair(Path(work), gf.BAD_APPUP)
        report = compare_releases(old, new)
        log = render_sarif(report)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({f.kind for f in report.findings})
    assert rules == [sarif_rule(KINDS[r["id"]]) for r in rules]


# ---------------------------------------------------------------------------
# The pipeline's modules: no import cycles hidden in functions, no private names


def _imports(path: Path):
    """(module imported, names, inside a function?) for each beaminspect import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                        ast.AsyncFunctionDef))]
    inner = {id(x) for f in funcs for x in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("beaminspect"):
            yield node.module, [a.name for a in node.names], id(node) in inner
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("beaminspect"):
                    yield a.name, [], id(node) in inner


@pytest.mark.parametrize("path", PIPELINE, ids=lambda p: p.name)
def test_no_private_names_across_modules_nor_imports_in_functions(path):
    for module, names, in_function in _imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, (path.name, module, private)
        if in_function:
            assert not module.startswith(("beaminspect.analysis", "beaminspect.release")), \
                (path.name, module)


@pytest.mark.parametrize("module", ["beaminspect.release.policy", "beaminspect.release.appup",
                                    "beaminspect.release.gate",
                                    "beaminspect.render.gate_out"])
def test_each_module_imports_first(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
