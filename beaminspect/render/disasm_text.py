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

from beaminspect.code.disasm import OP_LABEL, OP_LINE
from beaminspect.gcpause import paused_gc

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


@paused_gc
def module_text(m, functions=None) -> str:
    """The listing of a module (or of the given functions of it)."""
    funcs = m.functions if functions is None else functions
    parts = [f"module {m.name} ({m.file}): {len(m.functions)} functions"]
    parts.extend([function_text(f) for f in funcs])
    return "\n\n".join(parts)


# -- JSON text, written directly ------------------------------------------------------
#
# Each instruction's JSON up to its offset comes from the module's instruction table
# (:meth:`beaminspect.code.disasm.InstructionTable.json_prefix`), made once per distinct
# instruction from the operand texts the listing uses; labels, all distinct, are
# written here.

def function_json_text(f, cache: dict | None = None) -> str:
    """The JSON object of one function, as text.  ``cache`` keeps each distinct
    instruction's prefix by the identity of its text, which its copies share: the
    instructions it was filled from must stay alive while it is used (one module's,
    rendered at once)."""
    prefix = f.table.json_prefix
    if cache is None:
        cache = {}
    get = cache.get
    parts = []
    append = parts.append
    for ins in f.instructions:
        if ins[0] == OP_LABEL:      # the decoder has made its operand a number
            append('{"op":"label","args":[%d],"offset":%d}' % (ins[4][0], ins[2]))
            continue
        hit = get(id(ins[5]))
        if hit is None:
            hit = cache[id(ins[5])] = prefix(ins)
        append(hit + int.__repr__(ins[2]) + "}")
    lines = f.lines
    return ('{"name":' + _enc(f.name) + ',"arity":' + int.__repr__(f.arity)
            + ',"entry":' + int.__repr__(f.entry) + ',"lines":'
            + ("null" if lines is None else "[%d,%d]" % lines)
            + ',"instructions":[' + ",".join(parts) + "]}")


@paused_gc
def module_json_text(m, functions=None) -> str:
    """The ``disasm --json`` object of module ``m`` (or of the given functions of it) as
    JSON text (see above)."""
    funcs = m.functions if functions is None else functions
    cache: dict = {}
    return ('{"module":' + _enc(m.name) + ',"file":' + _enc(m.file) + ',"functions":['
            + ",".join([function_json_text(f, cache) for f in funcs]) + "]}")
