"""The bodies of the commands of :mod:`beaminspect.cli.app`, its exit codes and choices.

The app parses and checks a command's arguments, then calls the body here.  A body
writes its output, its error lines to standard error, and returns the exit code; it
raises :class:`BadUsage` for a usage error found only once the work has started.
Nothing here is imported before a command needs it: the command line starts with
typer and this module only.

Exit codes (documented in the README):

* 0 -- success, nothing at or above ``--fail-on``;
* 1 -- findings at or above ``--fail-on`` (diff, gate, check);
* 2 -- bad input: a file could not be read or parsed (the others are still processed), or a
  node (``--node``, ``live``) could not be asked;
* 3 -- usage error (unknown option, bad argument);
* 4 -- internal error (a bug: please report it; ``BEAMINSPECT_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys

import typer

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_USAGE = 3
EXIT_INTERNAL = 4

#: ``diff --format`` and ``gate --format``.
DIFF_FORMATS = ("text", "json", "markdown")
GATE_FORMATS = DIFF_FORMATS + ("sarif",)
#: ``--fail-on``: a severity, or never (the library's ``findings.FAIL_ON_VALUES``; a test
#: keeps them equal, so that the command line need not import the analysis to start).
FAIL_ON = ("info", "warning", "error", "never")
#: Releases with more modules than this get a progress line (when stderr is a terminal).
PROGRESS_MIN_MODULES = 200


class CommandExit(Exception):
    """Stop the command with ``code`` (its message, if any, is already written)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class BadUsage(Exception):
    """A usage error found by a command body: ``message`` about the option ``hint``."""

    def __init__(self, hint: str, message: str) -> None:
        super().__init__(message)
        self.hint = hint
        self.message = message


