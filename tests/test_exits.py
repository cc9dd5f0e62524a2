"""Exits that tell the truth: nothing to read is bad input (exit 2) for every command,
an unreadable file fails the gate whatever --fail-on says, and ``-o -`` is standard
output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
