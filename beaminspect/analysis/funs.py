"""Where each fun goes: is a fun made by the old code still there when it is purged?

A local fun made by old code raises ``badfun`` once that code is purged -- if anything
still holds it.  Most funs do not outlive the call that made them (a fun handed to
``lists:map``, ``Enum.reduce`` or ``maps:fold`` is called and dropped), so warning about
every fun a changed module creates is noise.  :func:`classify_funs` follows each fun
made by ``make_fun2``/``make_fun3`` through the registers of its function, in code
order, to its uses, and keeps the most lasting one:

* ``transient``: called, or passed to a function known to call it and drop it;
* ``spawned``: runs a new process (the old code is that process's question: the purge
  kills it while it runs there, see the purge findings, not a badfun one);
* ``stored``: kept where it outlives the call -- the state a behaviour callback returns
  (its state slot: ``{noreply, S}``, ``{reply, R, S}``...), ETS, ``persistent_term``, the
  process dictionary, a message or the reply to a call (``where`` says which);
* ``escapes``: returned from an exported function: its caller decides what to keep;
* ``unknown``: anything else (a local or unknown call, a register the walk loses).

The walk is within one function and ignores branches (code order), so it errs towards
the lasting classes, never towards ``transient``.
"""

from __future__ import annotations

from dataclasses import dataclass

from beaminspect.code.disasm import ExtFunc, FunRef, Function, Literal, Reg
from beaminspect.module import BeamModule
from beaminspect.analysis.state import STATE_SLOTS
from beaminspect.terms import Atom

CLASSES = ("transient", "spawned", "unknown", "escapes", "stored")
_RANK = {c: i for i, c in enumerate(CLASSES)}

#: Modules whose functions taking funs call them and drop them.
_TRANSIENT_MODULES = frozenset({"lists", "Elixir.Enum", "Elixir.List", "orddict",
                                "Elixir.Agent"})
#: Functions of other modules that call the fun they get and drop it.
_TRANSIENT_FUNCTIONS = frozenset({
    ("maps", "map"), ("maps", "fold"), ("maps", "filter"), ("maps", "filtermap"),
    ("maps", "foreach"), ("maps", "update_with"), ("maps", "groups_from_list"),
    ("dict", "map"), ("dict", "fold"), ("dict", "filter"), ("dict", "update"),
    ("sets", "fold"), ("sets", "filter"), ("sets", "map"), ("gb_sets", "fold"),
    ("gb_sets", "filter"), ("gb_trees", "map"), ("proplists", "substitute_aliases"),
    ("Elixir.Map", "update"), ("Elixir.Map", "update!"), ("Elixir.Map", "get_lazy"),
    ("Elixir.Map", "put_new_lazy"), ("Elixir.Map", "filter"), ("Elixir.Map", "reject"),
    ("Elixir.Map", "new"), ("Elixir.Map", "get_and_update"), ("Elixir.Map", "get_and_update!"),
    ("Elixir.Keyword", "update"), ("Elixir.Keyword", "update!"),
    ("Elixir.Keyword", "get_lazy"), ("Elixir.Keyword", "put_new_lazy"),
    ("Elixir.Kernel", "update_in"), ("Elixir.Kernel", "get_and_update_in"),
    ("erlang", "apply"), ("timer", "tc"), ("Elixir.String", "replace"),
    ("Elixir.Regex", "replace"), ("Elixir.Logger", "bare_log"),
})
#: Functions whose fun runs a new process.
_SPAWNERS = frozenset({
    ("erlang", "spawn"), ("erlang", "spawn_link"), ("erlang", "spawn_monitor"),
    ("erlang", "spawn_opt"), ("proc_lib", "spawn"), ("proc_lib", "spawn_link"),
    ("proc_lib", "spawn_opt"), ("Elixir.Task", "start"), ("Elixir.Task", "start_link"),
    ("Elixir.Task", "async"), ("Elixir.Task", "async_stream"), ("Elixir.Agent", "start"),
    ("Elixir.Agent", "start_link"),
    ("Elixir.Task.Supervisor", "start_child"), ("Elixir.Task.Supervisor", "async"),
    ("Elixir.Task.Supervisor", "async_nolink"), ("Elixir.Kernel", "spawn"),
    ("Elixir.Kernel", "spawn_link"), ("Elixir.Process", "spawn"),
})
#: Functions that keep the fun they get: where.
_STORES = {
    ("ets", "insert"): "ETS", ("ets", "insert_new"): "ETS",
    ("persistent_term", "put"): "persistent_term",
    ("erlang", "put"): "the process dictionary", ("Elixir.Process", "put"):
    "the process dictionary",
    ("erlang", "send"): "a message", ("erlang", "send_after"): "a message",
    ("gen_server", "cast"): "a message", ("gen_server", "call"): "a message",
    ("Elixir.GenServer", "cast"): "a message", ("Elixir.GenServer", "call"): "a message",
    ("Elixir.Kernel", "send"): "a message", ("Elixir.Process", "send"): "a message",
    ("Elixir.Process", "send_after"): "a message",
}
#: Functions that run the fun they get (first argument) in a new process and keep what
#: it returns as that process's state: funs that fun returns are stored there.
_STATE_INITIALISERS = frozenset({("Elixir.Agent", "start"), ("Elixir.Agent", "start_link")})
#: Callbacks whose return value (in x0) holds the process state.
_STATE_CALLBACKS = frozenset({"init/1", "handle_call/3", "handle_cast/2", "handle_info/2",
                              "handle_continue/2", "code_change/3", "code_change/4",
                              "handle_event/4", "handle_event/3", "handle_event/2",
                              "init_it/6"})

