"""`beaminspect show` through typer's CliRunner and as a real process."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import beaminspect
from beaminspect.cli.app import app, main
from corpus import SAMPLES, SAMPLE_BEAMS

runner = CliRunner()
EBIN = os.path.join(SAMPLES, "ebin")


def _one_sample():
    plain = [p for p in SAMPLE_BEAMS if "/ebin/" in p]
    assert plain, "samples/ebin has no beams"
    return plain[0]


def test_show_text_has_tables():
    path = _one_sample()
    m = beaminspect.load(path)
    r = runner.invoke(app, ["show", path])
    assert r.exit_code == 0, r.output
    assert f"module      {m.name}" in r.output
    assert m.md5.hex() in r.output
    assert "Chunks" in r.output and "Exports" in r.output and "Imports" in r.output


def test_show_json_lines_for_a_directory():
    r = runner.invoke(app, ["show", "--json", EBIN])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    files = sorted(p for p in SAMPLE_BEAMS if os.path.dirname(p) == EBIN)
    assert len(lines) == len(files)
    for line, path in zip(lines, files):
        obj = json.loads(line)
        m = beaminspect.load(path)
        assert obj["file"] == path
        assert obj["module"] == m.name
        assert obj["md5"] == m.md5.hex()
        assert obj["exports"] == [{"name": e.name, "arity": e.arity, "label": e.label}
                                  for e in m.exports]
        assert obj["imports"][0].keys() == {"module", "function", "arity"}
        assert [c["id"] for c in obj["chunks"]] == list(m.chunk_ids)
        for key in ("atoms", "attributes", "compile_info", "locals"):
            assert key in obj


def test_bad_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.beam"
    bad.write_bytes(b"FOR1\x00\x00\x00\x0cBEAMAtU8\x00\x00\x00\xff")
    good = _one_sample()
    r = runner.invoke(app, ["show", "--json", str(bad), good])
    assert r.exit_code == 2
    # The good file is still shown.
    assert json.loads(r.stdout.strip().splitlines()[-1])["file"] == good
    err = r.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"beaminspect: {bad}: chunk AtU8 at offset ")


def test_not_found_exit_2(tmp_path):
    assert main(["show", str(tmp_path / "missing.beam")]) == 2


def test_usage_error_exit_3():
    assert main(["show", "--no-such-option", "x"]) == 3


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"beaminspect {beaminspect.__version__}"


def test_module_entry_point_runs():
    p = subprocess.run([sys.executable, "-m", "beaminspect", "show", "--json", _one_sample()],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["module"]


def test_parallel_and_serial_output_identical():
    from otp import OTP_BEAMS
    files = (OTP_BEAMS or SAMPLE_BEAMS * 10)[:120]
    if len(files) < 60:
        pytest.skip("needs at least 60 files to use the pool")
    serial = runner.invoke(app, ["show", "--json", "-j", "1", *files])
    parallel = runner.invoke(app, ["show", "--json", "-j", "2", *files])
    assert serial.exit_code == parallel.exit_code == 0
    assert serial.output == parallel.output
    assert len(serial.output.splitlines()) == len(files)


# ---------------------------------------------------------------------------
# the one command line: help, choices, start-up
# ---------------------------------------------------------------------------

COMMANDS = ("check", "show", "diff", "gate", "appup", "disasm", "kinds")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_right(command):
    r = runner.invoke(app, [command, "--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    usage = r.output.splitlines()[0]
    assert usage.startswith(f"Usage: beaminspect {command} [OPTIONS]")
    for bad in ("{", "<str>", "<int>", "<bool>", "<list", "default:  "):
        assert bad not in r.output, (bad, r.output)
    if command in ("diff", "gate", "appup"):
        assert usage.endswith(" OLD NEW")
    if command in ("check", "show", "disasm"):
        assert usage.endswith(" PATH...")


def test_help_keeps_bracketed_words():
    r = runner.invoke(app, ["gate", "--help"], env={"COLUMNS": "100"})
    assert "[tool.beaminspect]" in r.output
    assert "--format FORMAT" in r.output and "-o, --output FILE" in r.output


def test_summaries_are_whole():
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0
    assert "..." not in r.output.split("Commands:")[1]
    for command in COMMANDS:
        assert f"\n  {command} " in r.output
    assert "--install-completion" in r.output and "--show-completion" in r.output


def test_dash_f_is_function_only():
    for command in ("gate", "diff"):
        assert main([command, "a", "b", "-f", "json"]) == 3
    r = runner.invoke(app, ["disasm", "--help"])
    assert "-f, --function NAME/ARITY" in r.output


def test_choices_are_the_librarys():
    from beaminspect.analysis.findings import FAIL_ON_VALUES
    from beaminspect.cli.commands import FAIL_ON
    assert FAIL_ON == FAIL_ON_VALUES


def test_kinds_text_and_json():
    from beaminspect.render.kinds import kinds_json, kinds_text
    r = runner.invoke(app, ["kinds"])
    assert r.exit_code == 0 and r.output == kinds_text() + "\n"
    r = runner.invoke(app, ["kinds", "--json"])
    assert r.exit_code == 0 and r.output == kinds_json() + "\n"


def test_start_up_imports_typer_only():
    """``--version`` imports neither the analysis nor the renderers, nor pydantic, rich,
    tabulate or json; ``show --json`` of one file needs no pydantic or rich either."""
    code = ("import sys, io, contextlib\n"
            "from beaminspect.cli.app import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(sys.argv[1:])\n"
            "print(' '.join(sorted(sys.modules)))\n")
    def modules(*argv):
        p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return set(p.stdout.split())
    loaded = modules("--version")
    for name in ("pydantic", "rich", "tabulate", "json", "beaminspect.analysis",
                 "beaminspect.render", "beaminspect.release", "beaminspect.cli.jobs"):
        assert name not in loaded, name
    for argv in (["show", "--json", "-j", "1", _one_sample()],
                 ["gate", EBIN, EBIN, "--external", "x", "--otp", "25", "--format", "json",
                  "--fail-on", "never"],
                 ["disasm", "-f", "start/2", _one_sample()]):
        loaded = modules(*argv)
        assert "pydantic" not in loaded and "rich" not in loaded, argv


def test_closed_pipe_ends_quietly():
    """A reader that stops early (``| head``) ends the command with exit 0 and nothing
    on stderr, for text listings and JSON lines alike."""
    for argv in (["show", SAMPLES], ["disasm", "--json", "-j", "1", SAMPLES]):
        p = subprocess.Popen([sys.executable, "-m", "beaminspect", *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.read(10)
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=120) == 0, err
        assert err == b""


def test_shell_completion():
    env = dict(os.environ, _BEAMINSPECT_COMPLETE="complete_bash",
               COMP_WORDS="beaminspect gate --f", COMP_CWORD="2")
    p = subprocess.run([sys.executable, "-m", "beaminspect"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["--format", "--fail-on"]


def test_tables_fit_columns_and_never_split_a_name(monkeypatch):
    """The free-text column wraps to what COLUMNS leaves; names (with hyphens and
    slashes, as fun names have) stay whole even where a line must run past it; with no
    COLUMNS and no terminal the column is 70 wide."""
    from beaminspect.render.table import FALLBACK_WRAP, table
    name = "'-handle_call/3-fun-0-'/2"
    rows = [("warning", "fun_invalidated", name,
             f"the fun {name} created by handle_call/3 in the old code is kept in the "
             "state of the gen_server: it raises badfun when called after the purge")]
    headers = ["severity", "kind", "function", "message"]
    monkeypatch.setenv("COLUMNS", "100")
    lines = table(rows, headers, wrap=3).splitlines()
    assert max(map(len, lines)) <= 100 and len(lines) > 3
    assert any(name in ln.split("   ")[-1] or ln.endswith(name) for ln in lines[2:])
    assert all(name in ln for ln in lines[2:3])            # the function column, whole
    monkeypatch.setenv("COLUMNS", "40")                     # too narrow: nothing split
    text = table(rows, headers, wrap=3)
    assert text.count(name) == 2 and "badfun" in text
    monkeypatch.delenv("COLUMNS")
    body = [ln[len(lines[0]) - len("message"):] for ln in table(rows, headers,
                                                                wrap=3).splitlines()[2:]]
    assert max(len(b.rstrip()) for b in body) <= FALLBACK_WRAP
