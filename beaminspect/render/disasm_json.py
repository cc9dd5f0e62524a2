"""``disasm --json`` text straight from the Code chunk, without instruction records.

:func:`module_json_text` returns exactly what
:func:`beaminspect.render.disasm_text.module_json_text` returns for a whole module (the
tests compare the two on every sample, OTP and Elixir beam, and on mutated files), in
less time and memory.  It walks the code once: it finds each instruction's end from its
operands' first bytes (:data:`~beaminspect.format.compact.OPERAND_SIZE`,
:func:`~beaminspect.format.compact.skip_long`) and looks the instruction's bytes up.  Copies of
an instruction seen before in the module (about four in ten) cost that lookup.  A new
one is made from its operands' texts, each kept by the operand's bytes, for the opcodes
whose operands resolve by their tag alone; the others (calls, BIFs, funs, strings) are
decoded and resolved as :mod:`beaminspect.code.disasm` resolves them and written by the
record path's own writer.  Labels and ``line`` instructions, nearly all distinct, are
written directly.  Local call targets are filled in once every function's entry label
is known.

Anything this walk does not expect -- bad input above all, but also what no compiler
emits, such as a label operand that is not an unsigned integer -- sends the module
through the record path, which gives the same text or raises the same
:class:`~beaminspect.errors.BeamError`, with its function and offset.
"""

from __future__ import annotations

from json.encoder import encode_basestring as _enc

from beaminspect.format.compact import (EXT_LITERAL, EXT_TR, OPERAND_SIZE, decode_long, decode_operand,
                       decode_operands, skip_long)
from beaminspect.code.disasm import (BY_OPERAND, OP_CALL, OP_CALL_ONLY, OP_FUNC_INFO, OP_INT_CODE_END,
                      OP_LABEL, OP_LINE, SPECIAL, Instruction, LocalFunc, _Resolver)
from beaminspect.errors import BeamError
from beaminspect.format.opcodes import ARITIES, NAMES
from beaminspect.terms import Atom

__all__ = ["module_json_text"]

_new = tuple.__new__

_TR_BYTE = (EXT_TR << 4) | 7
_LITERAL_BYTE = (EXT_LITERAL << 4) | 7

#: Opcode -> the start of its instructions' JSON text.
_HEAD = tuple(None if name is None else '{"op":' + _enc(name) + ',"args":['
              for name in NAMES)


class _Unexpected(Exception):
    """The walk met something it leaves to the record path."""


def module_json_text(m) -> str:
    """The ``disasm --json`` object of module ``m`` (all functions) as JSON text."""
    try:
        return _walk(m)
    except (BeamError, _Unexpected, IndexError):
        from beaminspect.render.disasm_text import module_json_text as by_records
        return by_records(m)