_CALL_EXT = frozenset({"call_ext", "call_ext_last", "call_ext_only"})
_CALL_LOCAL = frozenset({"call", "call_last", "call_only"})


@dataclass(frozen=True)
class FunUse:
    """What happens to the funs a function creates: the FunT entry's name/arity, the
    class, and for ``stored``, where."""

    fun: str
    function: str
    cls: str
    where: str | None = None


def _regs(v, out: list) -> None:
    t = type(v)
    if t is Reg:
        out.append((v.kind, v.index))
    elif t is tuple or t is list:
        for x in v:
            _regs(x, out)


def _dest(v):
    return (v.kind, v.index) if type(v) is Reg else None


def _ext_class(ext: ExtFunc) -> tuple[str, str | None]:
    key = (ext.module, ext.function)
    if key in _STORES:
        return "stored", _STORES[key]
    if key in _SPAWNERS:
        return "spawned", None
    if ext.module in _TRANSIENT_MODULES or key in _TRANSIENT_FUNCTIONS:
        return "transient", None
    return "unknown", None


def _callback_return(wrap) -> tuple[str, str | None]:
    """Where a fun a behaviour callback returns goes: into the state (the state slot of
    ``{ok, S}``, ``{noreply, S}``, ``{reply, R, S}``...), to the caller (the reply of
    ``{reply, R, S}``), or elsewhere (a stop reason...)."""
    if wrap is None:
        return "stored", "the process state"
    head, size, where = wrap
    slots = STATE_SLOTS.get((head, size))
    if slots is None or where & slots:
        return "stored", "the process state"
    if head == "reply" and 1 in where:
        return "stored", "the reply to the caller"
    return "unknown", None


