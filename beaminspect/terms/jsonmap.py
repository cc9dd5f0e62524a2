"""The JSON mapping of terms (:func:`to_json`); see :mod:`beaminspect.terms`."""

from __future__ import annotations

import base64

from beaminspect.terms.printer import int_text
from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference)

__all__ = ["to_json"]

_JSON_INT_MAX = 2**53 - 1
_INT_ONLY = {int}


def _json_pid(p: Pid) -> dict:
    return {"node": str(p.node), "id": p.id, "serial": p.serial, "creation": p.creation}


def to_json(term):
    """The JSON value (dicts, lists, str, int, float) of a term; see the module docstring."""
    # Iterative post-order build: ``work`` holds terms to convert and (builder, n) marks.
    out: list = []
    work: list = [(term, None)]
    while work:
        t, build = work.pop()
        if build is not None:
            fn, n = build
            vals = out[len(out) - n:] if n else []
            del out[len(out) - n:]
            out.append(fn(vals))
            continue
        tt = type(t)
        if tt is Atom:
            out.append(str(t))
        elif tt is int:
            out.append(t if -_JSON_INT_MAX <= t <= _JSON_INT_MAX else {"int": int_text(t)})
        elif tt is float:
            out.append(t)
        elif tt is bytes:
            try:
                out.append({"binary": t.decode("utf-8"), "encoding": "utf8"})
            except UnicodeDecodeError:
                out.append({"binary": base64.b64encode(t).decode("ascii"),
                            "encoding": "base64"})
        elif tt is BitBinary:
            out.append({"bitstring": base64.b64encode(t.data).decode("ascii"),
                        "bits": t.bits})
        elif tt is Pid:
            out.append({"pid": _json_pid(t)})
        elif tt is Port:
            out.append({"port": {"node": str(t.node), "id": t.id, "creation": t.creation}})
        elif tt is Reference:
            out.append({"reference": {"node": str(t.node), "creation": t.creation,
                                      "ids": list(t.ids)}})
        elif tt is ExportFun:
            out.append({"fun": {"module": str(t.module), "function": str(t.function),
                                "arity": t.arity}})
        else:
            if tt is list:
                # A string (a list of small integers) maps to itself: copy it in one step.
                if t and type(t[0]) is int and set(map(type, t)) == _INT_ONLY \
                        and -_JSON_INT_MAX <= min(t) and max(t) <= _JSON_INT_MAX:
                    out.append(list(t))
                    continue
                kids, fn = t, list
            elif tt is tuple:
                kids, fn = t, _json_tuple
            elif tt is ImproperList:
                kids = t.items + (t.tail,)
                fn = _json_improper
            elif tt is Map:
                kids = [x for kv in t.items() for x in kv]
                fn = _json_map
            elif tt is LocalFun:
                kids = t.free_vars
                fn = _json_fun_builder(t)
            elif isinstance(t, Atom):
                out.append(str(t))
                continue
            elif isinstance(t, int) and not isinstance(t, bool):
                work.append((int(t), None))
                continue
            else:
                raise TypeError(f"not an Erlang term: {type(t).__name__}")
            work.append((None, (fn, len(kids))))
            for i in range(len(kids) - 1, -1, -1):
                work.append((kids[i], None))
    return out[0]


def _json_tuple(vals):
    return {"tuple": vals}


def _json_improper(vals):
    return {"improper_list": vals[:-1], "tail": vals[-1]}


def _json_map(vals):
    return {"map": [[vals[i], vals[i + 1]] for i in range(0, len(vals), 2)]}


def _json_fun_builder(f: LocalFun):
    def build(vals):
        return {"fun": {
            "module": str(f.module), "arity": f.arity, "index": f.index,
            "uniq": f.uniq.hex() if isinstance(f.uniq, bytes) else f.uniq,
            "old_index": f.old_index, "old_uniq": f.old_uniq,
            "md5": f.md5.hex() if f.md5 is not None else None,
            "pid": _json_pid(f.pid), "free_vars": vals}}
    return build