def _walk(m) -> str:
    from beaminspect.render.disasm_text import _JsonText

    code = bytes(m.code)
    end = len(code)
    pos = m.code_header.code_offset
    res = _Resolver(m, end)
    writer = _JsonText()
    table = m.line_table
    own_file = table.names[0] if table is not None and table.names else None
    size = OPERAND_SIZE
    arities = ARITIES
    seen: dict[bytes, object] = {}
    # Operand bytes -> JSON text, for the operands of the opcodes whose operands all
    # resolve by their tag (see disasm.SPECIAL): the text depends on the bytes alone.
    op_texts: dict[bytes, str] = {}
    op_get = op_texts.get
    # (operand kind, operand bytes) -> JSON text, for the import, fun and line index
    # operands of the opcodes in disasm.BY_OPERAND.
    kind_texts: dict[tuple, str] = {}
    by_operand = BY_OPERAND
    special = SPECIAL
    head = _HEAD
    seen_get = seen.get
    line_texts: dict[int, tuple] = {}  # line index -> (text prefix, loc)
    parts: list = []
    append = parts.append
    # The index in ``parts`` where the current run of labels and lines began, or -1.
    run = -1
    # Per function: [start index, func_info index, name, arity, entry label].
    funcs: list[list] = []
    entries: dict[int, tuple[str, int]] = {}
    entry_due = None  # the function whose entry label comes next
    lines: list[tuple[int, int, bool]] = []  # (index, line, in the module's own file)
    calls: list[tuple[int, bytes, int]] = []  # (index, instruction bytes, offset)

    while True:
        start = pos
        opc = code[pos]
        if opc == OP_LABEL or opc == OP_LINE:
            # One 'u' operand: a label number or a line index.
            b = code[pos + 1]
            if not b & 0x0F:
                v = b >> 4
                pos += 2
            elif b & 0x1F == 0x08:
                v = ((b >> 5) << 8) | code[pos + 2]
                pos += 3
            else:
                v, pos = _long_u(code, pos + 1, end)
            if run < 0:
                run = len(parts)
            if opc == OP_LABEL:
                if entry_due is not None:
                    entry_due[4] = v
                    entries[v] = (entry_due[2], entry_due[3])
                    entry_due = None
                append(f'{{"op":"label","args":[{v}],"offset":{start}}}')
                continue
            if entry_due is not None:
                raise _Unexpected  # func_info not followed by a label
            hit = line_texts.get(v)
            if hit is None:
                loc = res.loc(v)
                hit = line_texts[v] = (
                    '{"op":"line","args":['
                    + ("null" if loc is None else _enc(f"{loc.file}:{loc.line}"))
                    + '],"offset":', loc)
            loc = hit[1]
            if loc is not None:
                lines.append((len(parts), loc[1], loc[0] == own_file))
            append(f"{hit[0]}{start}}}")
            continue
        if entry_due is not None:
            raise _Unexpected  # func_info not followed by a label
        pos += 1
        for _ in range(arities[opc]):
            b = code[pos]
            n = size[b]
            if n:
                pos += n
                continue
            if b == _TR_BYTE:  # typed register: register, type index
                n = size[code[pos + 1]]
                if n:
                    k = size[code[pos + 1 + n]]
                    if k:
                        pos += 1 + n + k
                        continue
            elif b == _LITERAL_BYTE:
                n = size[code[pos + 1]]
                if n:
                    pos += 1 + n
                    continue
            pos = skip_long(code, pos, end)
        key = code[start:pos]
        hit = seen_get(key)
        if hit is None:
            if special[opc] is None and opc > OP_CALL_ONLY:
                if head[opc] is None:
                    raise _Unexpected  # unknown opcode
                # Made of its operands' texts, each kept by its bytes.
                texts = []
                p = start + 1
                for _ in range(arities[opc]):
                    n = size[code[p]]
                    q = p + n if n else skip_long(code, p, end)
                    t = op_get(code[p:q])
                    if t is None:
                        t = op_texts[code[p:q]] = _operand_text(res, writer, code, p, q, end)
                    texts.append(t)
                    p = q
                hit = seen[key] = head[opc] + ",".join(texts) + '],"offset":'
            elif opc in by_operand:
                hit = seen[key] = _by_operand(res, writer, op_texts, kind_texts, code,
                                              start, pos, end)
            elif opc == OP_FUNC_INFO:
                hit = seen[key] = _func_info(res, writer, op_texts, code, start, pos, end)
            else:
                hit = seen[key] = _first(res, writer, code, start, pos, end, opc)
        if opc > OP_CALL_ONLY:
            append(f"{hit}{start}}}")
            run = -1
        elif opc >= OP_CALL:
            calls.append((len(parts), key, start))
            append(None)
            run = -1
        elif opc == OP_FUNC_INFO:
            text, name, arity = hit
            entry_due = [len(parts) if run < 0 else run, len(parts), name, arity, 0]
            funcs.append(entry_due)
            append(f"{text}{start}}}")
            run = -1
        elif opc == OP_INT_CODE_END:
            break
        else:  # label with an operand the fast branch does not read
            raise _Unexpected

    # Function boundaries, checked as disasm._group checks them.
    last = len(parts)
    if not funcs:
        if last:
            raise _Unexpected
    elif funcs[0][0] != 0:
        raise _Unexpected
    bounds = []
    for n, (s, k, name, arity, entry) in enumerate(funcs):
        e = funcs[n + 1][0] if n + 1 < len(funcs) else last
        if k + 1 >= e:
            raise _Unexpected
        bounds.append((s, e, name, arity, entry))

    # Local calls, now that the entry labels are known.
    call_texts: dict[bytes, str] = {}
    for i, key, offset in calls:
        text = call_texts.get(key)
        if text is None:
            args, values = seen[key]
            label = values[1]
            target = entries.get(label.number) if label is not None else None
            if target is not None:
                values = (values[0], _new(LocalFunc, (target[0], target[1], label.number)),
                          *values[2:])
            opc = key[0]
            text = call_texts[key] = writer.prefix(
                _new(Instruction, (opc, NAMES[opc], offset, args, values)))
        parts[i] = f"{text}{offset}}}"

    out = []
    li = 0
    nlines = len(lines)
    for s, e, name, arity, entry in bounds:
        while li < nlines and lines[li][0] < s:
            li += 1
        own = []
        other = []
        while li < nlines and lines[li][0] < e:
            _i, line, is_own = lines[li]
            (own if is_own else other).append(line)
            li += 1
        use = own or other
        out.append('{"name":' + _enc(name) + ',"arity":' + int.__repr__(arity)
                   + ',"entry":' + int.__repr__(entry) + ',"lines":'
                   + ("[%d,%d]" % (min(use), max(use)) if use else "null")
                   + ',"instructions":[' + ",".join(parts[s:e]) + "]}")
    return ('{"module":' + _enc(m.name) + ',"file":' + _enc(m.file) + ',"functions":['
            + ",".join(out) + "]}")


