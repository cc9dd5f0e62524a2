"""The per-file work of ``show`` and ``disasm``, run by :func:`beaminspect.parallel.map_files`
here or in a worker process.

A job takes a path (and the command's settings) and returns ``(True, output)`` or
``(False, error line)``; the output is a ``str``, or UTF-8 ``bytes`` where the job is
made for speed (see :func:`disasm_json_job`).  The jobs import what they need when they
first run: a worker forked from the command line has it already.  Each runs with the
cyclic garbage collector paused (see :mod:`beaminspect.gcpause`).
"""

from __future__ import annotations

from beaminspect.gcpause import paused_gc


def _error_line(err) -> str:
    from beaminspect.errors import format_error
    return f"beaminspect: {format_error(err)}"


@paused_gc
def show_json_job(path: str):
    """One module as a ``show --json`` line: ``(True, json)`` or ``(False, error line)``."""
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    from beaminspect.render.json_out import module_summary_json
    try:
        return True, module_summary_json(load(path))
    except BeamError as e:
        return False, _error_line(e)


@paused_gc
def show_text_job(path: str):
    """One module as ``show``'s text listing, or the error line."""
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    try:
        from beaminspect.render.text import show_module
        return True, show_module(load(path))
    except BeamError as e:
        return False, _error_line(e)


@paused_gc
def disasm_json_job(path: str):
    """One module as a ``disasm --json`` line: ``(True, json as UTF-8 bytes)`` or
    ``(False, error line)``.  The text is encoded where it is made: a worker process
    hands bytes back, which cost nothing to pass on, where a ``str`` would be encoded
    for the pipe, decoded and encoded again for standard output."""
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    from beaminspect.render.disasm_text import module_json_text
    try:
        return True, module_json_text(load(path)).encode()
    except BeamError as e:
        return False, _error_line(e)


@paused_gc
def disasm_job(path: str, function: tuple | None, as_json: bool):
    """One module's ``disasm`` listing (text, or JSON of the one ``function``
    ``(name, arity)``), None when the module has no such function, or the error line."""
    from beaminspect.errors import BeamError
    from beaminspect.module import load
    try:
        m = load(path)
        funcs = m.functions
        if function is not None:
            funcs = [f for f in funcs if (f.name, f.arity) == function]
            if not funcs:
                return True, None  # this module has no such function
        if as_json:
            from beaminspect.render.disasm_text import module_json_text
            return True, module_json_text(m, funcs)
        from beaminspect.render.disasm_text import module_text
        return True, module_text(m, funcs)
    except BeamError as e:
        return False, _error_line(e)
