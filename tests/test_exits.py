"""Exits that tell the truth: nothing to read is bad input (exit 2) for every command,
an unreadable file fails the gate whatever --fail-on says, and ``-o -`` is standard
output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from release_fixtures import bare_app_pair

REPO = Path(__file__).resolve().parent.parent
EBIN = REPO / "samples" / "ebin"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "beaminspect", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("command", [["show"], ["show", "--json"], ["disasm"],
                                     ["disasm", "--json"], ["check", "--otp", "25"]])
def test_a_directory_without_beams_is_bad_input(tmp_path, command):
    p = run(*command, tmp_path)
    assert p.returncode == 2, p
    assert p.stdout == ""
    assert p.stderr.strip() == f"beaminspect: {tmp_path}: no .beam files found"


@pytest.mark.parametrize("which", ["both", "new", "old"])
def test_gate_on_a_tree_without_beams_is_bad_input(tmp_path, which):
    empty = tmp_path / "empty"
    empty.mkdir()
    old = empty if which in ("both", "old") else EBIN
    new = empty if which in ("both", "new") else EBIN
    p = run("gate", old, new)
    assert p.returncode == 2, p
    assert "no .beam files found" in p.stderr and len(p.stderr.splitlines()) == 1


def test_gate_with_an_unreadable_file_exits_2_even_with_fail_on_never(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(EBIN, old)
    shutil.copytree(EBIN, new)
    (new / "bi_server.beam").write_bytes((EBIN / "bi_server.beam").read_bytes()[:100])
    p = run("gate", old, new, "--fail-on", "never")
    assert p.returncode == 2, p
    assert "bi_server" in p.stdout or "bi_server" in p.stderr  # the report still lists it
    assert p.stderr.splitlines()[-1].startswith("beaminspect: 1 file(s) could not be read")


def test_output_dash_is_standard_output(tmp_path):
    p = run("gate", EBIN, EBIN, "-o", "-", cwd=tmp_path)
    assert p.returncode == 0, p
    assert p.stdout.startswith("gate passed")
    assert not (tmp_path / "-").exists()


def test_disasm_function_over_many_modules_lists_those_that_have_it():
    p = run("disasm", "-f", "init/1", EBIN)
    assert p.returncode == 0, p
    assert p.stderr == ""
    modules = [line for line in p.stdout.splitlines() if line.startswith("module ")]
    assert len(modules) >= 2 and p.stdout.count("function init/1 ") == len(modules)
    p = run("disasm", "-f", "init/1", "--json", EBIN)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == len(modules)


def test_disasm_function_that_no_module_has_is_bad_input():
    p = run("disasm", "-f", "nosuch/9", EBIN)
    assert p.returncode == 2
    assert p.stderr.strip() == "beaminspect: no module has a function nosuch/9"


def test_disasm_function_takes_a_quoted_atom():
    pair = REPO / "samples" / "pairs" / "fun_badfun" / "v1"
    p = run("disasm", "-f", "'-adder/1-fun-0-'/2", pair)
    assert p.returncode == 0, p
    assert "function -adder/1-fun-0-/2" in p.stdout


@pytest.mark.parametrize("command", [["check", EBIN / "bi_server.beam"],
                                     ["gate", EBIN, EBIN],
                                     ["diff", EBIN / "bi_server.beam", EBIN / "bi_server.beam"]])
@pytest.mark.parametrize("otp", ["17", "0", "1000"])
def test_otp_outside_the_modelled_range_is_a_usage_error(command, otp):
    p = run(*command, "--otp", otp)
    assert p.returncode == 3, p
    assert "not a modelled release (modelled: 25 to 29)" in p.stderr


def test_releases_modelled_from_sources_are_labelled():
    p = run("check", EBIN / "bi_server.beam", "--otp", "26")
    assert p.returncode == 0
    assert p.stdout.strip().endswith("(OTP 26 is modelled from its sources, not measured)")
    p = run("check", EBIN / "bi_server.beam", "--otp", "27")
    assert "modelled" not in p.stdout


PAIRS = REPO / "samples" / "pairs"


def _cases(tmp_path: Path) -> dict:
    """Per command, an invocation for each exit code the README documents for it."""
    old, new = bare_app_pair(tmp_path)
    beam = EBIN / "bi_server.beam"
    corrupt = tmp_path / "corrupt.beam"
    corrupt.write_bytes(beam.read_bytes()[:200])
    same = PAIRS / "no_change_recompile"
    v1 = next((PAIRS / "export_removed" / "v1").glob("*.beam"))
    v2 = next((PAIRS / "export_removed" / "v2").glob("*.beam"))
    s1, s2 = next((same / "v1").glob("*.beam")), next((same / "v2").glob("*.beam"))
    broken = tmp_path / "broken"
    shutil.copytree(new.parent.parent, broken)
    (broken / "shop" / "ebin" / "hl_export_removed.beam").write_bytes(b"FOR1junk")
    return {
        "show": {0: ["show", beam], 2: ["show", corrupt], 3: ["show", "--bogus", beam]},
        "disasm": {0: ["disasm", beam], 2: ["disasm", corrupt],
                   3: ["disasm", "--bogus", beam]},
        "diff": {0: ["diff", s1, s2], 1: ["diff", v1, v2], 2: ["diff", v1, corrupt],
                 3: ["diff", v1, v2, "--fail-on", "fatal"]},
        "check": {0: ["check", "--otp", "25", beam],
                  1: ["check", "--otp", "25", REPO / "samples" / "otp29" / "ebin" /
                      "bi_server.beam"],
                  2: ["check", "--otp", "25", tmp_path / "missing.beam"], 3: ["check", "--otp", "17", beam]},
        "gate": {0: ["gate", old, new, "--fail-on", "never"], 1: ["gate", old, new],
                 2: ["gate", old, broken / "shop" / "ebin", "--fail-on", "never"],
                 3: ["gate", old, new, "--format", "xml"]},
        "appup": {0: ["appup", old, new], 2: ["appup", old, tmp_path / "missing"],
                  3: ["appup", old, new, "--bogus"]},
        "kinds": {0: ["kinds"], 3: ["kinds", "--bogus"]},
    }


def test_every_documented_exit_code_per_command(tmp_path):
    """0, 1, 2 and 3 as the README's table says, for each command where they apply;
    every non-zero exit but 1 says why on standard error, in one line for 2."""
    seen = {}
    for command, by_code in _cases(tmp_path).items():
        for code, argv in by_code.items():
            r = run(*argv)
            assert r.returncode == code, (command, code, argv, r.stderr[-500:])
            assert "Traceback" not in r.stderr
            if code == 2:
                lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
                assert lines and lines[0].startswith("beaminspect: "), (command, r.stderr)
            seen.setdefault(command, set()).add(code)
    assert seen["gate"] == seen["diff"] == {0, 1, 2, 3}


@pytest.mark.parametrize("command", ["show", "disasm", "diff", "check", "gate", "appup",
                                     "kinds"])
def test_internal_error_is_one_line_and_exit_4(command, tmp_path, monkeypatch, capsys):
    """An unexpected exception (a bug) is exit 4 with one line naming it, per command;
    BEAMINSPECT_DEBUG=1 would show the traceback instead."""
    from beaminspect.cli import app as cli_app
    from beaminspect.cli import commands

    cases = _cases(tmp_path)
    argv = [str(a) for a in cases[command][0]]

    def boom(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.delenv("BEAMINSPECT_DEBUG", raising=False)
    monkeypatch.setattr(commands, command, boom)
    assert cli_app.main(argv) == 4
    err = capsys.readouterr().err
    assert err.strip() == "beaminspect: internal error: RuntimeError: boom"
