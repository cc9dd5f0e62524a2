"""Facts about an Elixir module, from the debug info its compiler keeps.

Elixir's compiler writes ``{debug_info_v1, elixir_erl, {elixir_v1, Map, Specs}}`` in the
``Dbgi`` chunk; ``Map`` (built by ``elixir_erl``) holds the module name, its
definitions with their kind, metadata and clauses, the ``struct`` fields with their
defaults, the attributes kept at run time and the compile options.  The same layout is
written by Elixir 1.14 to 1.20 (later ones add keys such as ``anno`` and ``impls``).

A definition that a ``use`` injected (``use GenServer``'s ``child_spec/1``,
``code_change/3``, ``handle_info/2``, ``terminate/2``...) carries the injecting
module as its metadata's ``context``; what the author wrote has none (or
``elixir_def`` for the heads that default arguments generate).  That is how
:attr:`Definition.injected_by` tells them apart, without guessing from names.

:func:`elixir_facts` returns None when the module has no Elixir debug info: it was
compiled from Erlang, or built with ``debug_info: false`` / stripped.  Analyses then
fall back to what the other chunks say (exports and the ``behaviour`` attribute),
and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from beaminspect.errors import BeamError
from beaminspect.module import BeamModule
from beaminspect.terms import Atom, Map

#: Elixir behaviour modules and the OTP behaviour whose callbacks they define.
#: ``use Agent`` and ``use Task`` only define ``child_spec/1``: their processes run
#: Elixir's own callback modules (``Agent.Server``, ``Task.Supervised``).
ELIXIR_BEHAVIOURS = {
    "Elixir.GenServer": "gen_server",
    "Elixir.Supervisor": "supervisor",
    "Elixir.DynamicSupervisor": "supervisor",
    "Elixir.Agent": None,
    "Elixir.Task": None,
    "Elixir.Registry": None,
}

#: Metadata contexts that are the compiler's own, not a ``use``.
_COMPILER_CONTEXTS = frozenset({"elixir_def", "elixir_bootstrap", "elixir_utils"})


@dataclass(frozen=True)
class Definition:
    """One ``def``/``defp``/``defmacro``/``defmacrop`` of the module."""

    name: str
    arity: int
    kind: str                  # def, defp, defmacro, defmacrop
    clauses: int
    line: int | None
    injected_by: str | None    # the module whose ``use`` injected it, or None

    @property
    def mfa(self) -> str:
        return f"{self.name}/{self.arity}"


@dataclass(frozen=True)
class StructField:
    name: str
    default: object            # the default as an Erlang term
    required: bool = False     # @enforce_keys


@dataclass(frozen=True)
class ElixirFacts:
    module: str
    definitions: tuple[Definition, ...]
    struct: tuple[StructField, ...] | None   # None: the module defines no struct
    attributes: tuple                         # (name, value) as kept at run time
    compile_opts: tuple
    behaviours: tuple[str, ...]
    #: Definitions whose clauses build a struct of this module (``%__MODULE__{...}``).
    struct_builders: frozenset = frozenset()

    def definition(self, mfa: str) -> Definition | None:
        for d in self.definitions:
            if d.mfa == mfa:
                return d
        return None

    def written(self, mfa: str) -> bool:
        """True when the author wrote ``mfa`` (it exists and no ``use`` injected it)."""
        d = self.definition(mfa)
        return d is not None and d.injected_by is None

    @property
    def otp_behaviours(self) -> frozenset[str]:
        """The OTP behaviours whose callbacks the module implements."""
        return _otp_names(self.behaviours)


def _get(m: Map, key: str, default=None):
    try:
        return m[Atom(key)]
    except KeyError:
        return default


def _meta(meta) -> dict:
    out = {}
    if isinstance(meta, list):
        for item in meta:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Atom):
                out.setdefault(str(item[0]), item[1])
    return out


def _definition(entry) -> Definition | None:
    if not (isinstance(entry, tuple) and len(entry) == 4):
        return None
    fa, kind, meta, clauses = entry
    if not (isinstance(fa, tuple) and len(fa) == 2 and isinstance(fa[0], Atom)
            and isinstance(fa[1], int) and isinstance(kind, Atom)):
        return None
    md = _meta(meta)
    context = md.get("context")
    injected = (str(context) if isinstance(context, Atom)
                and str(context) not in _COMPILER_CONTEXTS else None)
    line = md.get("line")
    return Definition(str(fa[0]), fa[1], str(kind),
                      len(clauses) if isinstance(clauses, list) else 0,
                      line if isinstance(line, int) else None, injected)


def _struct(value) -> tuple[StructField, ...] | None:
    if not isinstance(value, list):
        return None
    fields = []
    for f in value:
        if isinstance(f, Map):
            name = _get(f, "field")
            if isinstance(name, Atom):
                fields.append(StructField(str(name), _get(f, "default"),
                                          _get(f, "required") == Atom("true")))
    return tuple(fields)


def _builds_struct(node, module: Atom, budget: list) -> bool:
    """Does the quoted expression ``node`` contain ``%Module{...}``?  (Iterative, and
    bounded by ``budget``: deep or huge bodies are cut off, not followed.)"""
    stack = [node]
    while stack:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        x = stack.pop()
        if isinstance(x, tuple):
            if len(x) == 3 and x[0] == Atom("%") and isinstance(x[2], list) and x[2] \
                    and x[2][0] == module:
                return True
            stack.extend(x)
        elif isinstance(x, list):
            stack.extend(x)
    return False


def elixir_facts(m: BeamModule) -> ElixirFacts | None:
    """The Elixir facts of ``m``, or None without Elixir debug info (see the module
    docstring).  A debug info chunk that cannot be decoded also gives None."""
    try:
        # The backend first, from the chunk's head: an Erlang module's abstract code is
        # never decoded here.
        if m.debug_info_backend != "elixir_erl":
            return None
        dbgi = m.debug_info
    except BeamError:
        return None
    if not (isinstance(dbgi, tuple) and len(dbgi) == 3 and dbgi[1] == Atom("elixir_erl")):
        return None
    data = dbgi[2]
    if not (isinstance(data, tuple) and len(data) >= 2 and data[0] == Atom("elixir_v1")
            and isinstance(data[1], Map)):
        return None
    info = data[1]
    entries = _get(info, "definitions", []) or []
    defs = tuple(d for d in map(_definition, entries) if d is not None)
    module = _get(info, "module")
    builders = set()
    if isinstance(module, Atom):
        for entry, d in zip(entries, map(_definition, entries)):
            if d is not None and not d.name.startswith("__") and \
                    _builds_struct(entry[3], module, [200_000]):
                builders.add(d.mfa)
    attrs = _get(info, "attributes", []) or []
    attributes = tuple((str(a[0]), a[1]) for a in attrs
                       if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], Atom))
    behaviours = tuple(str(v) for k, v in attributes
                       if k in ("behaviour", "behavior") and isinstance(v, Atom))
    opts = _get(info, "compile_opts", []) or []
    return ElixirFacts(str(module) if isinstance(module, Atom) else m.name, defs,
                       _struct(_get(info, "struct")), attributes,
                       tuple(opts) if isinstance(opts, list) else (), behaviours,
                       frozenset(builders))


def otp_behaviours(m: BeamModule) -> frozenset[str]:
    """The OTP behaviours ``m`` implements: its ``behaviour`` attributes, with Elixir's
    behaviour modules (``use GenServer``...) named by the OTP behaviour they define."""
    return _otp_names(m.behaviours)


def _otp_names(behaviours) -> frozenset[str]:
    out = set()
    for b in behaviours:
        b = str(b)
        if b in ELIXIR_BEHAVIOURS:
            if ELIXIR_BEHAVIOURS[b]:
                out.add(ELIXIR_BEHAVIOURS[b])
        elif not b.startswith("Elixir."):
            out.add(b)
    return frozenset(out)


def struct_changes(old: ElixirFacts, new: ElixirFacts) -> list[str]:
    """How the module's struct changed, as phrases (empty when it did not)."""
    if old.struct is None and new.struct is None:
        return []
    of = {f.name: f for f in old.struct or ()}
    nf = {f.name: f for f in new.struct or ()}
    out = [f"+{n}" for n in nf if n not in of] + [f"-{n}" for n in of if n not in nf]
    out += [f"default of {n}" for n in of if n in nf and of[n].default != nf[n].default]
    return out
