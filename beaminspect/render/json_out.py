"""JSON renderings of the model.  Terms follow the mapping of :func:`beaminspect.terms.to_json`."""

from __future__ import annotations

import json
from json.encoder import encode_basestring

from beaminspect.format.chunks import ATOM_ZERO
from beaminspect.terms import to_json

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dumps(obj) -> str:
    """Compact JSON text, non-ASCII characters kept (the JSON Lines of the CLI)."""
    return _ENCODER.encode(obj)


def function_entry(e) -> dict:
    return {"name": e.name, "arity": e.arity, "label": e.label}


def module_summary(m) -> dict:
    """The object ``beaminspect show --json`` prints for one module."""
    h = m.code_header
    return {
        "file": m.file,
        "module": m.name,
        "size": m.size,
        "stored_size": m.stored_size,
        "compressed": m.compressed,
        "md5": m.md5.hex(),
        "chunks": [c.to_dict() for c in m.chunks],
        "code": {
            "instruction_set": h.instruction_set,
            "max_opcode": h.max_opcode,
            "label_count": h.label_count,
            "function_count": h.function_count,
        },
        "exports": [function_entry(e) for e in m.exports],
        "locals": [function_entry(e) for e in m.locals],
        "imports": [{"module": i.module, "function": i.function, "arity": i.arity}
                    for i in m.imports],
        "lambdas": [{"name": f.name, "arity": f.arity, "label": f.label, "index": f.index,
                     "num_free": f.num_free, "old_uniq": f.old_uniq} for f in m.lambdas],
        "atoms": list(m.atoms),
        "attributes": to_json(m.attributes),
        "compile_info": to_json(m.compile_info),
        "literal_count": m.literal_count,
        "warnings": [w.to_dict() for w in m.warnings],
    }


def module_summary_json(m) -> str:
    """``dumps(module_summary(m))``, the same text, written without building the dicts.

    The function, import and lambda tables are most of the output; their records are
    formatted directly, with each atom's JSON text made once.  Keep the keys and their
    order in step with :func:`module_summary` (bench/run.py compares the two on every
    file of the corpus).
    """
    h = m.code_header
    atoms = m.atoms
    enc_atoms = list(map(encode_basestring, atoms))
    q = dict(zip(atoms, enc_atoms))
    q.setdefault(ATOM_ZERO, encode_basestring(ATOM_ZERO))
    fns = '{"name":%s,"arity":%d,"label":%d}'
    parts = [
        '{"file":', encode_basestring(m.file),
        ',"module":', q[m.name],
        ',"size":', str(m.size),
        ',"stored_size":', str(m.stored_size),
        ',"compressed":', "true" if m.compressed else "false",
        ',"md5":"', m.md5.hex(),
        '","chunks":[', ",".join(['{"id":%s,"offset":%d,"size":%d}'
                                  % (encode_basestring(c.id), c.offset, c.size)
                                  for c in m.chunks]),
        '],"code":{"instruction_set":%d,"max_opcode":%d,"label_count":%d,"function_count":%d}'
        % (h.instruction_set, h.max_opcode, h.label_count, h.function_count),
        ',"exports":[', ",".join([fns % (q[n], a, lb) for n, a, lb in m.exports]),
        '],"locals":[', ",".join([fns % (q[n], a, lb) for n, a, lb in m.locals]),
        '],"imports":[', ",".join(['{"module":%s,"function":%s,"arity":%d}' % (q[mod], q[f], a)
                                   for mod, f, a in m.imports]),
        '],"lambdas":[', ",".join(['{"name":%s,"arity":%d,"label":%d,"index":%d,"num_free":%d,'
                                   '"old_uniq":%d}' % (q[n], a, lb, i, nf, ou)
                                   for n, a, lb, i, nf, ou in m.lambdas]),
        '],"atoms":[', ",".join(enc_atoms),
        '],"attributes":', dumps(to_json(m.attributes)),
        ',"compile_info":', dumps(to_json(m.compile_info)),
        ',"literal_count":', str(m.literal_count),
        ',"warnings":', dumps([w.to_dict() for w in m.warnings]),
        "}",
    ]
    return "".join(parts)
