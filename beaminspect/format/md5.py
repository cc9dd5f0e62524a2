"""The module MD5, exactly as the loader (``module_info(md5)``) and ``beam_lib:md5/1``
compute it: the data of Atom, AtU8, Code, StrT, ImpT, ExpT, FunT, LitT and Meta, in that
order, those present; FunT with each entry's ``old_uniq`` replaced by zeros."""

from __future__ import annotations

import hashlib

from beaminspect.format.container import Container
from beaminspect.errors import FormatError

MD5_CHUNKS = ("Atom", "AtU8", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT", "Meta")
_ZERO = b"\0\0\0\0"


def module_md5(container: Container) -> bytes:
    h = hashlib.md5()
    for cid in MD5_CHUNKS:
        info = container.find(cid)
        if info is None:
            continue
        data = container.view(info)
        if cid == "FunT" and len(data) >= 4:
            if (len(data) - 4) % 24:
                raise FormatError("FunT size is not 4 + 24 x entries", file=container.file,
                                  chunk="FunT", offset=0)
            h.update(data[:4])
            for pos in range(4, len(data), 24):
                h.update(data[pos:pos + 20])
                h.update(_ZERO)
        else:
            h.update(data)
    return h.digest()
