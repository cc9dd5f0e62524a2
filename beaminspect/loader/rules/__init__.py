"""What the loader of one OTP release does with each kind of operand: the data files.

``otpN.json`` in this package was written by tools/gen_loader_rules.py from
``erlang:prepare_loading/2`` answers of OTP N's own VM; it records the release and ERTS
version it was measured on.  :func:`for_release` reads one file on first use (and only
when ``check`` reaches the operand rules) and keeps it.

Operand kinds: ``u`` untagged, ``i`` small integer, ``a`` atom, ``n`` nil (atom 0),
``x``/``y`` registers (typed or not), ``f`` label, ``p`` no label (label 0), ``q``
literal (or an integer too large for a small), ``l`` float register, ``o`` an untagged
integer too large for a word.

* ``refused[opcode][position][kind]``: the loader's message when it refuses that kind of
  operand at that position of the generic instruction;
* ``context[opcode][position]``: kinds whose fate depended on the neighbouring
  instructions in the measurements (nothing is predicted for them);
* ``atoms[opcode][position]``: atoms real code has where the probe's atom was refused
  (rules that name an atom, such as ``bs_start_match4 a==am_no_fail``);
* ``bifs``: the (module, function, arity) the loader binds to a BIF.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

__all__ = ["Rules", "for_release", "releases", "from_json", "FORMAT"]

#: The version of the data files' layout (``"format"`` in each file).
FORMAT = 1


@dataclass(frozen=True)
class Rules:
    otp: int                    # the release measured
    measured_on: dict           # otp_release, erts_version, emu_flavor, architecture
    kinds: str
    refused: dict[int, dict[int, dict[str, str]]]
    context: dict[int, dict[int, str]]
    atoms: dict[int, dict[int, tuple[str, ...]]]
    bifs: frozenset[tuple[str, str, int]]


def _int_keys(d: dict, leaf=lambda v: v) -> dict:
    return {int(k): {int(p): leaf(v) for p, v in positions.items()} for k, positions in d.items()}


def from_json(doc: dict) -> Rules:
    """The :class:`Rules` of one parsed data file."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"loader rules format {doc.get('format')!r}, expected {FORMAT}")
    return Rules(
        otp=int(doc["otp"]),
        measured_on=dict(doc["measured_on"]),
        kinds=doc["kinds"],
        refused=_int_keys(doc["refused"], dict),
        context=_int_keys(doc["context"]),
        atoms=_int_keys(doc["atoms"], tuple),
        bifs=frozenset((m, f, int(a)) for m, f, a in doc["bifs"]),
    )


def _file(otp: int):
    return resources.files(__name__).joinpath(f"otp{int(otp)}.json")


@functools.lru_cache(maxsize=None)
def for_release(otp: int) -> Rules | None:
    """The measured rules of release ``otp``, or None when none were measured."""
    f = _file(otp)
    if not f.is_file():
        return None
    return from_json(json.loads(f.read_text(encoding="utf-8")))


def releases() -> list[int]:
    """The releases with a data file."""
    out = []
    for entry in resources.files(__name__).iterdir():
        name = entry.name
        if name.startswith("otp") and name.endswith(".json") and name[3:-5].isdigit():
            out.append(int(name[3:-5]))
    return sorted(out)
