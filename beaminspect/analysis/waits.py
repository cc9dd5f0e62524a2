"""Which external calls can leave the calling process waiting, found in the called code.

A process blocked in a non-tail call made from old code has a return address into it,
and the purge kills it (:mod:`beaminspect.analysis.hotload`).  Whether a call blocks is
read from the code it reaches, not from a list of names:

* a function **waits** when it contains a receive whose wait is bounded by a timeout
  its caller chose (``receive ... after T`` with ``T`` a variable: ``timer:sleep/1``,
  ``Process.sleep/1``, ``gen:do_call/4`` under ``gen_server:call``, ``Task.await/2``,
  ``erpc``, ``proc_lib:start_link``), or by a timer it sets (``erlang:send_after``,
  ``erlang:start_timer`` or ``Process.send_after``, then a receive in it or in a local
  function it calls: ``Task.await_many/2``, ``gen_server:multi_call`` of OTP 27), or
  when it calls a function that waits, locally or in another module whose code is at
  hand (the release under analysis, or the directories given as a code path);
* calls on a path that ends by raising (the calls that build an exception before
  ``erlang:error/1``, a ``badmatch``...) are not followed: they do not return, so
  whatever they wait in is not where a caller parks;
* requests to the runtime's own servers are answered at once and not counted: a
  receive without a timeout in library code (the I/O server's reply to output, the
  code server's), a call whose server is named in :data:`SYSTEM_SERVERS` (the file
  server), and ``logger`` (it makes callers wait only when its handlers fall behind);
  counting them would make every function that prints, logs, reads a file or loads
  code "blocking"; nor is a branch a caller never takes for its own process
  (:data:`LOCAL_ONLY`);
* the waits the code does not show are a small table, :data:`HIDDEN_WAITS`: I/O
  *input* requests (the reply comes when the device has input) and socket reads and
  accepts (the port driver keeps their timeout);
* a call into a module whose code is not at hand is looked up in
  :data:`BLOCKING_CALLS`, the standard blocking functions of OTP and Elixir.

:class:`WaitIndex` answers for one body of code and remembers what it found; each
answer comes with the chain of calls that leads to the wait (:meth:`WaitIndex.why`).
Reading a module means disassembling it; for the OTP and Elixir modules of the releases
the project measures, the answers were worked out the same way beforehand and are
looked up by the module's MD5 (:mod:`beaminspect.analysis.waitdata`); any other
version of a module is read.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from beaminspect.code.disasm import ExtFunc, Label, LocalFunc, Reg
from beaminspect.terms import Atom
from beaminspect.errors import BeamError

__all__ = ["WaitIndex", "Summary", "BLOCKING_CALLS", "HIDDEN_WAITS", "SYSTEM_SERVERS",
           "PROMPT_MODULES", "LOCAL_ONLY", "table_waits", "summarise", "code_path_modules"]

MFA = tuple  # (module, function, arity)

#: Waits the code does not show, counted whether or not their code is at hand: I/O
#: input requests (the I/O server replies when the device has input) and socket reads
#: and accepts (the port driver keeps the timeout; the module is chosen at run time).
HIDDEN_WAITS = frozenset({
    ("io", "get_line", 1), ("io", "get_line", 2), ("io", "get_chars", 2),
    ("io", "get_chars", 3), ("io", "get_password", 0), ("io", "get_password", 1),
    ("io", "read", 1), ("io", "read", 2), ("io", "fread", 2), ("io", "fread", 3),
    ("gen_tcp", "recv", 2), ("gen_tcp", "recv", 3), ("gen_tcp", "accept", 1),
    ("gen_tcp", "accept", 2), ("gen_udp", "recv", 2), ("gen_udp", "recv", 3),
    ("gen_sctp", "recv", 1), ("gen_sctp", "recv", 2),
})

#: Registered servers of the runtime itself: a call to one of them, named in the code,
#: is answered at once (they do not wait on application code).
SYSTEM_SERVERS = frozenset({"file_server_2", "code_server", "erl_prim_loader", "timer_server",
                            "inet_db", "erl_signal_server", "kernel_refc", "kernel_sup",
                            "kernel_safe_sup"})
#: Modules whose waits are not counted (see the module's text).
PROMPT_MODULES = frozenset({"logger", "error_logger"})
#: Functions that wait only on a branch the calling process never takes for itself:
#: ``proc_lib:proc_info/2`` asks another node only about a remote pid (``spawn_link``
#: and every behaviour's start ask it about ``self()``).
LOCAL_ONLY = frozenset({("proc_lib", "proc_info", 2)})

#: The fallback for code not at hand: external calls of OTP and Elixir that block the
#: calling process until something else happens.
BLOCKING_CALLS = HIDDEN_WAITS | frozenset({
    ("gen_server", "call", 2), ("gen_server", "call", 3), ("gen_server", "multi_call", 2),
    ("gen_server", "multi_call", 3), ("gen_server", "multi_call", 4),
    ("gen_statem", "call", 2), ("gen_statem", "call", 3),
    ("gen_event", "call", 3), ("gen_event", "call", 4), ("gen_event", "sync_notify", 2),
    ("gen", "call", 3), ("gen", "call", 4),
    ("timer", "sleep", 1),
    ("supervisor", "start_child", 2), ("supervisor", "terminate_child", 2),
    ("supervisor", "restart_child", 2), ("supervisor", "delete_child", 2),
    ("supervisor", "which_children", 1), ("supervisor", "count_children", 1),
    ("rpc", "call", 4), ("rpc", "call", 5), ("erpc", "call", 4), ("erpc", "call", 5),
    ("proc_lib", "start", 3), ("proc_lib", "start", 4), ("proc_lib", "start_link", 3),
    ("proc_lib", "start_link", 4),
    ("global", "trans", 2), ("global", "trans", 3), ("global", "trans", 4),
    # Elixir's standard library
    ("Elixir.GenServer", "call", 2), ("Elixir.GenServer", "call", 3),
    ("Elixir.GenServer", "multi_call", 2), ("Elixir.GenServer", "multi_call", 3),
    ("Elixir.GenServer", "multi_call", 4), ("Elixir.GenServer", "stop", 1),
    ("Elixir.GenServer", "stop", 2), ("Elixir.GenServer", "stop", 3),
    ("Elixir.Process", "sleep", 1),
    ("Elixir.Task", "await", 1), ("Elixir.Task", "await", 2),
    ("Elixir.Task", "await_many", 1), ("Elixir.Task", "await_many", 2),
    ("Elixir.Task", "yield", 1), ("Elixir.Task", "yield", 2),
    ("Elixir.Task", "yield_many", 1), ("Elixir.Task", "yield_many", 2),
    *((("Elixir.Agent", f, a) for f in ("get", "update", "get_and_update")
       for a in (2, 3, 4, 5))),
    ("Elixir.Agent", "stop", 1), ("Elixir.Agent", "stop", 2), ("Elixir.Agent", "stop", 3),
    ("Elixir.Supervisor", "start_child", 2), ("Elixir.Supervisor", "terminate_child", 2),
    ("Elixir.Supervisor", "restart_child", 2), ("Elixir.Supervisor", "which_children", 1),
    ("Elixir.DynamicSupervisor", "start_child", 2),
    ("Elixir.DynamicSupervisor", "terminate_child", 2),
    ("Elixir.IO", "gets", 1), ("Elixir.IO", "gets", 2), ("Elixir.IO", "read", 1),
    ("Elixir.IO", "read", 2),
})


def code_path_modules(dirs: Iterable[str]) -> dict[str, str]:
    """Module name -> file over directories searched in order, as the code path is: a
    directory of ``.beam`` files, or a lib directory (``APP-VSN/ebin/*.beam`` under
    it); the first copy of a name wins."""
    paths: dict[str, str] = {}
    for d in dirs:
        found = sorted(glob.glob(os.path.join(glob.escape(d), "*.beam")))
        found += sorted(glob.glob(os.path.join(glob.escape(d), "*", "ebin", "*.beam")))
        for p in found:
            paths.setdefault(os.path.basename(p)[:-len(".beam")], p)
    return paths


def table_waits(mfa: MFA) -> bool:
    """The answer without code at hand: is ``mfa`` in :data:`BLOCKING_CALLS`?"""
    return tuple(mfa) in BLOCKING_CALLS


#: Instructions that raise (the path that reaches one does not return).
_RAISE_OPS = frozenset({"badmatch", "case_end", "if_end", "try_case_end", "badrecord",
                        "raise"})
_RAISE_BIFS = frozenset({("erlang", "error"), ("erlang", "exit"), ("erlang", "throw"),
                         ("erlang", "raise"), ("erlang", "nif_error")})
_X0 = Reg("x", 0)
_TIMERS = frozenset({("erlang", "send_after"), ("erlang", "start_timer"),
                     ("Elixir.Process", "send_after")})
#: Instructions after which the straight-line path ends.
_PATH_ENDS = frozenset({"return", "call_last", "call_only", "call_ext_last",
                        "call_ext_only", "jump", "label"})


@dataclass(frozen=True)
class Summary:
    """What :class:`WaitIndex` needs of one module: the functions (name, arity) that wait
    themselves, and for each function the calls it makes on paths that may return
    (local ones as ``(module, name, arity)`` too).  ``settled``, for a module whose
    answers were worked out before (:mod:`beaminspect.analysis.waitdata`): each exported
    function that waits -> the calls of its way to the wait, up to the first into
    another module (none: it waits itself); the others do not wait."""

    waits: frozenset
    calls: dict
    settled: dict | None = None


def summarise(m) -> Summary:
    """The :class:`Summary` of a :class:`~beaminspect.module.BeamModule`."""
    mod = m.name
    waits, calls = set(), {}
    receives, timers, local = set(), set(), {}   # plain receives, timers set, local calls
    for fn in m.functions:
        key = (fn.name, fn.arity)
        local[key] = set()
        out: set = set()
        pending: list = []          # calls since the last branch or label
        server = None               # the atom just moved into x0, if any
        for ins in fn.instructions:
            name = ins.name
            if name == "line":
                continue
            if name == "wait_timeout" and not isinstance(ins.values[1], int):
                waits.add(key)
            elif name == "wait":
                receives.add(key)
            raises = name in _RAISE_OPS
            ends = name in _PATH_ENDS
            for v in ins.values:
                t = type(v)
                if t is LocalFunc:
                    pending.append((mod, v.name, v.arity))
                    local[key].add((v.name, v.arity))
                elif t is ExtFunc and name.startswith("call_ext"):
                    if (v.module, v.function) in _RAISE_BIFS:
                        raises = True
                    elif (v.module, v.function) in _TIMERS:
                        timers.add(key)
                    elif server not in SYSTEM_SERVERS and v.module not in PROMPT_MODULES:
                        pending.append((v.module, v.function, v.arity))
                elif t is Label:
                    ends = True
            server = (ins.values[0] if name == "move" and ins.values[1] == _X0
                      and isinstance(ins.values[0], Atom) else None)
            if raises:
                pending.clear()
            elif ends and pending:
                out.update(pending)
                pending.clear()
        out.update(pending)
        calls[key] = tuple(out)
    # A timer set, then a receive here or in a local function: a wait the timer bounds.
    for key in timers:
        seen, todo = {key}, [key]
        while todo:
            f = todo.pop()
            if f in receives:
                waits.add(key)
                break
            for g in local.get(f, ()):
                if g not in seen:
                    seen.add(g)
                    todo.append(g)
    return Summary(frozenset(waits), calls)


class WaitIndex:
    """Does a call wait?  Answered from the code ``find(module)`` returns (a
    :class:`~beaminspect.module.BeamModule`, or None when the module is not at hand);
    every module is read at most once and only as far as a question needs.

        index = WaitIndex.from_code_path(["/usr/lib/erlang/lib"])
        index(("gen_server", "call", 3))      # True
        index.why(("Elixir.Agent", "get", 3))  # the calls down to the wait
    """

    def __init__(self, find: Callable[[str], object] | None = None, *,
                 precomputed: bool = True) -> None:
        self._find = find
        self._precomputed = precomputed
        self._summaries: dict[str, Summary | None] = {}
        self._known: dict[MFA, MFA | bool] = {}   # mfa -> next step to the wait, or bool
        self._depth: dict[MFA, int] = {}          # mfa that waits -> calls to the wait

    # -- building ---------------------------------------------------------------------
    @classmethod
    def from_code_path(cls, dirs: Iterable[str], *, precomputed: bool = True) -> "WaitIndex":
        """Code from directories searched in order, as the code path is: a directory of
        ``.beam`` files, or a lib directory (``APP-VSN/ebin/*.beam`` under it).
        ``precomputed=False``: read every module, even one whose answers are in
        :mod:`beaminspect.analysis.waitdata`."""
        paths = code_path_modules(dirs)

        def find(name: str):
            from beaminspect.module import load
            path = paths.get(name)
            return None if path is None else load(path)
        return cls(find, precomputed=precomputed)

    @classmethod
    def from_release(cls, release, *, precomputed: bool = True) -> "WaitIndex":
        """Code from a :class:`~beaminspect.release.layout.Release` (the modules the
        release's code path makes current)."""
        def find(name: str):
            from beaminspect.module import load
            src = release.modules.get(name)
            return None if src is None else load(src.read(), file=src.path)
        return cls(find, precomputed=precomputed)

    # -- questions --------------------------------------------------------------------
    def __call__(self, mfa: MFA) -> bool:
        mfa = tuple(mfa)
        if mfa not in self._known:
            self._solve(mfa)
        return self._known[mfa] is not False

    def why(self, mfa: MFA) -> tuple:
        """The calls from ``mfa`` down to the function that waits (``mfa`` first), or ()
        when it does not wait."""
        mfa = tuple(mfa)
        if not self(mfa):
            return ()
        chain, seen = [mfa], {mfa}
        step = self._known.get(mfa)
        while isinstance(step, tuple) and step not in seen and self(step):
            chain.append(step)
            seen.add(step)
            step = self._known.get(step)
        return tuple(chain)

    def _summary(self, module: str) -> Summary | None:
        if module not in self._summaries:
            summary = None
            if self._find is not None:
                try:
                    m = self._find(module)
                    if m is not None and self._precomputed:
                        from beaminspect.analysis.waitdata import settled
                        known = settled(m.name, m.md5)
                        if known is not None:
                            summary = Summary(frozenset(), {}, known)
                    if m is not None and summary is None:
                        summary = summarise(m)
                except (BeamError, OSError):
                    summary = None      # unreadable code counts as code not at hand
            self._summaries[module] = summary
        return self._summaries[module]

    def _solve(self, start: MFA) -> None:
        """Settle ``start`` and everything it reaches that is not settled yet: a least
        fixed point over the calls (a cycle that never reaches a wait does not wait).
        Each function that waits keeps as its next step the callee on a shortest way
        to a wait (the least such callee by name): the answers and their chains do
        not depend on the order of the questions, nor on whether a module was read or
        looked up."""
        known = self._known
        succ: dict[MFA, tuple] = {}
        itself: dict[MFA, bool] = {}
        todo = [start]

        def leaf(f, waits_itself):
            succ[f] = ()
            itself[f] = waits_itself

        while todo:
            f = todo.pop()
            if f in succ or f in known:
                continue
            if f in HIDDEN_WAITS or f[0] in PROMPT_MODULES or f in LOCAL_ONLY:
                leaf(f, f in HIDDEN_WAITS)
                continue
            s = self._summary(f[0])
            if s is None:
                leaf(f, table_waits(f))
                continue
            key = (f[1], f[2])
            if s.settled is not None:
                steps = s.settled.get(key)
                if steps is None:
                    leaf(f, False)
                    continue
                # The recorded way through this module, as edges.
                chain = (f, *steps)
                for here, there in zip(chain, chain[1:]):
                    if here not in succ and here not in known:
                        succ[here] = (there,)
                        itself[here] = False
                last = chain[-1]
                if last[0] == f[0]:
                    if last not in succ and last not in known:
                        leaf(last, True)
                else:
                    todo.append(last)
                continue
            succ[f] = s.calls.get(key, ())
            itself[f] = key in s.waits
            todo.extend(g for g in succ[f] if g not in succ and g not in known)
        depth = {f: 0 for f, w in itself.items() if w}
        nxt: dict[MFA, MFA] = {}
        old_depth = self._depth
        changed = True
        while changed:
            changed = False
            for f, callees in succ.items():
                if itself[f]:
                    continue
                best = (depth[f], nxt[f]) if f in nxt else None
                for g in callees:
                    dg = depth.get(g) if g in succ else old_depth.get(g)
                    if dg is not None and (best is None or (dg + 1, g) < best):
                        best = (dg + 1, g)
                if best is not None and (f not in nxt or best != (depth[f], nxt[f])):
                    depth[f], nxt[f] = best
                    changed = True
        for f in succ:
            known[f] = True if itself[f] else nxt.get(f, False)
        old_depth.update(depth)
