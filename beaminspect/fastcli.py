"""The ``beaminspect`` entry point, with a fast path for the commonest calls.

``beaminspect --version``, ``beaminspect show --json [-j N] PATH...`` and
``beaminspect disasm --json [-j N] PATH...`` are parsed here without importing typer (whose import, with pydantic, costs about 0.3 s per process).
Anything else -- help, text output, other commands, an option or a form this small
parser does not know -- goes to the typer app in :mod:`beaminspect.cli`, which prints
the same output and returns the same exit codes for the calls handled here.
"""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 4


def show_json_job(path: str):
    """One module as a ``show --json`` line: ``(True, json)`` or ``(False, error line)``."""
    from .errors import BeamError, format_error
    from .module import load
    from .render.json_out import module_summary_json
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

    from .errors import BeamError, format_error
    from .module import load
    from .render.disasm_json import module_json_text
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


def _parse_show_json(args: list[str]):
    """``(paths, jobs)`` for ``--json [-j N | --jobs N | --jobs=N] PATH...`` in any order,
    or None for anything else."""
    as_json = False
    jobs = None
    paths: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--json":
            as_json = True
        elif a in ("-j", "--jobs") or a.startswith("--jobs=") or a.startswith("-j"):
            if a.startswith("--jobs="):
                value = a.split("=", 1)[1]
            elif a.startswith("-j") and len(a) > 2:
                value = a[2:]
            else:
                i += 1
                if i == len(args):
                    return None
                value = args[i]
            if not (value.isascii() and value.isdigit()):
                return None
            jobs = int(value)
        elif a.startswith("-"):
            return None
        else:
            paths.append(a)
        i += 1
    if not as_json or not paths:
        return None
    return paths, jobs


def fast_main(argv: list[str]) -> int | None:
    """Run the calls the fast path knows; None when the full command line is needed."""
    if argv == ["--version"]:
        from ._version import __version__
        sys.stdout.write(f"beaminspect {__version__}\n")
        sys.stdout.flush()
        return EXIT_OK
    if len(argv) < 2 or argv[0] not in _JOBS:
        return None
    job = _JOBS[argv[0]]
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8"):
        return None
    parsed = _parse_show_json(argv[1:])
    if parsed is None:
        return None
    paths, jobs = parsed
    out, err = sys.stdout, sys.stderr
    buf = getattr(out, "buffer", None)
    if buf is None:
        return None
    try:
        from .parallel import map_files
        from .paths import iter_beam_paths

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
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the boundary, as in cli.main
        if os.environ.get("BEAMINSPECT_DEBUG"):
            raise
        err.write(f"beaminspect: internal error: {type(e).__name__}: {e}\n")
        return EXIT_INTERNAL


def run() -> None:
    code = fast_main(sys.argv[1:])
    if code is None:
        from .cli import run as full_run
        full_run()
    sys.exit(code)
