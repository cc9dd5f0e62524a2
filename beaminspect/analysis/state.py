"""Which records and structs reach a behaviour's state, read from the code.

A changed record breaks a running gen_server only if its processes hold one: the
record is the state, or sits somewhere inside it.  A record built per call and sent
away, or kept in ETS, changes nothing for the processes (their next callback builds
the new shape).  :func:`state_tags` finds the tagged tuples (records) and the structs
(maps with ``__struct__``) that reach the state, in the module's code, two ways:

* built into the state: the value placed in the state slot of what the callbacks
  return (``{ok, State}`` from ``init/1``, ``{reply, R, State}``, ``{noreply, State}``,
  ``{next_state, Name, Data}``...), with what it contains, through moves, tuples,
  lists, maps and the return values of local functions;
* read from the state: a callback's state argument (and what is taken out of it,
  local functions it is passed to, and what those return of it) tested as a record
  (``is_tagged_tuple``) or a struct (``__struct__`` compared to a module).

A record the state gets from another module (``init/1`` returning ``lib:new()``) and
that no function of this module reads is not seen: loading this module alone does not
break on it (the module that reads it is the one to check).

The walk goes through each function in code order; at a label, x registers beyond
the arguments are forgotten (they may come from another branch), so a value built
in one clause is not taken for another clause's state.  Tags are ``(name, size)``
for records (size counts the tag) and ``(module, None)`` for structs.
"""

from __future__ import annotations

from beaminspect.code.disasm import Label, Literal, LocalFunc, Reg
from beaminspect.module import BeamModule
from beaminspect.terms import Atom, Map

__all__ = ["STATE_ARGS", "STATE_SLOTS", "state_tags"]

#: Callbacks whose argument (0-based) is the process state, by behaviour.
STATE_ARGS = {
    "gen_server": {"handle_call/3": 2, "handle_cast/2": 1, "handle_info/2": 1,
                   "handle_continue/2": 1, "terminate/2": 1, "code_change/3": 1},
    "gen_statem": {"handle_event/4": 3, "terminate/3": 2, "code_change/4": 2},
    "gen_event": {"handle_event/2": 1, "handle_call/2": 1, "handle_info/2": 1,
                  "terminate/2": 1, "code_change/3": 1},
}
#: Callbacks whose return value holds the state (beside those of STATE_ARGS).
_RETURNS_STATE = frozenset({"init/1"})

#: Where the state sits in a callback's return tuple: (first atom, size) -> indexes.
_SLOTS = {
    "gen_server": {("ok", 2): (1,), ("ok", 3): (1,), ("reply", 3): (2,), ("reply", 4): (2,),
                   ("noreply", 2): (1,), ("noreply", 3): (1,), ("stop", 3): (2,),
                   ("stop", 4): (3,)},
    "gen_statem": {("ok", 3): (2,), ("ok", 4): (2,), ("next_state", 3): (2,),
                   ("next_state", 4): (2,), ("keep_state", 2): (1,), ("keep_state", 3): (1,),
                   ("repeat_state", 2): (1,), ("repeat_state", 3): (1,), ("stop", 3): (2,),
                   ("stop_and_reply", 4): (3,)},
    "gen_event": {("ok", 2): (1,), ("ok", 3): (1, 2), ("swap_handler", 5): ()},
}

#: Every behaviour's state slots together: (first atom, size) -> indexes.
STATE_SLOTS: dict = {}
for _table in _SLOTS.values():
    for _key, _idx in _table.items():
        STATE_SLOTS[_key] = frozenset(STATE_SLOTS.get(_key, frozenset()) | set(_idx))

_TAIL_LOCAL = frozenset({"call_last", "call_only"})
_CALLS = frozenset({"call", "call_last", "call_only", "call_ext", "call_ext_last",
                    "call_ext_only", "call_fun", "call_fun2", "apply", "apply_last",
                    "send"})
_NO_TAGS: frozenset = frozenset()