def _walk(fn: Function, start: int, reg, *, callback: bool, exported: bool):
    """The most lasting use of the fun written to ``reg`` by instruction ``start``."""
    tainted = {reg}
    wraps: dict = {}   # register -> (first atom, size, positions holding the fun)
    best, where = None, None

    def use(cls, w=None):
        nonlocal best, where
        if best is None or _RANK[cls] > _RANK[best]:
            best, where = cls, w

    for ins in fn.instructions[start + 1:]:
        name, vals = ins.name, ins.values
        if name in _CALL_EXT or name in _CALL_LOCAL or name in ("call_fun", "call_fun2",
                                                               "apply", "apply_last"):
            arity = vals[0] if vals and type(vals[0]) is int else 0
            if name == "call_fun2":
                arity = vals[1] if len(vals) > 1 and type(vals[1]) is int else 0
            args = {("x", i) for i in range(arity)}
            hit = tainted & args
            if name == "call_fun2":
                if _dest(vals[2] if len(vals) > 2 else None) in tainted:
                    use("transient")
            elif name == "call_fun":
                if ("x", arity) in tainted:
                    use("transient")
            if hit:
                if name in _CALL_EXT:
                    target = next((v for v in vals if type(v) is ExtFunc), None)
                    use(*(_ext_class(target) if target else ("unknown", None)))
                else:
                    use("unknown")
            # A call clobbers the x registers; y registers survive it.
            tainted = {r for r in tainted if r[0] == "y"}
            if not tainted:
                break
            continue
        if name == "send":
            if ("x", 1) in tainted:
                use("stored", "a message")
            tainted = {r for r in tainted if r[0] == "y"}
            continue
        if name == "return":
            if ("x", 0) in tainted:
                if callback:
                    use(*_callback_return(wraps.get(("x", 0))))
                else:
                    use("escapes" if exported else "unknown")
            continue
        if name == "trim":
            n = vals[0] if vals and type(vals[0]) is int else 0
            tainted = {(k, i - n) if k == "y" else (k, i) for k, i in tainted
                       if not (k == "y" and i < n)}
            continue
        if name in ("move", "swap"):
            src, dst = (_dest(vals[0]), _dest(vals[1])) if len(vals) == 2 else (None, None)
            if name == "swap":
                a, b = src in tainted, dst in tainted
                tainted -= {src, dst}
                if a:
                    tainted.add(dst)
                if b:
                    tainted.add(src)
            elif src in tainted:
                tainted.add(dst)
                if src in wraps:
                    wraps[dst] = wraps[src]
            else:
                tainted.discard(dst)
                wraps.pop(dst, None)
            continue
        if name in ("put_tuple2", "put_list", "put_map_assoc", "put_map_exact",
                    "update_record", "put_tuple", "put"):
            dst = {"put_tuple2": 0, "put_list": 2, "put_map_assoc": 2, "put_map_exact": 2,
                   "update_record": 3}.get(name)
            d = _dest(vals[dst]) if dst is not None and dst < len(vals) else None
            read = []   # the registers read: every operand but the destination
            _regs(tuple(v for i, v in enumerate(vals) if i != dst), read)
            hit = any(r in tainted for r in read)
            if d is not None:
                wraps.pop(d, None)
                if hit:
                    if name == "put_tuple2" and len(vals) == 2 and vals[1] \
                            and isinstance(vals[1][0], Atom):
                        wraps[d] = (str(vals[1][0]), len(vals[1]), frozenset(
                            i for i, e in enumerate(vals[1]) if _dest(e) in tainted))
                    tainted.add(d)
                else:
                    tainted.discard(d)
            elif hit:
                use("unknown")
            continue
        if name in ("make_fun3", "make_fun2"):
            read = []
            _regs(vals[2:] if name == "make_fun3" else (), read)
            if any(r in tainted for r in read):
                use("unknown")  # captured by another fun
            d = _dest(vals[1]) if name == "make_fun3" and len(vals) > 1 else ("x", 0)
            tainted.discard(d)
            continue
    return best or "unknown", where


def _made_funs(fn: Function):
    """``(index, FunRef, destination register)`` of each fun ``fn`` makes."""
    for i, ins in enumerate(fn.instructions):
        if ins.name not in ("make_fun2", "make_fun3"):
            continue
        ref = next((v for v in ins.values if type(v) is FunRef), None)
        if ref is not None:
            yield i, ref, (_dest(ins.values[1]) if ins.name == "make_fun3" else ("x", 0))


def _state_initialisers(m: BeamModule) -> frozenset[str]:
    """The funs of ``m`` (name/arity of their function) handed as first argument to a
    call that keeps what they return as a new process's state (``Agent.start(fn ->
    ... end)``): following moves only, in code order."""
    out = set()
    for fn in m.functions:
        for i, ref, reg in _made_funs(fn):
            held = {reg}
            for later in fn.instructions[i + 1:]:
                if later.name == "move" and len(later.values) == 2:
                    src, dst = _dest(later.values[0]), _dest(later.values[1])
                    if src in held:
                        held.add(dst)
                    else:
                        held.discard(dst)
                elif later.name in _CALL_EXT or later.name in _CALL_LOCAL \
                        or later.name in ("return", "label"):
                    target = next((v for v in later.values if type(v) is ExtFunc), None)
                    if target is not None and ("x", 0) in held and \
                            (target.module, target.function) in _STATE_INITIALISERS:
                        out.add(f"{ref.name}/{ref.arity}")
                    break
    return frozenset(out)


