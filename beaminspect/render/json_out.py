"""JSON renderings of the model.  Terms follow the mapping of :func:`beaminspect.terms.to_json`."""

from __future__ import annotations

import json

from ..terms import to_json


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def function_entry(e) -> dict:
    return {"name": e.name, "arity": e.arity, "label": e.label}


def module_summary(m) -> dict:
    """The object ``beaminspect show --json`` prints for one module."""
    h = m.code_header
    return {
        "file": m.file,
        "module": m.name,
        "size": m.size,
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
