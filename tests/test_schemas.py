"""Every JSON format the command line writes validates against its schema in schemas/:
show, disasm and check (JSON Lines, one object per file) over every bundled beam and a
sample of OTP's, diff over the scenario pairs, kinds; gate (tests/test_gate.py), live
(tests/test_live.py) and SARIF against the official schema (tests/test_sarif.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from corpus import ROOT, SAMPLE_BEAMS

SCHEMAS = os.path.join(ROOT, "schemas")


def _schema(name: str) -> dict:
    with open(os.path.join(SCHEMAS, f"{name}.schema.json"), encoding="utf-8") as f:
        return json.load(f)


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beaminspect", *args], capture_output=True,
                          text=True, timeout=600)


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_schema_is_a_valid_schema():
    names = sorted(f[:-len(".schema.json")] for f in os.listdir(SCHEMAS)
                   if f.endswith(".schema.json"))
    assert names == ["check", "diff", "disasm", "gate", "kinds", "live", "show"]
    for n in names:
        jsonschema.Draft202012Validator.check_schema(_schema(n))


@pytest.mark.parametrize("command,extra", [("show", ["--json"]), ("disasm", ["--json"]),
                                           ("check", ["--json", "--otp", "27"])])
def test_per_file_outputs(command, extra, tmp_path):
    bad = tmp_path / "bad.beam"
    bad.write_bytes(b"FOR1\x00\x00\x00\x04BEAM")
    files = SAMPLE_BEAMS + ([str(bad)] if command == "check" else [])
    r = _cli(command, *extra, *files)
    docs = _lines(r.stdout)
    assert len(docs) == len(files), r.stderr
    validator = jsonschema.Draft202012Validator(_schema(command))
    for d in docs:
        validator.validate(d)
    if command == "show":
        # a gzip-compressed file: its size on disk, and the inflated size
        comp = [d for d in docs if d["compressed"]]
        assert comp
        for d in comp:
            assert d["stored_size"] == os.path.getsize(d["file"]) < d["size"]
        text = _cli("show", comp[0]["file"]).stdout
        assert (f"{comp[0]['stored_size']} bytes on disk, gzip-compressed "
                f"({comp[0]['size']} bytes inflated)") in text


def test_diff_outputs():
    validator = jsonschema.Draft202012Validator(_schema("diff"))
    pairs = os.path.join(ROOT, "samples", "pairs")
    n = 0
    for pair in sorted(os.listdir(pairs)):
        v1 = os.path.join(pairs, pair, "v1")
        beams = sorted(f for f in os.listdir(v1) if f.endswith(".beam"))
        for b in beams:
            r = _cli("diff", os.path.join(v1, b), os.path.join(pairs, pair, "v2", b),
                     "--format", "json", "--fail-on", "never", "--show-code")
            assert r.returncode == 0, r.stderr
            validator.validate(json.loads(r.stdout))
            n += 1
    assert n >= 20


def test_kinds_output():
    from beaminspect.analysis.findings import REGISTRY
    r = _cli("kinds", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(_schema("kinds")).validate(doc)
    assert [k["kind"] for k in doc] == [k.name for k in REGISTRY]
