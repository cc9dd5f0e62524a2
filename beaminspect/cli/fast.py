"""The ``beaminspect`` entry point, with a fast path for the commonest calls.

``beaminspect --version``, ``beaminspect show --json [-j N] PATH...``,
``beaminspect disasm --json [-j N] PATH...`` and ``beaminspect gate OLD NEW [options]``
are parsed here without importing typer (whose import, with pydantic, costs about
0.3 s per process); the command bodies are the typer app's own
(:mod:`beaminspect.cli.commands`, the jobs below).
Anything else -- help, text output, other commands, an option or a form this small
parser does not know -- goes to the typer app in :mod:`beaminspect.cli.app`, which prints
the same output and returns the same exit codes for the calls handled here (both draw
the same boundary, :func:`beaminspect.cli.commands.run_guarded`).
"""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def show_json_job(path: str):
    """One module as a ``show --json`` line: ``(True, json)`` or ``(False, error line)``."""
    from beaminspect.errors import BeamError, format_error
    from beaminspect.module import load
    from beaminspect.render.json_out import module_summary_json
    try:
        return True, module_summary_json(load(path))
    except BeamError as e:
        return False, f"beaminspect: {format_error(e)}"


def disasm_json_job(path: str):
    """One module as a ``disasm --json`` line: ``(True, json as UTF-8 bytes)`` or
    ``(False, error line)``.  The text is encoded where it is made: a worker process
    hands bytes back, which cost nothing to pass on, where a ``str`` would be encoded
    for the pipe, decoded and encoded again for standard output.

    The cyclic garbage collector is paused for the module: nothing built here forms a
    cycle, and its passes over the instruction records cost about a fifth of the time
    (they are freed by reference counting when the text is made)."""
    import gc

    from beaminspect.errors import BeamError, format_error
    from beaminspect.module import load
    from beaminspect.render.disasm_json import module_json_text
    enabled = gc.isenabled()
    gc.disable()
    try:
        return True, module_json_text(load(path)).encode()
    except BeamError as e:
        return False, f"beaminspect: {format_error(e)}"
    finally:
        if enabled:
            gc.enable()


#: Command -> its ``--json`` job.
_JOBS = {"show": show_json_job, "disasm": disasm_json_job}


_FLAG, _STR, _INT, _LIST = range(4)

#: Command -> {option: (name, kind)}; a ``--long`` option also takes ``--long=VALUE``
#: and a ``-s`` one ``-sVALUE``, as the typer app does.
_OPTIONS = {
    "show": {"--json": ("json", _FLAG), "-j": ("jobs", _INT), "--jobs": ("jobs", _INT)},
    "gate": {"-f": ("fmt", _STR), "--format": ("fmt", _STR), "--fail-on": ("fail_on", _STR),
             "--policy": ("policy_file", _STR), "--external": ("external", _LIST),
             "--otp": ("otp", _INT), "-o": ("output", _STR), "--output": ("output", _STR)},
}
_OPTIONS["disasm"] = _OPTIONS["show"]


def parse_args(command: str, args: list[str]):
    """``(positional arguments, {name: value})`` for ``args`` of ``command``, or None
    for anything this parser leaves to the typer app: an option it does not know (help
    included), a value that is not plainly a value, ``--``, ``-``."""
    spec = _OPTIONS[command]
    positional: list[str] = []
    values: dict = {}
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if not a.startswith("-"):
            positional.append(a)
            continue
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            attached = value if eq else None
        else:
            name, attached = a[:2], (a[2:] or None)
        found = spec.get(name)
        if found is None or a in ("-", "--"):
            return None
        key, kind = found
        if kind == _FLAG:
            if attached is not None:
                return None
            values[key] = True
            continue
        if attached is None:
            if i == len(args) or args[i].startswith("-"):
                return None
            attached = args[i]
            i += 1
        if kind == _INT:
            if not (attached.isascii() and attached.isdigit()):
                return None
            values[key] = int(attached)
        elif kind == _LIST:
            values.setdefault(key, []).append(attached)
        else:
            values[key] = attached
    return positional, values


def _run_gate(args: list[str]) -> int | None:
    from beaminspect.cli.commands import GATE_FAIL_ON, GATE_FORMATS, gate
    parsed = parse_args("gate", args)
    if parsed is None:
        return None
    positional, values = parsed
    if len(positional) != 2 or values.get("fmt", "text") not in GATE_FORMATS \
            or values.get("fail_on", "error") not in GATE_FAIL_ON:
        return None
    return gate(*positional, **values)


def fast_main(argv: list[str]) -> int | None:
    """Run the calls the fast path knows; None when the full command line is needed."""
    if argv == ["--version"]:
        from beaminspect._version import __version__
        sys.stdout.write(f"beaminspect {__version__}\n")
        sys.stdout.flush()
        return EXIT_OK
    if len(argv) < 2 or (argv[0] != "gate" and argv[0] not in _JOBS):
        return None
    # Other encodings are left to the typer app's echo.
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8"):
        return None
    from beaminspect.cli.commands import run_guarded
    if argv[0] == "gate":
        return run_guarded(_run_gate, argv[1:])
    parsed = parse_args(argv[0], argv[1:])
    if parsed is None:
        return None
    paths, values = parsed
    if not values.get("json") or not paths:
        return None
    return run_guarded(_print_jobs, _JOBS[argv[0]], paths, values.get("jobs"))


def _print_jobs(job, paths: list[str], jobs: int | None) -> int | None:
    out, err = sys.stdout, sys.stderr
    buf = getattr(out, "buffer", None)
    if buf is None:
        return None
    from beaminspect.parallel import map_files
    from beaminspect.release.paths import iter_beam_paths

    failed = False
    out.flush()
    for ok, text in map_files(job, iter_beam_paths(paths), (), jobs):
        if ok:
            buf.write(text if type(text) is bytes else text.encode())
            buf.write(b"\n")
        else:
            failed = True
            buf.flush()
            err.write(text + "\n")
            err.flush()
    buf.flush()
    return EXIT_BAD_INPUT if failed else EXIT_OK


def run() -> None:
    code = fast_main(sys.argv[1:])
    if code is None:
        from beaminspect.cli.app import run as full_run
        full_run()
    # The fast path's work is done and written: flush, and leave without tearing the
    # interpreter down (freeing every object of a large run costs tens of milliseconds;
    # nothing registers an exit handler).
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    try:
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)