def classify_funs(m: BeamModule, *, behaviour: bool) -> list[FunUse]:
    """Every fun ``m`` creates, with what happens to it (see the module docstring).
    ``behaviour``: the module's callbacks hold a process state (gen_* behaviours).
    The function of a fun handed to ``Agent.start`` returns the Agent's state: a fun it
    returns is stored there."""
    exported = {f"{e.name}/{e.arity}" for e in m.exports}
    initialisers = _state_initialisers(m)
    out = []
    for fn in m.functions:
        initialiser = fn.mfa in initialisers
        callback = (behaviour and fn.mfa in _STATE_CALLBACKS) or initialiser
        for i, ref, reg in _made_funs(fn):
            cls, where = _walk(fn, i, reg, callback=callback, exported=fn.mfa in exported)
            if initialiser and where == "the process state":
                where = "an Agent's state"
            elif initialiser and cls == "stored" and where == "the reply to the caller":
                cls, where = "unknown", None     # no reply: the Agent keeps the value
            out.append(FunUse(f"{ref.name}/{ref.arity}", fn.mfa, cls, where))
    return out


#: Calls that start a process running ``M:F(Args...)``: (module, function, arity) ->
#: the argument registers holding M and F.
_SPAWN_MFA = {
    **{("erlang", f, 3): (0, 1) for f in ("spawn", "spawn_link", "spawn_monitor")},
    **{("erlang", f, 4): (1, 2) for f in ("spawn", "spawn_link", "spawn_monitor")},
    ("erlang", "spawn_opt", 4): (0, 1), ("erlang", "spawn_opt", 5): (1, 2),
    **{("proc_lib", f, 3): (0, 1) for f in ("spawn", "spawn_link", "start", "start_link",
                                            "start_monitor")},
    **{("proc_lib", f, 4): (0, 1) for f in ("spawn_opt", "start", "start_link",
                                            "start_monitor")},
    **{("proc_lib", f, 5): (0, 1) for f in ("start", "start_link", "start_monitor")},
    ("proc_lib", "spawn", 4): (1, 2), ("proc_lib", "spawn_link", 4): (1, 2),
    **{("Elixir.Task", f, 3): (0, 1) for f in ("start", "start_link", "async")},
    **{("Elixir.Kernel", f, 3): (0, 1) for f in ("spawn", "spawn_link", "spawn_monitor")},
}


def spawned_functions(m: BeamModule, uses) -> frozenset[str]:
    """Functions of ``m`` that new processes start in: the functions of funs handed to a
    spawn (``uses``: :func:`classify_funs`'s answer), and ``F`` of
    ``spawn(?MODULE, F, Args)`` and the like when ``M`` and ``F`` are atoms in the code
    (every arity of ``F`` when ``Args`` is not a literal list)."""
    out = {u.fun for u in uses if u.cls == "spawned"}
    arities: dict[str, set] = {}
    for fn in m.functions:
        arities.setdefault(fn.name, set()).add(fn.arity)
    for fn in m.functions:
        regs: dict = {}  # x register -> the atom or list literal last moved there
        for ins in fn.instructions:
            name, vals = ins.name, ins.values
            if name == "label":
                regs.clear()
            elif name == "move" and len(vals) == 2 and type(vals[1]) is Reg \
                    and vals[1].kind == "x":
                src = vals[0]
                regs[vals[1].index] = (src.value if type(src) is Literal else src)
            elif name in _CALL_EXT or name in _CALL_LOCAL or name in ("call_fun",
                                                                    "call_fun2"):
                target = next((v for v in vals if type(v) is ExtFunc), None)
                if target is not None:
                    where = _SPAWN_MFA.get((target.module, target.function, target.arity))
                    if where is not None:
                        mod, fun = regs.get(where[0]), regs.get(where[1])
                        args = regs.get(where[1] + 1)
                        if isinstance(mod, str) and mod == m.name and isinstance(fun, str):
                            if isinstance(args, list):
                                out.add(f"{fun}/{len(args)}")
                            else:
                                out.update(f"{fun}/{a}" for a in arities.get(str(fun), ()))
                regs.clear()
            elif name not in ("line",):
                for v in vals:
                    if type(v) is Reg and v.kind == "x":
                        regs.pop(v.index, None)
    return frozenset(out)