def _long_u(code: bytes, pos: int, end: int) -> tuple[int, int]:
    """A label's or line's operand in a long form (labels past 2047)."""
    op, pos = decode_long(code, pos, end)
    if op.tag != "u":
        raise _Unexpected
    return op.value, pos


def _operand_text(res, writer, code: bytes, p: int, q: int, end: int) -> str:
    """The JSON text of the operand ``code[p:q]`` of an instruction whose operands all
    resolve by their tag."""
    b = code[p]
    tag = b & 7
    n = q - p
    if OPERAND_SIZE[b] == n and tag != _TAG_A:
        v = b >> 4 if n == 1 else ((b >> 5) << 8) | code[p + 1]
        if tag != _TAG_F:
            return _BASIC[tag] % v
        if 0 < v < res.label_count:
            return '"{f,%d}"' % v
    op, r = decode_operand(code, p, end)
    if r != q:
        raise _Unexpected
    return writer.arg(op, res[op])


def _operand_spans(code: bytes, start: int, pos: int, end: int, arity: int):
    """``(p, q)`` of each operand of the instruction ``code[start:pos]``."""
    spans = []
    p = start + 1
    size = OPERAND_SIZE
    for _ in range(arity):
        n = size[code[p]]
        q = p + n if n else skip_long(code, p, end)
        spans.append((p, q))
        p = q
    if p != pos:
        raise _Unexpected
    return spans


def _by_operand(res, writer, op_texts: dict, kind_texts: dict, code: bytes, start: int,
                pos: int, end: int) -> str:
    """The JSON text up to the offset of a new instruction of an opcode in
    disasm.BY_OPERAND: made of its operands' texts, each kept by its kind and bytes."""
    opc = code[start]
    kinds = SPECIAL[opc]
    texts = []
    for kind, (p, q) in zip(kinds, _operand_spans(code, start, pos, end, ARITIES[opc])):
        raw = code[p:q]
        if kind is None:
            t = op_texts.get(raw)
            if t is None:
                t = op_texts[raw] = _operand_text(res, writer, code, p, q, end)
        else:
            t = kind_texts.get((kind, raw))
            if t is None:
                op, r = decode_operand(code, p, end)
                if r != q:
                    raise _Unexpected
                t = kind_texts[(kind, raw)] = writer.arg(op, res.by_kind(kind, op))
        texts.append(t)
    return _HEAD[opc] + ",".join(texts) + '],"offset":'


def _func_info(res, writer, op_texts: dict, code: bytes, start: int, pos: int,
               end: int) -> tuple[str, str, int]:
    """``(text up to the offset, name, arity)`` of a new func_info."""
    texts = []
    values = []
    for p, q in _operand_spans(code, start, pos, end, 3):
        op, r = decode_operand(code, p, end)
        if r != q:
            raise _Unexpected
        values.append((op, res[op]))
        raw = code[p:q]
        t = op_texts.get(raw)
        if t is None:
            t = op_texts[raw] = _operand_text(res, writer, code, p, q, end)
        texts.append(t)
    (_, m), (_, f), (a_op, a) = values
    if not isinstance(f, Atom) or not isinstance(m, Atom) or type(a) is not int \
            or a_op.tag != "u":
        raise _Unexpected
    return _HEAD[OP_FUNC_INFO] + ",".join(texts) + '],"offset":', str(f), a


_TAG_A, _TAG_F = 2, 5
#: Basic tag -> the JSON text of its operands, by value (atoms and labels apart).
_BASIC = ("%d", '"{integer,%d}"', None, '"{x,%d}"', '"{y,%d}"', None, '"{char,%d}"')


def _first(res, writer, code: bytes, start: int, pos: int, end: int, opc: int):
    """What the walk keeps for an instruction seen for the first time in the module
    that no operand-text path serves (local calls, int_code_end, string operands): its
    JSON text up to the offset, or for a local call its ``(args, values)``, written once
    the entry labels are known."""
    arity = ARITIES[opc]
    if arity < 0:
        raise _Unexpected  # unknown opcode
    args, p = decode_operands(code, start + 1, end, arity)
    if p != pos:
        raise _Unexpected
    kinds = SPECIAL[opc]
    values = tuple(map(res.__getitem__, args)) if kinds is None else res.special(kinds, args)
    if OP_CALL <= opc <= OP_CALL_ONLY:
        return args, values
    return writer.prefix(_new(Instruction, (opc, NAMES[opc], start, args, values)))
