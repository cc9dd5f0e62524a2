"""Plain-text renderings (tables via tabulate)."""

from __future__ import annotations

from tabulate import tabulate

from beaminspect.terms import format_term


def _printable(v) -> bool:
    return bool(v) and all(type(c) is int and (32 <= c < 127 or c in (9, 10) or 160 <= c < 0x110000)
                           for c in v)


def display_term(t) -> str:
    """Erlang syntax for people: like ``~w`` but lists of printable characters are shown
    as strings (as ``~p`` does)."""
    if type(t) is list:
        if _printable(t):
            text = "".join(map(chr, t)).replace("\\", "\\\\").replace('"', '\\"')
            return '"' + text.replace("\n", "\\n").replace("\t", "\\t") + '"'
        return "[" + ",".join(display_term(x) for x in t) + "]"
    if type(t) is tuple:
        return "{" + ",".join(display_term(x) for x in t) + "}"
    return format_term(t)


def _kv(rows) -> str:
    return tabulate(rows, tablefmt="plain")


def show_module(m) -> str:
    """The human report of ``beaminspect show`` for one module."""
    out = []
    h = m.code_header
    head = [
        ("module", m.name),
        ("file", m.file),
        ("size", f"{m.stored_size} bytes on disk, gzip-compressed ({m.size} bytes inflated)"
         if m.compressed else f"{m.size} bytes"),
        ("md5", m.md5.hex()),
        ("compiler", m.compiler_version or "-"),
        ("options", display_term(m.compile_options) if m.compile_options else "-"),
        ("source", m.source or "-"),
        ("behaviours", ", ".join(m.behaviours) or "-"),
        ("vsn", display_term(m.vsn) if m.vsn is not None else "-"),
        ("on_load", f"{m.on_load[0]}/{m.on_load[1]}" if m.on_load else "-"),
        ("nifs", ", ".join(f"{n}/{a}" for n, a in m.nifs) or "-"),
        ("literals", str(m.literal_count)),
    ]
    out.append(_kv(head))
    out.append("")
    out.append("Chunks")
    out.append(tabulate([(c.id, c.offset, c.size) for c in m.chunks],
                        headers=["id", "offset", "size"], tablefmt="simple"))
    out.append("")
    out.append("Code header")
    out.append(tabulate([(h.instruction_set, h.max_opcode, h.label_count, h.function_count)],
                        headers=["instruction set", "highest opcode", "labels", "functions"],
                        tablefmt="simple"))
    for title, rows in (("Exports", m.exports), ("Locals", m.locals)):
        out.append("")
        out.append(f"{title} ({len(rows)})")
        if rows:
            out.append(tabulate([(e.name, e.arity, e.label) for e in rows],
                                headers=["function", "arity", "label"], tablefmt="simple"))
    out.append("")
    out.append(f"Imports ({len(m.imports)})")
    if m.imports:
        out.append(tabulate([(i.module, i.function, i.arity) for i in m.imports],
                            headers=["module", "function", "arity"], tablefmt="simple"))
    out.append("")
    out.append(f"Lambdas ({len(m.lambdas)})")
    if m.lambdas:
        out.append(tabulate([(f.index, f.name, f.arity, f.num_free, f.label) for f in m.lambdas],
                            headers=["index", "name", "arity", "free", "label"], tablefmt="simple"))
    out.append("")
    out.append(f"Attributes ({len(m.attributes)})")
    if m.attributes:
        rows = []
        for item in m.attributes:
            if isinstance(item, tuple) and len(item) == 2:
                rows.append((str(item[0]), _clip(display_term(item[1]))))
            else:
                rows.append(("?", _clip(format_term(item))))
        out.append(tabulate(rows, headers=["key", "value"], tablefmt="simple"))
    for w in m.warnings:
        out.append(f"warning: {w.chunk or '-'}: {w.message}")
    return "\n".join(out)


def _clip(s: str, n: int = 100) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
