"""A supervisor's child specs, as its ``init/1`` holds them, and what an upgrade does
with a change to them.

OTP's ``supervisor:code_change/3`` (run by ``sys:change_code``, which an appup's
``{update, Sup, supervisor}`` asks for) calls the new ``init/1`` and merges the specs:
a child whose id is in both gets the new spec and keeps running as it was started; a
child only in the new specs is added to the list *without being started*; a child only
in the old specs is kept, running.  A plain load and purge (``load_module``) does not
call ``init/1`` at all.

The ids are read from the constant child specs of ``init/1`` and the local functions it
calls: maps with ``id`` and ``start`` keys, and the six-tuples ``{Id, {M, F, A},
Restart, Shutdown, Type, Modules}``.  Specs built at run time are not seen (their ids
are then unknown, and the finding says so).
"""

from __future__ import annotations

from beaminspect.code.disasm import LocalFunc
from beaminspect.terms import Atom
from beaminspect.terms.printer import format_term
from beaminspect.terms.types import Map

__all__ = ["child_ids", "init_reach"]

_RESTARTS = frozenset({"permanent", "transient", "temporary"})
_ID, _START = Atom("id"), Atom("start")


def init_reach(m) -> frozenset[str]:
    """``init/1`` and the local functions it reaches by calls, as ``name/arity``."""
    by_mfa = {f.mfa: f for f in m.functions}
    if "init/1" not in by_mfa:
        return frozenset()
    seen, todo = {"init/1"}, ["init/1"]
    while todo:
        for ins in by_mfa[todo.pop()].instructions:
            for v in ins.values:
                if isinstance(v, LocalFunc):
                    mfa = f"{v.name}/{v.arity}"
                    if mfa in by_mfa and mfa not in seen:
                        seen.add(mfa)
                        todo.append(mfa)
    return frozenset(seen)


def child_ids(m) -> frozenset[str] | None:
    """The ids (as Erlang prints them) of the constant child specs in ``init/1`` and
    what it calls; None when none is found."""
    by_mfa = {f.mfa: f for f in m.functions}
    ids: set[str] = set()
    budget = [100_000]
    for mfa in init_reach(m):
        for ins in by_mfa[mfa].instructions:
            for v in ins.values:
                _collect(v, ids, budget)
    return frozenset(ids) if ids else None


def _collect(term, ids: set, budget: list) -> None:
    stack = [term]
    while stack and budget[0] > 0:
        budget[0] -= 1
        x = stack.pop()
        if isinstance(x, Map):
            if _ID in x and _START in x:
                ids.add(format_term(x[_ID]))
            stack.extend(x.values())
        elif isinstance(x, tuple):
            if len(x) == 6 and isinstance(x[1], tuple) and len(x[1]) == 3 \
                    and isinstance(x[1][0], Atom) and isinstance(x[1][1], Atom) \
                    and isinstance(x[2], Atom) and str(x[2]) in _RESTARTS:
                ids.add(format_term(x[0]))
            stack.extend(x)
        elif isinstance(x, list):
            stack.extend(x)