def _literal_tags(v, out: set, depth: int = 0) -> None:
    """Records and structs inside a literal term."""
    if depth > 20:
        return
    if isinstance(v, tuple):
        if v and isinstance(v[0], Atom):
            out.add((str(v[0]), len(v)))
        for x in v:
            _literal_tags(x, out, depth + 1)
    elif isinstance(v, list):
        for x in v[:200]:
            _literal_tags(x, out, depth + 1)
    elif isinstance(v, Map):
        s = v.get(Atom("__struct__"))
        if isinstance(s, Atom):
            out.add((str(s), None))
        for k, x in list(v.items())[:200]:
            _literal_tags(x, out, depth + 1)


def _wrap_of_literal(v):
    if isinstance(v, tuple) and v and isinstance(v[0], Atom):
        elems = []
        for x in v:
            s: set = set()
            _literal_tags(x, s)
            elems.append(frozenset(s))
        return (str(v[0]), len(v), tuple(elems))
    return None


class _Walk:
    """The facts of one pass over a module (see the module docstring)."""

    def __init__(self, m: BeamModule, behaviour: str):
        self.m = m
        self.slots = _SLOTS.get(behaviour, {})
        args = dict(STATE_ARGS.get(behaviour, {}))
        if behaviour == "gen_statem" and not any(e.name == "handle_event" and e.arity == 4
                                                 for e in m.exports):
            # State functions (callback mode state_functions): Name(Type, Content, Data).
            for e in m.exports:
                if e.arity == 3 and e.name not in ("init", "code_change", "terminate",
                                                   "format_status", "module_info"):
                    args.setdefault(f"{e.name}/3", 2)
        self.state_params = {f: {i} for f, i in args.items()}
        self.roles = set(args) | _RETURNS_STATE
        self.returns: dict[str, frozenset] = {}
        #: Functions that return (a part of) the state they were given.
        self.returns_state: set = set()
        self.tags: set = set()

    def run(self) -> set:
        funcs = list(self.m.functions)
        for _ in range(8):
            before = (sum(len(v) for v in self.state_params.values()), len(self.roles),
                      sum(len(v) for v in self.returns.values()), len(self.tags),
                      len(self.returns_state))
            for fn in funcs:
                self._function(fn)
            after = (sum(len(v) for v in self.state_params.values()), len(self.roles),
                     sum(len(v) for v in self.returns.values()), len(self.tags),
                     len(self.returns_state))
            if after == before:
                break
        return self.tags

    def _function(self, fn) -> None:
        mfa = fn.mfa
        params = self.state_params.get(mfa, set())
        role = mfa in self.roles
        entry_derived = {("x", i) for i in params}
        contents: dict = {}      # reg -> frozenset of tags the value is or contains
        wraps: dict = {}         # reg -> (first atom, size, per-element tags)
        derived = set(entry_derived)   # regs holding the state or a part of it
        struct_key: set = set()  # regs holding a state-derived map's __struct__
        ret: set = set(self.returns.get(mfa, ()))
        ret_state = False

        def tags_of(v):
            if type(v) is Reg:
                return contents.get((v.kind, v.index), _NO_TAGS)
            if type(v) is Literal:
                s: set = set()
                _literal_tags(v.value, s)
                return frozenset(s)
            return _NO_TAGS

        def clear(key):
            contents.pop(key, None)
            wraps.pop(key, None)
            derived.discard(key)
            struct_key.discard(key)

        def set_reg(dst, tags, wrap=None, der=False):
            if type(dst) is not Reg:
                return
            key = (dst.kind, dst.index)
            clear(key)
            if tags:
                contents[key] = frozenset(tags)
            if wrap is not None:
                wraps[key] = wrap
            if der:
                derived.add(key)

        def is_derived(v):
            return type(v) is Reg and (v.kind, v.index) in derived

        def key(v):
            return (v.kind, v.index) if type(v) is Reg else None

        started = False
        for ins in fn.instructions:
            name, vals = ins.name, ins.values
            if name == "label":
                if started:
                    # Reached from elsewhere: keep only the arguments' facts.
                    for k in [k for k in set(contents) | set(wraps) | derived | struct_key
                              if not (k[0] == "x" and (k in entry_derived))]:
                        clear(k)
                    derived |= entry_derived
                continue
            if name in ("func_info", "line"):
                continue
            started = True
            if name == "move" and len(vals) == 2:
                src, dst = vals
                der = is_derived(src)
                wrap = wraps.get(key(src)) if type(src) is Reg else (
                    _wrap_of_literal(src.value) if type(src) is Literal else None)
                sk = type(src) is Reg and key(src) in struct_key
                set_reg(dst, tags_of(src), wrap, der)
                if sk and type(dst) is Reg:
                    struct_key.add(key(dst))
            elif name == "swap" and len(vals) == 2:
                a, b = vals
                ka, kb = key(a), key(b)
                facts = [(contents.get(k), wraps.get(k), k in derived, k in struct_key)
                         for k in (ka, kb)]
                for k, (c, w, d, s) in zip((kb, ka), facts):
                    clear(k)
                    if c:
                        contents[k] = c
                    if w:
                        wraps[k] = w
                    if d:
                        derived.add(k)
                    if s:
                        struct_key.add(k)
            elif name == "put_tuple2" and len(vals) == 2:
                dst, elems = vals
                per = tuple(tags_of(e) for e in elems)
                tags = set().union(*per) if per else set()
                wrap = None
                if elems and isinstance(elems[0], Atom):
                    tags.add((str(elems[0]), len(elems)))
                    wrap = (str(elems[0]), len(elems), per)
                set_reg(dst, tags, wrap)
            elif name == "put_list" and len(vals) == 3:
                set_reg(vals[2], tags_of(vals[0]) | tags_of(vals[1]))
            elif name in ("put_map_assoc", "put_map_exact") and len(vals) == 5:
                _, src, dst, _, kv = vals
                tags = set(tags_of(src))
                kv = tuple(kv) if isinstance(kv, (tuple, list)) else ()
                for i in range(0, len(kv) - 1, 2):
                    tags |= tags_of(kv[i + 1])
                    if kv[i] == Atom("__struct__") and isinstance(kv[i + 1], Atom):
                        tags.add((str(kv[i + 1]), None))
                set_reg(dst, tags, der=is_derived(src))
            elif name == "update_record" and len(vals) == 5:
                _, _, src, dst, upd = vals
                tags = set(tags_of(src))
                upd = tuple(upd) if isinstance(upd, (tuple, list)) else ()
                for i in range(1, len(upd), 2):
                    tags |= tags_of(upd[i])
                set_reg(dst, tags, None, is_derived(src))
            elif name == "get_tuple_element" and len(vals) == 3:
                set_reg(vals[2], tags_of(vals[0]), None, is_derived(vals[0]))
            elif name in ("get_hd", "get_tl") and len(vals) == 2:
                set_reg(vals[1], tags_of(vals[0]), None, is_derived(vals[0]))
            elif name == "get_list" and len(vals) == 3:
                t, d = tags_of(vals[0]), is_derived(vals[0])
                set_reg(vals[1], t, None, d)
                set_reg(vals[2], t, None, d)
            elif name == "get_map_elements" and len(vals) == 3:
                src, kv = vals[1], vals[2]
                t, d = tags_of(src), is_derived(src)
                kv = tuple(kv) if isinstance(kv, (tuple, list)) else ()
                for i in range(0, len(kv) - 1, 2):
                    set_reg(kv[i + 1], t, None, d)
                    if d and kv[i] == Atom("__struct__") and type(kv[i + 1]) is Reg:
                        struct_key.add(key(kv[i + 1]))
            elif name == "is_tagged_tuple" and len(vals) == 4:
                if is_derived(vals[1]) and isinstance(vals[3], Atom):
                    self.tags.add((str(vals[3]), vals[2]))
            elif name in ("is_eq_exact", "is_ne_exact") and len(vals) == 3:
                a, b = vals[1], vals[2]
                for r, v in ((a, b), (b, a)):
                    if type(r) is Reg and key(r) in struct_key and isinstance(v, Atom):
                        self.tags.add((str(v), None))
            elif name in _CALLS:
                target = next((v for v in vals if type(v) is LocalFunc), None)
                arity = vals[0] if vals and type(vals[0]) is int else 0
                if target is not None:
                    callee = f"{target.name}/{target.arity}"
                    got = {i for i in range(arity) if ("x", i) in derived}
                    if got - self.state_params.get(callee, set()):
                        self.state_params.setdefault(callee, set()).update(got)
                    if role and name in _TAIL_LOCAL:
                        self.roles.add(callee)
                    result = self.returns.get(callee, _NO_TAGS)
                    result_state = callee in self.returns_state
                    if name in _TAIL_LOCAL:
                        ret |= result
                        ret_state = ret_state or result_state
                else:
                    result, result_state = _NO_TAGS, False
                for k in [k for k in set(contents) | set(wraps) | derived | struct_key
                          if k[0] == "x"]:
                    clear(k)
                if result:
                    contents[("x", 0)] = result
                if result_state:
                    derived.add(("x", 0))
            elif name == "return":
                ret |= tags_of(Reg("x", 0))
                ret_state = ret_state or ("x", 0) in derived
                w = wraps.get(("x", 0))
                if role and w is not None:
                    for i in self.slots.get((w[0], w[1]), ()):
                        self.tags.update(w[2][i])
            elif name == "trim" and vals and type(vals[0]) is int:
                n = vals[0]

                def shift(k):
                    return (k[0], k[1] - n) if k[0] == "y" else k
                contents = {shift(k): v for k, v in contents.items()
                            if not (k[0] == "y" and k[1] < n)}
                wraps = {shift(k): v for k, v in wraps.items() if not (k[0] == "y" and k[1] < n)}
                derived = {shift(k) for k in derived if not (k[0] == "y" and k[1] < n)}
                struct_key = {shift(k) for k in struct_key if not (k[0] == "y" and k[1] < n)}
            elif name in ("allocate", "allocate_heap", "allocate_zero", "allocate_heap_zero",
                          "deallocate", "test_heap", "init_yregs", "kill", "init"):
                if name in ("init_yregs", "kill", "init"):
                    for v in vals:
                        if type(v) is Reg:
                            clear(key(v))
                        elif isinstance(v, (tuple, list)):
                            for r in v:
                                if type(r) is Reg:
                                    clear(key(r))
            elif name in ("make_fun2", "loop_rec"):
                clear(("x", 0))
            elif vals and (type(vals[0]) is Label or vals[0] is None):
                # A test reads only; a guard BIF or a bs_* instruction with a fail label
                # writes its last register operand.
                if name.startswith(("bs_", "bif", "gc_bif")):
                    last = next((v for v in reversed(vals) if type(v) is Reg), None)
                    if last is not None:
                        clear(key(last))
            else:
                # Anything else that writes a register writes its last register operand.
                last = next((v for v in reversed(vals) if type(v) is Reg), None)
                if last is not None:
                    clear(key(last))
        if ret:
            self.returns[mfa] = frozenset(ret)
        if ret_state:
            self.returns_state.add(mfa)


def state_tags(m: BeamModule, behaviours) -> frozenset:
    """The records ``(name, size)`` and structs ``(module, None)`` that reach the state
    of ``m``'s processes (see the module docstring); empty when ``m`` implements none of
    gen_server, gen_statem and gen_event."""
    out: set = set()
    for b in sorted(set(behaviours) & set(_SLOTS)):
        out |= _Walk(m, b).run()
    return frozenset(out)
