"""Renderings of a disassembly: the readable listing and the JSON object of
``beaminspect disasm``.

Text, in the spirit of ``erlc -S``::

    function handle_call/3 (entry label 12), lines 30-45
    L11:
        ; shop_server.erl:30
        func_info {atom,shop_server} {atom,handle_call} 3
    L12:
        ...

Labels are ``Ln:`` lines, ``line`` instructions ``; file:line`` annotations, every other
instruction its :attr:`~beaminspect.code.disasm.Instruction.text`.

JSON (one object per module, JSON Lines)::

    {"module": "m", "file": "path",
     "functions": [{"name": "f", "arity": 1, "entry": 2, "lines": [30, 45] | null,
                    "instructions": [{"op": "move", "args": ["{x,0}", "{y,1}"],
                                      "offset": 120}, ...]}]}

``offset`` is the byte offset of the opcode within the Code chunk.  ``args`` maps each
operand: a ``u`` operand (an unsigned number: arity, live count, heap size, label of
``label``...) is a JSON number; a missing fail label (``{f,0}``) is ``null``; a list
operand (``select_val`` pairs, ``put_map`` pairs, ``bs_create_bin`` segments, ...) is a
JSON array of its elements mapped the same way; anything else is its display string
as in the text listing: ``{x,0}``, ``{y,1}``, ``{fr,0}``,
``{tr,{x,0},integer(0..255)}`` (typed register), ``{f,5}`` (label), ``{atom,ok}``,
``nil``, ``{integer,-1}``, ``{char,97}``, ``{literal,Term}``, ``lists:reverse/2``
(import), ``handle_call/3`` (local call target), ``{fun,Index,Name/Arity}``,
``{string,<<...>>}``, ``{alloc,[{words,3},{floats,0}]}`` and ``file.erl:42``
(location; a ``line`` without location is ``null``).
"""

from __future__ import annotations

from json.encoder import encode_basestring as _enc

from beaminspect.code.disasm import OP_LABEL, OP_LINE, SPECIAL, format_value
from beaminspect.render.json_out import dumps

_INDENT = "    "


def function_header(f) -> str:
    head = f"function {f.mfa} (entry label {f.entry})"
    if f.lines is not None:
        a, b = f.lines
        head += f", lines {a}-{b}" if a != b else f", line {a}"
    return head


def function_text(f) -> str:
    """The listing of one function."""
    out = [function_header(f)]
    append = out.append
    indent = _INDENT
    for ins in f.instructions:
        op = ins[0]
        if op == OP_LABEL:
            append(f"L{ins[4][0]}:")
        elif op == OP_LINE:
            loc = ins[4][0]
            if loc is not None:
                append(f"{indent}; {loc.file}:{loc.line}")
        else:
            append(indent + ins[5])
    return "\n".join(out)


def module_text(m, functions=None) -> str:
    """The listing of a module (or of the given functions of it)."""
    funcs = m.functions if functions is None else functions
    parts = [f"module {m.name} ({m.file}): {len(m.functions)} functions"]
    parts.extend([function_text(f) for f in funcs])
    return "\n\n".join(parts)


# -- JSON text, written directly ------------------------------------------------------
#
# ``module_json_text(m)`` is the JSON object described above, written without nested
# dicts: each distinct instruction of a module gets its ``{"op":...,"args":[...],
# "offset":`` prefix once and each distinct operand value its JSON text once (see
# :func:`beaminspect.code.disasm.json_value` for the mapping).  The disassembler's
# instruction table shares the ``args`` tuple of identical instructions, so the prefix
# cache is keyed by that tuple's identity (the cache keeps the tuple alive, and checks
# it and the opcode on a hit).

class _JsonText:
    __slots__ = ("by_args", "by_value", "by_op")

    def __init__(self) -> None:
        self.by_op: dict = {}
        self.by_args: dict[int, tuple] = {}
        self.by_value: dict[int, tuple] = {}

    def arg(self, a, v) -> str:
        if v is None:
            return "null"
        t = type(v)
        if t is int:
            if a.tag == "u":
                return int.__repr__(v)
            return _enc(format_value(a, v))
        if t is tuple:
            if a.tag == "list" and len(a.value) == len(v):
                arg = self.arg
                return "[" + ",".join([arg(x, y) for x, y in zip(a.value, v)]) + "]"
            return _enc(format_value(a, v))
        hit = self.by_value.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        text = _enc(format_value(a, v))
        self.by_value[id(v)] = (v, text)
        return text

    def prefix(self, ins) -> str:
        arg = self.arg
        kinds = SPECIAL[ins.opcode]
        if kinds is not None:
            return ('{"op":' + _enc(ins.name) + ',"args":['
                    + ",".join([arg(a, v) for a, v in zip(ins.args, ins.values)])
                    + '],"offset":')
        # Every operand resolves by its tag alone: within a module its text depends on
        # the raw operand only, and is kept by it (lists, mostly distinct, are not).
        by_op = self.by_op
        get = by_op.get
        parts = []
        for a, v in zip(ins.args, ins.values):
            text = get(a)
            if text is None:
                text = arg(a, v)
                if a[0] != "list":
                    by_op[a] = text
            parts.append(text)
        return '{"op":' + _enc(ins.name) + ',"args":[' + ",".join(parts) + '],"offset":'

    def function(self, f) -> str:
        by_args = self.by_args
        get = by_args.get
        parts = []
        append = parts.append
        for ins in f.instructions:
            op, name, offset, args, values, _text = ins
            if op == OP_LABEL and len(values) == 1 and type(values[0]) is int:
                append('{"op":"label","args":[%d],"offset":%d}' % (values[0], offset))
                continue
            hit = get(id(args))
            if hit is None or hit[0] is not args or hit[1] != op or hit[2] is not values:
                if op == OP_LINE and len(values) == 1:
                    loc = values[0]
                    text = ('{"op":"line","args":['
                            + ("null" if loc is None else _enc(f"{loc.file}:{loc.line}"))
                            + '],"offset":')
                elif op == OP_LABEL:
                    text = ('{"op":"label","args":' + dumps(list(values)) + ',"offset":')
                else:
                    text = self.prefix(ins)
                hit = by_args[id(args)] = (args, op, values, text)
            append(hit[3] + int.__repr__(offset) + "}")
        lines = f.lines
        return ('{"name":' + _enc(f.name) + ',"arity":' + int.__repr__(f.arity)
                + ',"entry":' + int.__repr__(f.entry) + ',"lines":'
                + ("null" if lines is None else "[%d,%d]" % lines)
                + ',"instructions":[' + ",".join(parts) + "]}")


def module_json_text(m, functions=None) -> str:
    """The ``disasm --json`` object of module ``m`` (or of the given functions of it) as
    JSON text (see above)."""
    funcs = m.functions if functions is None else functions
    w = _JsonText()
    return ('{"module":' + _enc(m.name) + ',"file":' + _enc(m.file) + ',"functions":['
            + ",".join([w.function(f) for f in funcs]) + "]}")
