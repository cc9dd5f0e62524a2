"""The ``beaminspect`` command line: a thin consumer of the library.

Exit codes (documented in the README):

* 0 -- success, nothing at or above ``--fail-on``;
* 1 -- findings at or above ``--fail-on`` (diff, gate, check);
* 2 -- bad input: a file could not be read or parsed (the others are still processed);
* 3 -- usage error (unknown option, bad argument);
* 4 -- internal error (a bug: please report it; ``BEAMINSPECT_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from beaminspect import __version__
from beaminspect.cli.commands import GATE_FAIL_ON, GATE_FORMATS, error_line
from beaminspect.errors import BeamError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_USAGE = 3
EXIT_INTERNAL = 4

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Inspect compiled Erlang/Elixir .beam files and predict what a hot code load "
         "changes and breaks.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"beaminspect {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    pass


def report_error(err: BeamError) -> None:
    typer.echo(error_line(err), err=True)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------

def _check_one(path: str, otp: int, as_json: bool, features=()):
    """``(status, text)``: status 0 loads, 1 refused, 2 unreadable."""
    from beaminspect.loader.check import check_file
    try:
        verdict = check_file(path, otp, enabled_features=features)
    except BeamError as e:
        return EXIT_BAD_INPUT, error_line(e)
    if as_json:
        import json
        return (EXIT_OK if verdict.loads else EXIT_FINDINGS), json.dumps(
            {"file": path, "otp": otp, **verdict.to_dict()}, sort_keys=True)
    if verdict.loads:
        return EXIT_OK, f"{path}: loads on OTP {otp}"
    return EXIT_FINDINGS, f"{path}: refused by OTP {otp}: {verdict.reason}"


@app.command()
def check(
    paths: List[str] = typer.Argument(..., help="Files or directories (searched for *.beam)."),
    otp: int = typer.Option(..., "--otp", help="The OTP release whose loader to model."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file (JSON Lines)."),
    features: List[str] = typer.Option([], "--enable-feature",
                                       help="A feature the runtime enables (as erl's "
                                            "-enable-feature); repeatable."),
) -> None:
    """Predict whether OTP N loads each file: the checks of erlang:prepare_loading/2, and
    the features code:load_file/1 checks."""
    from beaminspect.release.paths import iter_beam_paths

    status = EXIT_OK
    for path in iter_beam_paths(paths):
        code, text = _check_one(path, otp, as_json, tuple(features))
        typer.echo(text, err=(code == EXIT_BAD_INPUT))
        status = max(status, code)
    raise typer.Exit(status)


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------

def _print_each(job, paths: List[str], args: tuple, jobs: Optional[int],
                as_json: bool) -> int:
    """Print ``job``'s result for each file in order (a blank line between text
    listings; error lines on stderr); the exit code."""
    from beaminspect.parallel import map_files
    from beaminspect.release.paths import iter_beam_paths

    failed = False
    first = True
    for ok, text in map_files(job, iter_beam_paths(paths), args, jobs):
        if ok:
            if not as_json and not first:
                typer.echo("")
            typer.echo(text)
            first = False
        else:
            failed = True
            typer.echo(text, err=True)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _show_one(path: str, as_json: bool):
    if as_json:
        from beaminspect.cli.fast import show_json_job
        return show_json_job(path)
    from beaminspect.module import load
    try:
        from beaminspect.render.text import show_module
        return True, show_module(load(path))
    except BeamError as e:
        return False, error_line(e)


@app.command()
def show(
    paths: List[str] = typer.Argument(..., help="Files or directories (searched for *.beam)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per module (JSON Lines)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Worker processes (default: all cores)."),
) -> None:
    """Show a module's chunks, tables, attributes and compile information."""
    raise typer.Exit(_print_each(_show_one, paths, (as_json,), jobs, as_json))


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------

FORMATS = ("text", "json", "markdown")
FAIL_ON = ("info", "warning", "error", "never")


