"""The semantic diff of two versions of a module.

Functions are compared after normalisation (see :func:`normalise`): labels are
renumbered within each function, and a label in another function is named by that
function and its place there; atoms, literals, imports, local call targets and funs
(``make_fun*``'s FunT entry, ``call_fun2``'s tag) are compared by resolved value; the
type annotations of typed registers and the ``line`` instructions are set apart.  A
change in one function therefore never marks the functions after it as changed.  A
function whose code is the same is ``type_only`` when its type annotations differ
(they guide the JIT; the code does the same), else ``line_only`` when only its line
information differs, else ``unchanged``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beaminspect.code.disasm import ExtFunc, FunRef, Function, Label, Literal, LocalFunc, Loc, Reg
from beaminspect.module import BeamModule
from beaminspect.terms import Atom, exact_key

STATUSES = ("added", "removed", "changed", "type_only", "line_only", "unchanged")

#: Instructions that carry only source-location information.
LINE_OPS = frozenset({"line", "executable_line", "debug_line"})


@dataclass(frozen=True)
class ModuleContext:
    """What an operand may name outside its function: the function and place of every
    label of the module, and the FunT entries by index."""

    label_places: dict   # label number -> (name/arity, position among its labels)
    lambdas: dict        # FunT index -> (name, arity, num_free)

    @classmethod
    def of(cls, m: BeamModule) -> "ModuleContext":
        places = {}
        for fn in m.functions:
            for i, n in enumerate(fn.labels):
                places[n] = (fn.mfa, i)
        return cls(places, {lam.index: (lam.name, lam.arity, lam.num_free)
                            for lam in m.lambdas})


_NO_CONTEXT = ModuleContext({}, {})


def _value_form(v):
    """The normal form of an operand value other than a label or a list of values."""
    t = type(v)
    if t is Reg:
        return (v.kind, v.index)  # type annotations are compared apart
    if t is LocalFunc:
        return ("local", v.name, v.arity)
    if t is FunRef:
        return ("fun", v.name, v.arity, v.num_free)
    if t is Literal:
        return ("lit", exact_key(v.value))
    if t is ExtFunc:
        return ("ext", v.module, v.function, v.arity)
    if t is Loc:
        return ("loc",)
    if v is None:
        return None
    return exact_key(v)


@dataclass(frozen=True)
class NormalFunction:
    """A function reduced to what a diff compares."""

    body: tuple          # instructions without line information, labels by their place
    lines: tuple         # the (file, line) of each line instruction, in order
    types: tuple         # the type annotation of each typed register, in operand order


def _types(v, out: list) -> None:
    t = type(v)
    if t is Reg:
        if v.type is not None:
            out.append(str(v.type))
    elif t is tuple or t is list:
        for x in v:
            _types(x, out)


_LABEL = ("label",)
_HOLE = ("L",)


def _partial(v, labels: list, memo: dict):
    """The normal form of an operand value with each label left as a hole, its number
    added to ``labels`` (a label's normal form depends on the function it is in).  The
    forms of other values are kept in ``memo`` by their identity: the decoder shares a
    value among the operands that resolve to it."""
    t = type(v)
    if t is int or t is Atom:
        return v
    if t is Label:
        labels.append(v.number)
        return _HOLE
    if t is tuple or t is list:
        return tuple([_partial(x, labels, memo) for x in v])
    hit = memo.get(id(v))
    if hit is None or hit[0] is not v:
        hit = memo[id(v)] = (v, _value_form(v))
    return hit[1]


class _Places(dict):
    """Label number -> its normal form in one function: its place among the function's
    labels, or the function and place of a label elsewhere in the module."""

    __slots__ = ("ctx",)

    def __init__(self, fn: Function, ctx: ModuleContext) -> None:
        super().__init__(zip(fn.labels, range(len(fn.labels))))
        self.ctx = ctx

    def __missing__(self, n: int):
        return self.ctx.label_places.get(n, ("outside", n))


def normalise(fn: Function, ctx: ModuleContext = _NO_CONTEXT,
              memo: dict | None = None) -> NormalFunction:
    """``fn`` reduced to what a diff compares: each instruction as its name and
    normalised operands (the labels it names as a tuple of their places, apart).

    ``memo`` (one per module and context) keeps each instruction's form but for its
    labels, and the forms of operand values: copies of an instruction share their
    ``text`` object, so the form is kept by the identity of that text and made once
    per distinct instruction of the module."""
    places = None
    if memo is None:
        memo = {}
    body = []
    add = body.append
    lines = []
    types: list = []
    for ins in fn.instructions:
        name = ins[1]
        if name == "label":
            add(_LABEL)
            continue
        if name in LINE_OPS:
            lines.append(tuple(v for v in ins[4] if type(v) is Loc))
            continue
        text = ins[5]
        hit = memo.get(id(text))
        if hit is None or hit[0] is not text:
            hit = memo[id(text)] = (text, *_form(name, ins[4], ctx, memo))
        _text, form, found, nums = hit
        if found:
            types.extend(found)
        if nums:
            if places is None:
                places = _Places(fn, ctx)
            add((form, tuple(map(places.__getitem__, nums))))
        else:
            add(form)
    return NormalFunction(tuple(body), tuple(lines), tuple(types))


def _form(name: str, values: tuple, ctx: ModuleContext, memo: dict) -> tuple:
    """An instruction's normal form with holes for its labels, the type annotations of
    its typed registers, and the labels' numbers."""
    nums: list = []
    norm = tuple([_partial(v, nums, memo) for v in values])
    if name == "call_fun2" and values and type(values[0]) is int:
        # The tag of a call to a known local fun is its FunT index.
        norm = (("fun",) + ctx.lambdas.get(values[0], ("index", values[0])),) + norm[1:]
    found: list = []
    _types(values, found)
    return (name,) + norm, tuple(found), tuple(nums)


@dataclass(frozen=True)
class FunctionDiff:
    name: str
    arity: int
    status: str
    old_entry: int | None
    new_entry: int | None

    @property
    def mfa(self) -> str:
        return f"{self.name}/{self.arity}"


@dataclass(frozen=True)
class LabelChange:
    function: str
    old: int
    new: int


@dataclass(frozen=True)
class ModuleDiff:
    """Everything that differs between two versions of a module (findings are added by
    :mod:`beaminspect.analysis.hotload`)."""

    module: str
    old_file: str
    new_file: str
    old_name: str
    new_name: str
    md5_old: bytes
    md5_new: bytes
    functions: tuple[FunctionDiff, ...]
    exports_added: tuple[str, ...]
    exports_removed: tuple[str, ...]
    exports_kept: tuple[str, ...]
    labels: tuple[LabelChange, ...]
    lambdas_added: tuple[str, ...]
    lambdas_removed: tuple[str, ...]
    lambdas_changed: tuple[str, ...]
    lambdas_invalidated: tuple[str, ...]
    imports_added: tuple[str, ...]
    imports_removed: tuple[str, ...]
    attributes: dict = field(default_factory=dict)
    compile_options: dict = field(default_factory=dict)
    literals: dict = field(default_factory=dict)
    strings_changed: bool = False
    chunks_changed: tuple[str, ...] = ()

    @property
    def reload_needed(self) -> bool:
        """False when the MD5 is equal: only Line, Attr, CInf, Dbgi or Docs changed, and
        the running code already is this code."""
        return self.md5_old != self.md5_new

    def by_status(self, status: str) -> tuple[str, ...]:
        return tuple(f.mfa for f in self.functions if f.status == status)

    @property
    def changed_functions(self) -> frozenset[str]:
        return frozenset(f.mfa for f in self.functions if f.status in ("changed", "removed"))


def hand_set_vsn(m: BeamModule) -> bool:
    """True when the module has a ``-vsn`` of its own (the default is its MD5 as an integer)."""
    v = m.vsn
    return v is not None and v != [int.from_bytes(m.md5, "big")]


def _fa(e) -> str:
    return f"{e.name}/{e.arity}"


def lambda_key(lam) -> str:
    return f"{lam.name}/{lam.arity}"


def diff_modules(old: BeamModule, new: BeamModule) -> ModuleDiff:
    """Compare two versions of a module (both are fully decoded; BeamError propagates)."""
    old_fns = {f.mfa: f for f in old.functions}
    new_fns = {f.mfa: f for f in new.functions}
    fdiffs: list[FunctionDiff] = []
    normal_cache: dict = {}
    contexts = {"old": ModuleContext.of(old), "new": ModuleContext.of(new)}
    memos: dict = {"old": {}, "new": {}}

    def norm(side, fn):
        key = (side, fn.mfa)
        if key not in normal_cache:
            normal_cache[key] = normalise(fn, contexts[side], memos[side])
        return normal_cache[key]

    for mfa, fo in old_fns.items():
        fn = new_fns.get(mfa)
        if fn is None:
            fdiffs.append(FunctionDiff(fo.name, fo.arity, "removed", fo.entry, None))
            continue
        a, b = norm("old", fo), norm("new", fn)
        if a.body != b.body:
            status = "changed"
        elif a.types != b.types:
            status = "type_only"
        elif a.lines != b.lines:
            status = "line_only"
        else:
            status = "unchanged"
        fdiffs.append(FunctionDiff(fo.name, fo.arity, status, fo.entry, fn.entry))
    for mfa, fn in new_fns.items():
        if mfa not in old_fns:
            fdiffs.append(FunctionDiff(fn.name, fn.arity, "added", None, fn.entry))

    old_exp = {_fa(e): e.label for e in old.exports}
    new_exp = {_fa(e): e.label for e in new.exports}
    labels = tuple(LabelChange(k, old_exp[k], new_exp[k]) for k in sorted(old_exp)
                   if k in new_exp)

    status_of = {f.mfa: f.status for f in fdiffs}
    old_l = {lambda_key(l): l for l in old.lambdas}
    new_l = {lambda_key(l): l for l in new.lambdas}
    lam_changed = tuple(sorted(k for k in old_l if k in new_l and
                               (status_of.get(k) in ("changed",) or
                                old_l[k].num_free != new_l[k].num_free)))
    md5_differs = old.md5 != new.md5
    invalidated = tuple(sorted(old_l)) if md5_differs else ()

    old_imp = {str(i) for i in old.imports}
    new_imp = {str(i) for i in new.imports}

    attrs = {}
    if hand_set_vsn(old) or hand_set_vsn(new):
        if old.vsn != new.vsn:
            attrs["vsn"] = {"old": old.vsn, "new": new.vsn}
    # As Erlang terms (names are atoms), so that every renderer can print them.
    for key, get in (("behaviours", lambda m: [Atom(b) for b in sorted(m.behaviours)]),
                     ("on_load", lambda m: None if m.on_load is None else
                      (Atom(m.on_load[0]), m.on_load[1])),
                     ("nifs", lambda m: [(Atom(n), a) for n, a in sorted(m.nifs)])):
        a, b = get(old), get(new)
        if a != b:
            attrs[key] = {"old": a, "new": b}

    opts = {}
    if old.compile_options != new.compile_options:
        opts = {"old": old.compile_options, "new": new.compile_options}

    old_lits = {exact_key(v) for v in old.literals}
    new_lits = {exact_key(v) for v in new.literals}
    lits = {"old_count": len(old.literals), "new_count": len(new.literals),
            "added": len(new_lits - old_lits), "removed": len(old_lits - new_lits)}

    chunk_changes = []
    for cid in sorted(set(old.chunk_ids) | set(new.chunk_ids)):
        if old.raw_chunk(cid) != new.raw_chunk(cid):
            chunk_changes.append(cid)

    return ModuleDiff(
        module=new.name, old_file=old.file, new_file=new.file,
        old_name=old.name, new_name=new.name,
        md5_old=old.md5, md5_new=new.md5,
        functions=tuple(sorted(fdiffs, key=lambda f: (STATUSES.index(f.status), f.name, f.arity))),
        exports_added=tuple(sorted(set(new_exp) - set(old_exp))),
        exports_removed=tuple(sorted(set(old_exp) - set(new_exp))),
        exports_kept=tuple(sorted(set(old_exp) & set(new_exp))),
        labels=labels,
        lambdas_added=tuple(sorted(set(new_l) - set(old_l))),
        lambdas_removed=tuple(sorted(set(old_l) - set(new_l))),
        lambdas_changed=lam_changed,
        lambdas_invalidated=invalidated,
        imports_added=tuple(sorted(new_imp - old_imp)),
        imports_removed=tuple(sorted(old_imp - new_imp)),
        attributes=attrs,
        compile_options=opts,
        literals=lits,
        strings_changed=old.strings != new.strings,
        chunks_changed=tuple(chunk_changes),
    )


# ---------------------------------------------------------------------------
# The instructions of a changed function, old against new
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeLine:
    """One line of a code diff: ``op`` is ``" "`` (in both versions), ``"-"`` (old
    only) or ``"+"`` (new only); ``text`` the instruction with its labels numbered
    within the function (``L1``, ``L2``...; a label of another function as
    ``Name/Arity:Ln``) and funs by name; ``line`` the source line it belongs to (the
    last ``line`` instruction before it, in its version; None without one)."""

    op: str
    text: str
    line: int | None


@dataclass(frozen=True)
class CodeHunk:
    """A run of changed instructions with up to three unchanged ones around it; starts
    count instructions (labels included, line instructions not) from 1."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[CodeLine, ...]


@dataclass(frozen=True)
class FunctionCode:
    """The instruction-level diff of one changed function."""

    function: str
    file: str | None     # the source file of its first line, in the new version
    hunks: tuple[CodeHunk, ...]


def _shown_value(v, labels: dict, ctx: ModuleContext):
    """``v`` with labels and funs replaced by their normalised display forms (strings,
    which :func:`beaminspect.code.disasm.format_value` shows as they are)."""
    t = type(v)
    if t is Label:
        here = labels.get(v.number)
        if here is not None:
            return f"{{f,L{here + 1}}}"
        place = ctx.label_places.get(v.number)
        return f"{{f,{place[0]}:L{place[1] + 1}}}" if place else str(v)
    if t is FunRef:
        return f"{{fun,{v.name}/{v.arity}}}"
    if t is tuple:
        return tuple(_shown_value(x, labels, ctx) for x in v)
    return v


def _shown(fn: Function, ctx: ModuleContext) -> tuple[list, list, str | None]:
    """The display text and source line of each instruction :func:`normalise` keeps,
    in the same order, and the source file of the function's first line."""
    from beaminspect.code.disasm import format_value
    labels = {n: i for i, n in enumerate(fn.labels)}
    texts, where = [], []
    line = None
    first_file = None
    for ins in fn.instructions:
        name = ins.name
        if name in LINE_OPS:
            for v in ins.values:
                if type(v) is Loc:
                    line = v.line
                    first_file = first_file or v.file
            continue
        if name == "label":
            texts.append(f"L{labels[ins.values[0]] + 1}:" if ins.values[0] in labels
                         else f"label {ins.values[0]}")
        else:
            values = ins.values
            shown = [format_value(a, _shown_value(v, labels, ctx))
                     for a, v in zip(ins.args, values)]
            if name == "call_fun2" and values and type(values[0]) is int \
                    and values[0] in ctx.lambdas:
                lam = ctx.lambdas[values[0]]
                shown[0] = f"{{fun,{lam[0]}/{lam[1]}}}"
            texts.append(" ".join([name, *shown]))
        where.append(line)
    # The function's first label and func_info come before its first line instruction.
    first = next((w for w in where if w is not None), None)
    for i, w in enumerate(where):
        if w is not None:
            break
        where[i] = first
    return texts, where, first_file


def function_code(old: Function, new: Function, old_ctx: ModuleContext,
                  new_ctx: ModuleContext, context: int = 3) -> FunctionCode:
    """The unified diff of two versions of a function's instructions, compared as
    :func:`normalise` compares them (so it shows what made the function ``changed``)."""
    import difflib
    a, b = normalise(old, old_ctx).body, normalise(new, new_ctx).body
    ta, wa, _ = _shown(old, old_ctx)
    tb, wb, file = _shown(new, new_ctx)
    hunks = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        lines = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [CodeLine(" ", tb[j], wb[j]) for j in range(j1, j2)]
                continue
            lines += [CodeLine("-", ta[i], wa[i]) for i in range(i1, i2)]
            lines += [CodeLine("+", tb[j], wb[j]) for j in range(j1, j2)]
        first, last = group[0], group[-1]
        hunks.append(CodeHunk(first[1] + 1, last[2] - first[1], first[3] + 1,
                              last[4] - first[3], tuple(lines)))
    return FunctionCode(new.mfa, file, tuple(hunks))


def code_diff(old: BeamModule, new: BeamModule, d: ModuleDiff | None = None,
              context: int = 3) -> tuple[FunctionCode, ...]:
    """The instruction-level diff of every function ``changed`` between ``old`` and
    ``new`` (``d``, their :func:`diff_modules`, is computed when not given)."""
    d = d or diff_modules(old, new)
    old_fns = {f.mfa: f for f in old.functions}
    new_fns = {f.mfa: f for f in new.functions}
    oc, nc = ModuleContext.of(old), ModuleContext.of(new)
    return tuple(function_code(old_fns[f.mfa], new_fns[f.mfa], oc, nc, context)
                 for f in d.functions if f.status == "changed")
