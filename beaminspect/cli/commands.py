"""Command bodies shared by both front ends of the command line.

:mod:`beaminspect.cli.app` (typer) parses and validates a command's arguments, then calls
the body here; :mod:`beaminspect.cli.fast` calls the same body after parsing the
commonest forms itself, without importing typer.  A body writes its output, its error
lines to standard error, and returns the exit code (see :mod:`beaminspect.cli.app`).  The
values it receives are already valid: checking them is the front end's job.
"""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_USAGE = 3
EXIT_INTERNAL = 4

GATE_FORMATS = ("text", "json", "markdown", "sarif")
GATE_FAIL_ON = ("info", "warning", "error", "never")
#: Releases with more modules than this get a progress line (when stderr is a terminal).
PROGRESS_MIN_MODULES = 200


class CommandExit(Exception):
    """Stop the command with ``code`` (its message, if any, is already written)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def echo(text: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def error_line(err) -> str:
    from beaminspect.errors import format_error
    return f"beaminspect: {format_error(err)}"


def run_guarded(fn, *args):
    """``fn(*args)`` behind the command line's boundary: bad input is its one line and
    exit 2, a closed pipe ends quietly, ^C exits 130, anything unexpected is one line
    and exit 4 (``BEAMINSPECT_DEBUG=1`` shows the traceback instead)."""
    from beaminspect.errors import BeamError
    try:
        return fn(*args)
    except BeamError as e:
        echo(error_line(e), err=True)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the boundary: never a traceback for users
        if os.environ.get("BEAMINSPECT_DEBUG"):
            raise
        echo(f"beaminspect: internal error: {type(e).__name__}: {e}", err=True)
        return EXIT_INTERNAL


def load_gate_policy(policy_file: str | None):
    from beaminspect.release.policy import PolicyError, load_policy
    try:
        return load_policy(policy_file)
    except PolicyError as e:
        echo(f"beaminspect: policy: {e}", err=True)
        raise CommandExit(EXIT_USAGE) from None


class Progress:
    """``\\r`` updates on stderr for large releases when stderr is a terminal."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if total <= PROGRESS_MIN_MODULES:
            return
        sys.stderr.write(f"\rcomparing modules: {done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def compare(old: str, new: str, policy, external, otp):
    """The release comparison, or exit 2 with the error line."""
    from beaminspect.errors import BeamError
    from beaminspect.release.gate import compare_releases
    progress = Progress() if sys.stderr.isatty() else None
    try:
        return compare_releases(old, new, policy=policy, external=external or (),
                                running_otp=otp, progress=progress)
    except BeamError as e:
        echo(error_line(e), err=True)
        raise CommandExit(EXIT_BAD_INPUT) from None
    finally:
        if progress is not None:
            progress.clear()


def emit(text: str, output: str | None) -> None:
    """Print ``text``, or write it to the file ``output`` (exit 2 if that fails)."""
    if output is None:
        echo(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    except OSError as e:
        echo(f"beaminspect: {output}: {e.strerror or e}", err=True)
        raise CommandExit(EXIT_BAD_INPUT) from None


def gate(old: str, new: str, fmt: str = "text", fail_on: str | None = None,
         policy_file: str | None = None, external=None, otp: int | None = None,
         output: str | None = None) -> int:
    """``beaminspect gate``: compare the releases, write the report, return the exit
    code (1 when a finding reaches the threshold)."""
    try:
        policy = load_gate_policy(policy_file)
        threshold = fail_on or policy.fail_on or "error"
        report = compare(old, new, policy, external, otp)
        from beaminspect.render import gate_out
        from beaminspect.render.json_out import dumps
        if fmt == "json":
            text = dumps(gate_out.report_dict(report, threshold))
        elif fmt == "sarif":
            text = dumps(gate_out.render_sarif(report))
        elif fmt == "markdown":
            text = gate_out.render_markdown(report, threshold)
        else:
            text = gate_out.render_text(report, threshold)
        emit(text, output)
    except CommandExit as e:
        return e.code
    return EXIT_FINDINGS if report.failed(threshold) else EXIT_OK