@app.command()
def diff(
    old: str = typer.Argument(..., help="The running version (.beam)."),
    new: str = typer.Argument(..., help="The version to load (.beam)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    fail_on: str = typer.Option("error", "--fail-on",
                                help="Exit 1 when a finding has this severity or higher "
                                     "(info, warning, error, never)."),
    otp: Optional[int] = typer.Option(None, "--otp", help="OTP release of the running system "
                                      "(default: the release that compiled OLD)."),
) -> None:
    """Predict what hot-loading NEW over OLD changes and breaks."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if fail_on not in FAIL_ON:
        raise typer.BadParameter(f"must be one of {', '.join(FAIL_ON)}", param_hint="--fail-on")
    from beaminspect.analysis.hotload import analyse, max_severity_at_least
    from beaminspect.module import load
    from beaminspect.render import diff_out

    try:
        a = load(old).decode_all()
        b = load(new).decode_all()
        report = analyse(a, b, running_otp=otp)
    except BeamError as e:
        report_error(e)
        raise typer.Exit(EXIT_BAD_INPUT)
    if fmt == "json":
        from beaminspect.render.json_out import dumps
        typer.echo(dumps(diff_out.report_dict(report)))
    elif fmt == "markdown":
        typer.echo(diff_out.render_markdown(report))
    else:
        typer.echo(diff_out.render_text(report))
    failed = fail_on != "never" and max_severity_at_least(report, fail_on)
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


# ---------------------------------------------------------------------------
# gate and appup
# ---------------------------------------------------------------------------

def _load_gate_policy(policy_file: Optional[str]):
    from beaminspect.cli.commands import CommandExit, load_gate_policy
    try:
        return load_gate_policy(policy_file)
    except CommandExit as e:
        raise typer.Exit(e.code)


def _compare(old: str, new: str, policy, external, otp):
    from beaminspect.cli.commands import CommandExit, compare
    try:
        return compare(old, new, policy, external, otp)
    except CommandExit as e:
        raise typer.Exit(e.code)


def _emit(text: str, output: Optional[str]) -> None:
    from beaminspect.cli.commands import CommandExit, emit
    try:
        emit(text, output)
    except CommandExit as e:
        raise typer.Exit(e.code)


@app.command()
def gate(
    old: str = typer.Argument(..., help="The running release (directory, tarball, .ez)."),
    new: str = typer.Argument(..., help="The release to upgrade to."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, markdown or sarif."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on",
                                          help="Exit 1 when a finding has this severity or "
                                               "higher (info, warning, error, never; default: "
                                               "the policy's, else error)."),
    policy_file: Optional[str] = typer.Option(None, "--policy",
                                              help="TOML policy file (default: "
                                                   "[tool.beaminspect] of the nearest "
                                                   "pyproject.toml)."),
    external: Optional[List[str]] = typer.Option(None, "--external",
                                                 help="A module or application whose "
                                                      "exports are not checked (repeatable)."),
    otp: Optional[int] = typer.Option(None, "--otp", help="OTP release of the running system."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report here."),
) -> None:
    """Check an upgrade from release OLD to release NEW: module changes, calls that break,
    load order and the appup files."""
    if fmt not in GATE_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(GATE_FORMATS)}",
                                 param_hint="--format")
    if fail_on is not None and fail_on not in GATE_FAIL_ON:
        raise typer.BadParameter(f"must be one of {', '.join(GATE_FAIL_ON)}",
                                 param_hint="--fail-on")
    from beaminspect.cli.commands import gate as run_gate
    raise typer.Exit(run_gate(old, new, fmt, fail_on, policy_file, external, otp, output))


@app.command()
def appup(
    old: str = typer.Argument(..., help="The running release."),
    new: str = typer.Argument(..., help="The release to upgrade to."),
    app_name: Optional[str] = typer.Option(None, "--app", help="Only this application."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write the appup here (needs --app when "
                                              "several applications changed)."),
    policy_file: Optional[str] = typer.Option(None, "--policy", help="TOML policy file."),
    external: Optional[List[str]] = typer.Option(None, "--external",
                                                 help="A module or application whose "
                                                      "exports are not checked (repeatable)."),
) -> None:
    """Suggest an .appup (upgrade and downgrade) for each changed application."""
    from beaminspect.release.appup import suggest_appup_text, suggest_appups
    policy = _load_gate_policy(policy_file)
    report = _compare(old, new, policy, external, None)
    if app_name is not None and app_name not in report.new.apps:
        raise typer.BadParameter(f"no application {app_name} in {new}", param_hint="--app")
    appups = suggest_appups(report, app_name)
    if output is not None and len(appups) > 1:
        raise typer.BadParameter(f"{len(appups)} applications changed "
                                 f"({', '.join(appups)}): choose one with --app",
                                 param_hint="--output")
    if not appups:
        typer.echo("beaminspect: no application changed: no appup to suggest", err=True)
        raise typer.Exit(EXIT_OK)
    if output is not None:
        _emit(suggest_appup_text(next(iter(appups.values()))), output)
    else:
        parts = [f"%% {name}.appup\n" + suggest_appup_text(term)
                 for name, term in appups.items()]
        typer.echo("\n".join(parts), nl=False)
    raise typer.Exit(EXIT_OK)


# ---------------------------------------------------------------------------
# disasm
# ---------------------------------------------------------------------------

def _disasm_one(path: str, function: Optional[tuple], as_json: bool):
    from beaminspect.module import load
    try:
        m = load(path)
        if as_json and function is None:
            from beaminspect.render.disasm_json import module_json_text as whole_module
            return True, whole_module(m)
        funcs = m.functions
        if function is not None:
            funcs = [f for f in funcs if (f.name, f.arity) == function]
            if not funcs:
                return False, f"beaminspect: {path}: no function {function[0]}/{function[1]}"
        if as_json:
            from beaminspect.render.disasm_text import module_json_text
            return True, module_json_text(m, funcs)
        from beaminspect.render.disasm_text import module_text
        return True, module_text(m, funcs)
    except BeamError as e:
        return False, error_line(e)


def _parse_function(value: Optional[str]) -> Optional[tuple]:
    if value is None:
        return None
    name, sep, arity = value.rpartition("/")
    if not sep or not name or not arity.isdigit():
        raise typer.BadParameter(f"expected NAME/ARITY, got {value!r}", param_hint="--function")
    return (name, int(arity))


@app.command()
def disasm(
    paths: List[str] = typer.Argument(..., help="Files or directories (searched for *.beam)."),
    function: Optional[str] = typer.Option(None, "--function", "-f", metavar="NAME/ARITY",
                                           help="Only this function."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per module (JSON Lines)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Worker processes (default: all cores)."),
) -> None:
    """Disassemble the code: one listing per function, names resolved."""
    wanted = _parse_function(function)
    raise typer.Exit(_print_each(_disasm_one, paths, (wanted, as_json), jobs, as_json))


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def _click_exceptions():
    """Click's exception classes (typer vendors click from 0.20 on)."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer depends on click
        from click import exceptions
    return exceptions


def main(argv: Optional[list] = None) -> int:
    """Console entry point: usage errors exit 3, unexpected exceptions exit 4 with one line."""
    from beaminspect.cli.commands import run_guarded
    cx = _click_exceptions()
    command = typer.main.get_command(app)

    def invoke() -> int:
        try:
            rv = command.main(args=argv, prog_name="beaminspect", standalone_mode=False)
        except (typer.Exit, cx.Exit if hasattr(cx, "Exit") else typer.Exit) as e:
            return e.exit_code
        except (typer.Abort, cx.Abort if hasattr(cx, "Abort") else typer.Abort):
            typer.echo("beaminspect: aborted", err=True)
            return EXIT_USAGE
        except cx.UsageError as e:
            e.show()
            return EXIT_OK if type(e).__name__ == "NoArgsIsHelpError" else EXIT_USAGE
        except cx.ClickException as e:
            e.show()
            return EXIT_USAGE
        return rv if isinstance(rv, int) else EXIT_OK

    return run_guarded(invoke)


def run() -> None:
    sys.exit(main())
