"""The gate's SARIF as code scanning reads it: valid against the official SARIF 2.1.0
schema, each finding on a repository-relative source file and its function's first
line, the beam as a related location, fingerprints stable across runs, rules with help
from the findings registry."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil

from pathlib import Path

import gate_fixtures as gf
import jsonschema
import pytest

from beaminspect.cli.app import main
from beaminspect.release.locations import source_locations
from beaminspect.render import gate_out
from corpus import ROOT

from test_gate import shop  # noqa: F401  (the fixture)

OFFICIAL = json.loads(open(os.path.join(ROOT, "tests", "data",
                                        "sarif-schema-2.1.0.json")).read())


def _validate(doc: dict) -> None:
    jsonschema.Draft4Validator(OFFICIAL).validate(doc)


def _github_ready(doc: dict) -> list[str]:
    """What GitHub code scanning needs to annotate a result (its SARIF support page):
    the tool's name, rules with descriptions and help, and per result a ruleId, a
    message, at least one location with a relative artifact URI and a start line, and
    partialFingerprints."""
    problems = []
    run = doc["runs"][0]
    if not run["tool"]["driver"].get("name"):
        problems.append("no tool.driver.name")
    for rule in run["tool"]["driver"]["rules"]:
        for key in ("shortDescription", "fullDescription", "help"):
            if not rule.get(key, {}).get("text"):
                problems.append(f"rule {rule['id']} has no {key}")
    for res in run["results"]:
        if not res.get("ruleId") or not res.get("message", {}).get("text"):
            problems.append("a result without ruleId or message")
        if not res.get("partialFingerprints"):
            problems.append(f"{res['ruleId']}: no partialFingerprints")
        if not res.get("locations"):
            problems.append(f"{res['ruleId']}: no location")
        for loc in res.get("locations", []):
            phys = loc["physicalLocation"]
            uri = phys["artifactLocation"]["uri"]
            if uri.startswith("/") or re.match(r"^[a-z]+:", uri):
                problems.append(f"{res['ruleId']}: {uri} is not relative")
            if phys.get("region", {}).get("startLine", 0) < 1:
                problems.append(f"{res['ruleId']}: {uri} has no startLine")
    return problems


@pytest.fixture()
def repo(tmp_path):
    """A checkout holding the sources of the shop release's modules."""
    src = tmp_path / "repo" / "apps" / "shop" / "src"
    src.mkdir(parents=True)
    for erl in glob.glob(os.path.join(ROOT, "samples", "pairs", "*", "v2", "*.erl")):
        shutil.copy(erl, src)
    for name, text in (("shop_caller", gf.CALLER), ("shop_client", gf.CLIENT_V2),
                       ("shop_new", gf.NEWMOD), ("shop_legacy", gf.LEGACY)):
        (src / f"{name}.erl").write_text(text)
    (src / "shop.appup.src").write_text(gf.BAD_APPUP)
    (src / "bi_records.erl").write_text(
        (Path(ROOT) / "samples" / "src" / "bi_records.erl").read_text())
    return tmp_path / "repo"


def _first_line(path, name: str) -> int:
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.startswith(f"{name}("):
            return n
    raise AssertionError(name)


def test_findings_point_at_source_lines(shop, repo):  # noqa: F811
    _, _, r = shop
    doc = gate_out.render_sarif(r, source_locations(r, str(repo)))
    _validate(doc)
    assert _github_ready(doc) == []
    results = doc["runs"][0]["results"]
    loop = [x for x in results if x["ruleId"] == "purge_kills_local_loop"]
    assert loop
    phys = loop[0]["locations"][0]["physicalLocation"]
    erl = "apps/shop/src/hl_local_loop_killed.erl"
    assert phys["artifactLocation"]["uri"] == erl
    assert phys["region"]["startLine"] == _first_line(repo / erl, "loop")
    related = loop[0]["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert related.endswith("hl_local_loop_killed.beam")
    on_source = sum(1 for x in results
                    if x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .startswith("apps/"))
    print(f"\nSARIF: {on_source} of {len(results)} results on a source line")
    assert on_source >= len(results) // 2


def test_without_the_sources_findings_keep_the_beam(shop, tmp_path):  # noqa: F811
    _, _, r = shop
    empty = tmp_path / "empty"
    empty.mkdir()
    doc = gate_out.render_sarif(r, source_locations(r, str(empty)))
    _validate(doc)
    for res in doc["runs"][0]["results"]:
        for loc in res.get("locations", []):
            assert "region" not in loc["physicalLocation"]


def test_dependencies_point_at_the_manifest(shop, tmp_path):  # noqa: F811
    """No source in the checkout (every module a dependency's): each finding is on the
    project's manifest, line 1, where the dependencies are declared; the beam or appup
    stays a related location."""
    _, _, r = shop
    project = tmp_path / "project"
    project.mkdir()
    (project / "rebar.config").write_text("{deps, [shop]}.\n")
    doc = gate_out.render_sarif(r, source_locations(r, str(project)))
    _validate(doc)
    assert _github_ready(doc) == []
    for res in doc["runs"][0]["results"]:
        (loc,) = res["locations"]
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "rebar.config"
        assert loc["physicalLocation"]["region"]["startLine"] == 1
        related = res["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert related.endswith((".beam", ".appup"))


def test_a_release_built_in_the_checkout(shop):  # noqa: F811
    """The release under the source root (CI builds into the checkout's _build): a
    finding whose source is not found points at its beam or appup, relative to the
    root."""
    old, new, r = shop
    root = os.path.dirname(str(new))
    doc = gate_out.render_sarif(r, source_locations(r, root))
    _validate(doc)
    assert _github_ready(doc) == []
    uris = [res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for res in doc["runs"][0]["results"]]
    assert any(u.endswith(".beam") for u in uris)
    assert not any(u.startswith("/") for u in uris)


def test_fingerprints_are_stable_and_distinct(shop, repo):  # noqa: F811
    _, _, r = shop
    a = gate_out.render_sarif(r, source_locations(r, str(repo)))
    b = gate_out.render_sarif(r)
    fa = [x["partialFingerprints"] for x in a["runs"][0]["results"]]
    fb = [x["partialFingerprints"] for x in b["runs"][0]["results"]]
    assert fa == fb                               # locations do not change them
    keys = [f["beaminspect/v1"] for f in fa]
    assert len(keys) == len(set(keys))
    assert not any(str(repo) in k for k in keys)


def test_cli_source_root(shop, repo, tmp_path, capsys):  # noqa: F811
    old, new, _ = shop
    out = tmp_path / "gate.sarif"
    code = main(["gate", str(old), str(new), "--format", "sarif", "--source-root", str(repo),
                 "-o", str(out)])
    assert code == 1
    doc = json.loads(out.read_text())
    _validate(doc)
    uris = {res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for res in doc["runs"][0]["results"] if res.get("locations")}
    assert "apps/shop/src/hl_local_loop_killed.erl" in uris
