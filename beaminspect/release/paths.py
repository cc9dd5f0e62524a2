"""Expanding command-line paths into ``.beam`` files."""

from __future__ import annotations

import os


def iter_beam_paths(paths) -> list[str]:
    """Files as given; directories searched recursively for ``*.beam`` (sorted, so the
    output order does not depend on the file system).  Symbolic links to directories
    are not followed."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in files:
                    if f.endswith(".beam"):
                        found.append(os.path.join(root, f))
            out.extend(sorted(found))
        else:
            out.append(p)
    return out