def echo(text: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def error_line(err) -> str:
    from beaminspect.errors import format_error
    return f"beaminspect: {format_error(err)}"


def closed_pipe() -> int:
    """The reader of standard output has gone: write nothing more, exit 0."""
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass
    return EXIT_OK


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
        return closed_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the boundary: never a traceback for users
        if os.environ.get("BEAMINSPECT_DEBUG"):
            raise
        echo(f"beaminspect: internal error: {type(e).__name__}: {e}", err=True)
        return EXIT_INTERNAL


# ---------------------------------------------------------------------------
# per-file commands: check, show, disasm
# ---------------------------------------------------------------------------

def _check_one(path: str, otp: int, as_json: bool, features=()):
    """``(status, text)``: status 0 loads, 1 refused, 2 unreadable."""
    from beaminspect.errors import BeamError
    from beaminspect.loader.check import check_file
    try:
        verdict = check_file(path, otp, enabled_features=features)
    except BeamError as e:
        return EXIT_BAD_INPUT, error_line(e)
    from beaminspect.otp import MEASURED_RELEASES
    measured = otp in MEASURED_RELEASES
    if as_json:
        import json
        return (EXIT_OK if verdict.loads else EXIT_FINDINGS), json.dumps(
            {"file": path, "otp": otp, "measured": measured, **verdict.to_dict()},
            sort_keys=True)
    note = "" if measured else f" (OTP {otp} is modelled from its sources, not measured)"
    if verdict.loads:
        return EXIT_OK, f"{path}: loads on OTP {otp}{note}"
    return EXIT_FINDINGS, f"{path}: refused by OTP {otp}: {verdict.reason}{note}"


def input_beams(paths) -> list[str]:
    """The files ``paths`` name (directories searched for ``*.beam``); none at all is
    bad input: one line and exit 2, never a silent success."""
    from beaminspect.release.paths import iter_beam_paths
    found = iter_beam_paths(paths)
    if not found:
        echo(f"beaminspect: {' '.join(map(str, paths))}: no .beam files found", err=True)
        raise CommandExit(EXIT_BAD_INPUT)
    return found


def check(paths, otp: int, as_json: bool, features=()) -> int:
    """``beaminspect check``: one verdict per file; the worst status."""
    try:
        files = input_beams(paths)
    except CommandExit as e:
        return e.code
    status = EXIT_OK
    for path in files:
        code, text = _check_one(path, otp, as_json, tuple(features))
        typer.echo(text, err=(code == EXIT_BAD_INPUT))
        status = max(status, code)
    return status


def _utf8_stdout_buffer():
    """Standard output's byte stream when its text is UTF-8, else None."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("_", "-")
    if encoding not in ("utf-8", "utf8"):
        return None
    return getattr(sys.stdout, "buffer", None)


def _print_json_lines(results, buf) -> int:
    """Write each JSON line as bytes (a job's ``bytes`` as they are); error lines go to
    stderr, after what came before them."""
    err = sys.stderr
    failed = False
    sys.stdout.flush()
    for ok, text in results:
        if ok and text is None:
            continue
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


def print_each(job, paths, args: tuple, jobs: int | None, as_json: bool, wrap=None) -> int:
    """Print ``job``'s result for each file in order, run by the parallel pool: JSON
    Lines, or text listings with a blank line between them; error lines on stderr.
    The exit code: 2 if a file failed."""
    from beaminspect.parallel import map_files
    try:
        files = input_beams(paths)
    except CommandExit as e:
        return e.code
    results = map_files(job, files, args, jobs)
    if wrap is not None:
        results = wrap(results)
    if as_json:
        buf = _utf8_stdout_buffer()
        if buf is not None:
            return _print_json_lines(results, buf)
    failed = False
    first = True
    for ok, text in results:
        if ok and text is None:
            continue  # nothing to show for this file (disasm -f: it lacks the function)
        if ok:
            if type(text) is bytes:
                text = text.decode()
            if not as_json and not first:
                typer.echo("")
            typer.echo(text)
            first = False
        else:
            failed = True
            typer.echo(text, err=True)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def show(paths, as_json: bool, jobs: int | None) -> int:
    """``beaminspect show``."""
    from beaminspect.cli import jobs as per_file
    job = per_file.show_json_job if as_json else per_file.show_text_job
    return print_each(job, paths, (), jobs, as_json)


def disasm(paths, function: tuple | None, as_json: bool, jobs: int | None) -> int:
    """``beaminspect disasm``; ``function`` is ``(name, arity)`` or None."""
    from beaminspect.cli import jobs as per_file
    if as_json and function is None:
        return print_each(per_file.disasm_json_job, paths, (), jobs, True)
    if function is None:
        return print_each(per_file.disasm_job, paths, (function, as_json), jobs, as_json)
    # Over many modules, the ones that have the function; an error only if none has.
    shown = []

    def seen(results):
        for ok, text in results:
            if not ok or text is not None:
                shown.append(ok)
            yield ok, text

    code = print_each(per_file.disasm_job, paths, (function, as_json), jobs, as_json,
                      wrap=seen)
    if code == EXIT_OK and not any(shown):
        echo(f"beaminspect: no module has a function {function[0]}/{function[1]}", err=True)
        return EXIT_BAD_INPUT
    return code


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------

def diff(old: str, new: str, fmt: str = "text", fail_on: str = "error",
         otp: int | None = None, node=None, show_code: bool = False,
         target_otp: int | None = None, code_path=()) -> int:
    """``beaminspect diff``: the report of hot-loading NEW over OLD; with ``node``
    (a :class:`NodeOptions`), checked against what that node runs; with ``show_code``,
    the instruction-level diff of each changed function; ``code_path``: directories of
    the running system's code, which tell what blocks."""
    import dataclasses

    from beaminspect.analysis.hotload import analyse, max_severity_at_least
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    from beaminspect.render import diff_out

    try:
        a = load(old).decode_all()
        b = load(new).decode_all()
        # The new version is loaded by the emulator the upgrade moves to, if any.
        waits = None
        if code_path:
            from beaminspect.analysis.waits import WaitIndex
            waits = WaitIndex.from_code_path(code_path)
        report = analyse(a, b, running_otp=target_otp if target_otp is not None else otp,
                         waits=waits)
        if target_otp is not None:
            from beaminspect.release.emulator import module_emulator_findings
            extra = module_emulator_findings(a.container.data, b.container.data, a.name, otp,
                                             target_otp)
            report = dataclasses.replace(report, findings=report.findings + tuple(extra))
        code = None
        if show_code:
            from beaminspect.analysis.diff import code_diff
            code = code_diff(a, b, report.diff)
    except BeamError as e:
        typer.echo(error_line(e), err=True)
        return EXIT_BAD_INPUT
    live = None
    if node is not None:
        # Asked after the files are read: a bad file is reported without a connection.
        reports = {a.name: report} if report.diff.reload_needed else {}
        live = ask_node(node, {a.name: a.md5.hex()}, reports, target_otp=target_otp)
        report = dataclasses.replace(report, findings=report.findings + live.findings)
    if fmt == "json":
        from beaminspect.render.json_out import dumps
        typer.echo(dumps(diff_out.report_dict(report, live, code)))
    elif fmt == "markdown":
        typer.echo(diff_out.render_markdown(report, live, code))
    else:
        typer.echo(diff_out.render_text(report, live, code))
    failed = fail_on != "never" and max_severity_at_least(report, fail_on)
    return EXIT_FINDINGS if failed else EXIT_OK


# ---------------------------------------------------------------------------
# a running node: live, and --node for diff and gate


class NodeOptions:
    """``--node``, ``--cookie`` and ``--timeout`` as given."""

    def __init__(self, name: str, cookie: str | None, timeout: float) -> None:
        self.name = name
        self.cookie = cookie
        self.timeout = timeout

    def __repr__(self) -> str:           # the cookie never shows
        return f"NodeOptions({self.name!r}, timeout={self.timeout!r})"


def ask_node(node: NodeOptions, old_md5: dict, reports: dict, severities=None,
             restart: bool = False, target_otp: int | None = None):
    """Snapshot ``node`` (only the processes in the modules the upgrade loads) and assess
    the upgrade against it; a node that cannot be asked raises NodeError (exit 2).  The
    upgrade restarts the node when ``restart`` says so (the releases' emulators differ)
    or ``target_otp`` is not the release the node runs."""
    from beaminspect.live import assess, snapshot
    snap = snapshot(node.name, cookie=node.cookie, timeout=node.timeout,
                    modules=set(reports))
    restart = restart or (target_otp is not None and target_otp != snap.otp_release)
    return assess(snap, old_md5, reports, severities=severities, restart=restart)


def live(node: NodeOptions, as_json: bool, modules=None) -> int:
    """``beaminspect live``: what runs on the node."""
    from beaminspect.live import snapshot
    from beaminspect.render.live_out import render_snapshot_text, snapshot_dict
    snap = snapshot(node.name, cookie=node.cookie, timeout=node.timeout,
                    modules=set(modules) if modules else None)
    if as_json:
        from beaminspect.render.json_out import dumps
        echo(dumps(snapshot_dict(snap)))
    else:
        echo(render_snapshot_text(snap))
    return EXIT_OK


# ---------------------------------------------------------------------------
# gate and appup
# ---------------------------------------------------------------------------

def load_gate_policy(policy_file: str | None):
    from beaminspect.release.policy import PolicyError, load_policy
    try:
        return load_policy(policy_file)
    except PolicyError as e:
        echo(f"beaminspect: policy: {e}", err=True)
        raise CommandExit(EXIT_USAGE) from None


class Progress:
    """A progress bar on stderr (rich's, which typer brings) for a comparison that runs
    over a second on a release of more than PROGRESS_MIN_MODULES modules; it goes away
    when the run ends.  Used only when stderr is a terminal."""

    #: Seconds a run takes before the bar shows.
    AFTER = 1.0

    def __init__(self, console=None) -> None:
        import time
        self._clock = time.monotonic
        self._start = self._clock()
        self._console = console
        self._bar = None
        self._task = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total <= PROGRESS_MIN_MODULES or self._clock() - self._start < self.AFTER:
                return
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn,
                                       TimeElapsedColumn)
            from rich.progress import Progress as Bar
            self._bar = Bar(TextColumn("comparing modules"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self._console or Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("compare", total=total)
        self._bar.update(self._task, completed=done, total=total)

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def clear(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def compare(old: str, new: str, policy, external, otp, target_otp=None):
    """The release comparison, or exit 2 with the error line."""
    from beaminspect.errors import BeamError
    from beaminspect.release.gate import compare_releases
    progress = Progress() if sys.stderr.isatty() else None
    try:
        report = compare_releases(old, new, policy=policy, external=external or (),
                                  running_otp=otp, progress=progress,
                                  target_otp=target_otp)
    except BeamError as e:
        echo(error_line(e), err=True)
        raise CommandExit(EXIT_BAD_INPUT) from None
    finally:
        if progress is not None:
            progress.clear()
    for root, side in ((new, report.new), (old, report.old)):
        if not side.modules:
            echo(f"beaminspect: {root}: no .beam files found (not a release, an OTP lib "
                 "tree, a _build tree or an archive of beams)", err=True)
            raise CommandExit(EXIT_BAD_INPUT)
    return report


def emit(text: str, output: str | None) -> None:
    """Print ``text``, or write it to the file ``output`` (``-``: standard output; exit
    2 if writing fails)."""
    if output is None or output == "-":
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
         output: str | None = None, node: NodeOptions | None = None,
         source_root: str | None = None, target_otp: int | None = None) -> int:
    """``beaminspect gate``: compare the releases (and, with ``node``, check them
    against what that node runs), write the report, return the exit code (1 when a
    finding reaches the threshold)."""
    try:
        policy = load_gate_policy(policy_file)
        threshold = fail_on or policy.fail_on or "error"
        report = compare(old, new, policy, external, otp, target_otp)
        live = None
        if node is not None:
            live = _gate_live(report, node, policy, target_otp)
        from beaminspect.render import gate_out
        from beaminspect.render.json_out import dumps
        if fmt == "json":
            text = dumps(gate_out.report_dict(report, threshold, live))
        elif fmt == "sarif":
            from beaminspect.release.locations import source_locations
            text = dumps(gate_out.render_sarif(report, source_locations(report, source_root)))
        elif fmt == "markdown":
            text = gate_out.render_markdown(report, threshold, live)
        else:
            text = gate_out.render_text(report, threshold, live)
        emit(text, output)
    except CommandExit as e:
        return e.code
    unreadable = [m for m in report.modules.values() if m.error]
    if unreadable:
        # The report lists the rest; a file that could not be read is bad input
        # whatever --fail-on says.
        echo(f"beaminspect: {len(unreadable)} file(s) could not be read: "
             + ", ".join(m.new_path or m.old_path or m.name for m in unreadable[:3])
             + (" ..." if len(unreadable) > 3 else ""), err=True)
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if report.failed(threshold) else EXIT_OK


def _gate_live(report, node: NodeOptions, policy, target_otp: int | None = None):
    """The node's view of the gate's upgrade; its findings join the report's."""
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    reports = {ch.name: ch.report for ch in report.by_status("changed")
               if ch.report is not None and ch.report.diff.reload_needed}
    old_md5 = {}
    for name, src in report.old.modules.items():
        try:
            old_md5[name] = load(src.read(), file=src.path).md5.hex()
        except BeamError:
            continue        # reported by the comparison already
    live = ask_node(node, old_md5, reports, policy.severities, restart=bool(report.restarted),
                    target_otp=target_otp)
    report.add_findings(live.findings)
    return live


def appup(old: str, new: str, app_name: str | None = None, output: str | None = None,
          policy_file: str | None = None, external=None) -> int:
    """``beaminspect appup``: the suggested .appup of each changed application."""
    from beaminspect.release.appup import suggest_appup_text, suggest_appups
    try:
        policy = load_gate_policy(policy_file)
        report = compare(old, new, policy, external, None)
        if app_name is not None and app_name not in report.new.apps:
            raise BadUsage("--app", f"no application {app_name} in {new}")
        appups = suggest_appups(report, app_name)
        if output is not None and len(appups) > 1:
            raise BadUsage("--output", f"{len(appups)} applications changed "
                                       f"({', '.join(appups)}): choose one with --app")
        if not appups:
            typer.echo("beaminspect: no application changed: no appup to suggest", err=True)
            return EXIT_OK
        if output is not None:
            emit(suggest_appup_text(next(iter(appups.values()))), output)
        else:
            parts = [f"%% {name}.appup\n" + suggest_appup_text(term)
                     for name, term in appups.items()]
            typer.echo("\n".join(parts), nl=False)
    except CommandExit as e:
        return e.code
    return EXIT_OK


# ---------------------------------------------------------------------------
# kinds
# ---------------------------------------------------------------------------

def kinds(as_json: bool) -> int:
    """``beaminspect kinds``: the finding kinds, their default severity and meaning."""
    from beaminspect.render import kinds as table
    echo(table.kinds_json() if as_json else table.kinds_text())
    return EXIT_OK
